"""Benchmark: the compiled mesh iteration on one tile of a build, against the sparse chord
iteration on the same reads (measured first, in the same run).

Takes one tile of nonlinear cells behind wires (default: fc1's tile (0, 0): 64 x 128
devices, G+ and G- columns, on a differential ``--tile 64x64`` build), draws ``--reads`` binary
input vectors (each row on with probability ``--density``, seeded) and solves them with
``--threads`` numba threads: the sparse path on the first ``--baseline-reads`` of them, the
mesh on all. Prints microseconds per read, the mesh's iterations per read and nanoseconds per
cell and iteration, the ratio, and the largest difference of the two paths' column currents
relative to the largest one.

    python bench/bench_mesh_kernel.py BUILD_DIR [--layer 1] [--reads 256] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numba
import numpy as np
from common import timed  # noqa: F401  (puts the repository on sys.path)

from bmcnn_hw.artefact import load_model
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.golden.tile_nonlinear import NonlinearTile
from bmcnn_hw.golden.tile_reader import PhysicsReader


def main() -> None:
    """Solve the same reads on both paths and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build", help="a build of nonlinear cells (sinh or 1T1R) with wire resistance")
    parser.add_argument("--layer", type=int, default=1, help="layer index of the tile (default 1: fc1)")
    parser.add_argument("--reads", type=int, default=256, help="input vectors for the mesh")
    parser.add_argument("--baseline-reads", type=int, default=32, help="the first N of them for the sparse path")
    parser.add_argument("--density", type=float, default=0.3, help="probability that a row is driven")
    parser.add_argument("--threads", type=int, default=1, help="numba threads (reads in parallel)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the input vectors")
    args = parser.parse_args()
    numba.set_num_threads(args.threads)
    model = load_model(Path(args.build))
    chip = Chip.of_build(model)
    layer = model.layers[args.layer]
    rows, cols = layer.tiling.row_range(0, layer.rows), layer.tiling.col_range(0, layer.cols)
    mesh = PhysicsReader(chip).nonlinear_tile(args.layer, 0, 0, rows[1] - rows[0], cols[1] - cols[0])
    if mesh.mesh is None:
        raise SystemExit(f"{args.build}: layer {args.layer} has no resistive wires: no mesh iteration to time")
    sparse = NonlinearTile(mesh.cell, mesh.r, mesh.dvth, mesh.r_wire_ohm, chip.params.r_source_ohm,
                           chip.readout.tia_input_ohm, mesh=False)
    rng = np.random.default_rng(args.seed)
    volts = (rng.random((args.reads, mesh.r.shape[0])) < args.density) * chip.params.v_read_v
    mesh.mesh.read(volts[:2])  # compile (or load the cached machine code) outside the timing
    start = time.perf_counter()
    base_cols, _ = sparse.read(volts[:args.baseline_reads])
    base = (time.perf_counter() - start) / args.baseline_reads
    start = time.perf_counter()
    cols_mesh, _, settled = mesh.mesh.read(volts)
    fast = (time.perf_counter() - start) / args.reads
    iterations = mesh.mesh.iterations
    cells = mesh.r.size
    n = args.baseline_reads
    diff = np.max(np.abs(cols_mesh[:n] - base_cols)) / np.max(np.abs(base_cols))
    print(f"tile {mesh.r.shape[0]} x {mesh.r.shape[1]} devices of layer {args.layer}, {args.threads} thread(s), "
          f"{args.reads} reads at density {args.density} (seed {args.seed}); all settled on the mesh: "
          f"{bool(settled.all())}")
    print(f"sparse chord iteration: {base * 1e6:9.1f} us per read ({n} reads)")
    print(f"mesh iteration        : {fast * 1e6:9.1f} us per read, {iterations.mean():.2f} iterations per read, "
          f"{fast * args.reads / iterations.sum() / cells * 1e9:.2f} ns per cell and iteration")
    print(f"ratio {base / fast:.1f}x; largest column-current difference {diff:.2g} of the largest")


if __name__ == "__main__":
    main()
