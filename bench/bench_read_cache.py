"""Benchmark: the SPICE read cache on a re-run.

One tile of ROWS rows and COLS differential weight columns of the ``rram-1t1r-sky130-hr`` preset
(100 kOhm, met1 wires, threshold mismatch), VECTORS random binary inputs. Baseline (first, in the
same run): a reader with an empty cache solves every input with ENGINE and stores it. Then a new
reader (as a second ``cosim`` or ``spice`` run would make) on the same cache directory. Prints
seconds, reads served and solved, the hit rate of the re-run and whether its currents equal the
first run's bit for bit.

    python bench/bench_read_cache.py [--rows 64] [--cols 64] [--vectors 16] [--engine ngspice]
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
from bmcnn_hw.spice.read_cache import ReadCache
from bmcnn_hw.spice.run import SpiceReader
from tests.helpers import random_fc_model


def _run(model, chip, netlists: Path, cache_dir: Path, volts, cols: int, engine: str):
    """(read, seconds, cache) of one reader on ``cache_dir``."""
    cache = ReadCache(cache_dir)
    reader = SpiceReader(model, chip, netlists, mode="per-vector", cache=cache, engine=engine)
    read, seconds = timed(reader.read, 0, 0, 0, volts, cols)
    return read, seconds, cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=64, help="tile rows")
    parser.add_argument("--cols", type=int, default=64, help="weight columns (two devices each)")
    parser.add_argument("--vectors", type=int, default=16, help="distinct input vectors read")
    parser.add_argument("--engine", choices=("ngspice", "vacask"), default="ngspice", help="engine that solves")
    args = parser.parse_args()
    device = dataclasses.replace(get_preset("rram-1t1r-sky130-hr"), sigma_on_rel=0.1, sigma_off_rel=0.1)
    model = random_fc_model(args.rows, args.cols, 0, tile_rows=args.rows, tile_cols=args.cols, device=device)
    chip = Chip(model, device, 1)
    volts = np.unique(np.random.default_rng(0).integers(0, 2, (args.vectors, args.rows)), axis=0) * device.v_read_v
    with tempfile.TemporaryDirectory() as tmp:
        write_netlists(model, chip, Path(tmp) / "netlists")
        first, first_s, cold = _run(model, chip, Path(tmp) / "netlists", Path(tmp) / "cache", volts, args.cols,
                                    args.engine)
        again, again_s, warm = _run(model, chip, Path(tmp) / "netlists", Path(tmp) / "cache", volts, args.cols,
                                    args.engine)
    same = all(np.array_equal(getattr(first, k), getattr(again, k)) for k in ("i_plus", "i_minus", "i_drivers"))
    looked_up = warm.hits + warm.misses
    print(f"tile {args.rows} x {2 * args.cols} 1T1R devices, met1 wires, {len(volts)} distinct vectors, "
          f"{engine_label(args.engine)}")
    print(f"  first run, empty cache: {first_s:7.2f} s, {cold.hits} served, {cold.misses} solved (1.0x)")
    print(f"  re-run on that cache  : {again_s:7.2f} s, {warm.hits} served, {warm.misses} solved "
          f"({first_s / again_s:.0f}x)")
    print(f"  hit rate of the re-run: {100 * warm.hits / max(looked_up, 1):.1f} %; currents bit-identical: "
          f"{'yes' if same else 'NO'}; entries rejected: {warm.rejected}")


if __name__ == "__main__":
    main()
