"""Benchmark: SPICE engines on one tile of sky130 1T1R cells behind met1 wires.

One tile of ROWS rows and COLS differential weight columns (2 COLS devices per row) of the
``rram-1t1r-sky130-hr`` preset (100 kOhm, met1 wires, threshold mismatch), random binary
inputs. Baseline (measured first, in the same run): ngspice as ``evaluate --backend spice``
runs it for nonlinear cells (every vector a point of one stepped DC sweep, the default).
Then VACASK (``--engine vacask``: one run, ``alter`` + ``op`` per vector). Prints seconds per
operating point of each (process time of the engine included: VACASK runs as a child process),
the ratio, and the largest current difference relative to the largest current.

    python bench/bench_engines.py [--rows 64] [--cols 64] [--vectors 4]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import numpy as np
from common import timed

from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.presets import get_preset
from bmcnn_hw.spice.engines import engine_label
from bmcnn_hw.spice.netlist import write_netlists
from bmcnn_hw.spice.run import SpiceReader
from tests.helpers import random_fc_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=64, help="tile rows")
    parser.add_argument("--cols", type=int, default=64, help="weight columns (two devices each)")
    parser.add_argument("--vectors", type=int, default=4, help="input vectors solved by each engine")
    args = parser.parse_args()
    device = dataclasses.replace(get_preset("rram-1t1r-sky130-hr"), sigma_on_rel=0.1, sigma_off_rel=0.1)
    rows, cols = args.rows, args.cols
    model = random_fc_model(rows, cols, 0, tile_rows=rows, tile_cols=cols, device=device)
    chip = Chip(model, device, 1)
    volts = np.random.default_rng(0).integers(0, 2, (args.vectors, rows)) * device.v_read_v
    with tempfile.TemporaryDirectory() as tmp:
        write_netlists(model, chip, Path(tmp))
        results = {}
        for engine in ("ngspice", "vacask"):
            reader = SpiceReader(model, chip, Path(tmp), mode="per-vector", engine=engine)
            results[engine] = timed(reader.read, 0, 0, 0, volts, cols)
    (ng, ng_s), (va, va_s) = results["ngspice"], results["vacask"]
    worst = max(float(np.max(np.abs(getattr(va, k) - getattr(ng, k))) / np.max(np.abs(getattr(ng, k))))
                for k in ("i_plus", "i_minus", "i_drivers"))
    n = args.vectors
    print(f"tile {rows} x {2 * cols} 1T1R devices, met1 wires, {n} vectors")
    print(f"  {engine_label('ngspice')}, stepped DC sweep: {ng_s / n:7.2f} s per operating point (1.0x)")
    print(f"  {engine_label('vacask')}, alter + op       : {va_s / n:7.2f} s per operating point "
          f"({ng_s / va_s:.1f}x)")
    print(f"  largest current difference / largest current: {worst:.1e}")


if __name__ == "__main__":
    main()
