"""Benchmark (d): nonlinear cells (sinh RRAM, sky130 1T1R) on one tile with wire resistance.

Per cell type, one tile of ROWS x ROWS devices (ROWS rows, ROWS/2 differential weight columns)
with the wires of the rram-1t1r-sky130 preset, random binary inputs:

- ngspice, one ``alter`` + ``op`` per vector (baseline: what per-vector mode did before);
- ngspice, the same netlist stepped through the vectors in DC sweeps (``SpiceReader``
  per-vector mode for nonlinear cells);
- the physics executor's nonlinear nodal solve of the same reads (factorisation included).

Prints vectors/s, the ratios to the baseline, and the largest current difference.

    python bench/bench_cells.py [--rows 128] [--vectors 32] [--baseline-vectors 3] [--cells sinh,1t1r]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import numpy as np
from common import timed

from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.golden.tile_reader import PhysicsReader
from bmcnn_hw.presets import get_preset
from bmcnn_hw.spice.netlist import write_netlists
from bmcnn_hw.spice.run import SpiceReader
from tests.helpers import random_fc_model


def _bench(name, device, rows, vectors, baseline_vectors):
    cols = rows // 2
    model = random_fc_model(rows, cols, 0, tile_rows=rows, tile_cols=cols, device=device)
    chip = Chip(model, device, 1)
    volts = np.random.default_rng(0).integers(0, 2, (vectors, rows)) * device.v_read_v
    with tempfile.TemporaryDirectory() as tmp:
        write_netlists(model, chip, Path(tmp))
        single = SpiceReader(model, chip, Path(tmp), mode="per-vector", stepped=False)
        base, base_s = timed(single.read, 0, 0, 0, volts[:baseline_vectors], cols)
        stepped, step_s = timed(SpiceReader(model, chip, Path(tmp), mode="per-vector").read, 0, 0, 0, volts, cols)
    physics, phys_s = timed(PhysicsReader(chip).read, 0, 0, 0, volts, cols)
    rate = [baseline_vectors / base_s, vectors / step_s, vectors / phys_s]
    err = np.max(np.abs(stepped.i_plus - physics.i_plus)) / np.max(np.abs(physics.i_plus))
    same = np.max(np.abs(stepped.i_plus[:baseline_vectors] - base.i_plus)) / np.max(np.abs(base.i_plus))
    print(f"{name:6s} ngspice op/vector {rate[0]:7.2f} vec/s (1.0x) | ngspice stepped {rate[1]:7.2f} vec/s "
          f"({rate[1] / rate[0]:5.1f}x) | physics {rate[2]:8.1f} vec/s ({rate[2] / rate[0]:6.1f}x, "
          f"{rate[2] / rate[1]:5.1f}x stepped) | stepped vs op {same:.0e}, physics vs stepped {err:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=128, help="tile rows (= device columns)")
    parser.add_argument("--vectors", type=int, default=32, help="vectors for the stepped and physics runs")
    parser.add_argument("--baseline-vectors", type=int, default=3, help="vectors for the op-per-vector baseline")
    parser.add_argument("--cells", default="sinh,1t1r", help="cell types to run, comma-separated (default both)")
    args = parser.parse_args()
    wire = get_preset("rram-1t1r-sky130").r_wire_ohm
    print(f"{args.rows} x {args.rows} devices, wire {wire:.3f} ohm/segment, {args.vectors} random vectors")
    devices = {"sinh": dataclasses.replace(get_preset("rram-sinh"), r_wire_ohm=wire),
               "1t1r": get_preset("rram-1t1r-sky130")}
    for cell in args.cells.split(","):
        _bench(cell, devices[cell], args.rows, args.vectors, args.baseline_vectors)


if __name__ == "__main__":
    main()
