"""Benchmark (e): a layer's SPICE reads in ngspice worker processes (``SpiceReader(jobs=N)``).

One fc layer of TILES row tiles of ROWS x COLS weights (differential: 2 x COLS devices per
row) with the cells and wires of a preset, VECTORS random binary inputs; the layer is read
through the crossbar accumulator (which prefetches every tile read) once in this process
(jobs=1, the baseline) and once with N worker processes. Prints seconds, the speed-up and
whether the accumulators are identical.

    python bench/bench_spice_jobs.py [--device rram-1t1r-sky130] [--tiles 8] [--rows 64]
        [--cols 32] [--vectors 4] [--workers N]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from common import timed

from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.golden.crossbar import CrossbarAccumulator
from bmcnn_hw.presets import get_preset
from bmcnn_hw.spice.engines import default_jobs
from bmcnn_hw.spice.netlist import write_netlists
from bmcnn_hw.spice.run import SpiceReader
from tests.helpers import random_fc_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="rram-1t1r-sky130", help="device preset (cells and wires)")
    parser.add_argument("--tiles", type=int, default=8, help="row tiles of the layer")
    parser.add_argument("--rows", type=int, default=64, help="rows per tile")
    parser.add_argument("--cols", type=int, default=32, help="weight columns (one column tile)")
    parser.add_argument("--vectors", type=int, default=4, help="random input vectors read through the layer")
    parser.add_argument("--workers", type=int, default=default_jobs(), help="worker processes (default: one per core)")
    args = parser.parse_args()
    device = get_preset(args.device)
    model = random_fc_model(args.tiles * args.rows, args.cols, 0, tile_rows=args.rows, tile_cols=args.cols,
                            device=device)
    chip = Chip(model, device, 1)
    rows = np.random.default_rng(0).integers(0, 2, (1, args.vectors, args.tiles * args.rows))
    print(f"{args.device}: {args.tiles} tiles of {args.rows} x {2 * args.cols} devices, {args.vectors} vectors")
    with tempfile.TemporaryDirectory() as tmp:
        write_netlists(model, chip, Path(tmp))
        results = []
        for jobs in (1, args.workers):
            reader = SpiceReader(model, chip, Path(tmp), jobs=jobs)
            acc, seconds = timed(CrossbarAccumulator(model, reader), 0, model.layers[0], rows)
            results.append((acc, seconds, reader.solves))
            print(f"jobs={jobs}: {seconds:7.1f} s, {reader.solves} ngspice solves")
    (acc1, s1, _), (acc_n, s_n, _) = results
    same = np.array_equal(acc1, acc_n)
    print(f"speed-up with {args.workers} workers: {s1 / s_n:.2f}x; accumulators identical: {same}")


if __name__ == "__main__":
    main()
