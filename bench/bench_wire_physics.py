"""Benchmark (b): the physics model with wire resistance vs ngspice, one tile read.

Physics: sparse nodal characterisation of the tile (SciPy SuperLU) plus one read.
ngspice: load the same tile's netlist and solve one operating point. Both give the same
currents (tests assert 1e-6); this measures their cost.

    python bench/bench_wire_physics.py [--sizes 32 64 128] [--r-wire 2.5]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from common import timed

from bmcnn_hw.config import DeviceParams
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.golden.tile_reader import PhysicsReader
from bmcnn_hw.spice.netlist import write_netlists
from bmcnn_hw.spice.run import SpiceReader
from tests.helpers import random_fc_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--r-wire", type=float, default=2.5)
    args = parser.parse_args()
    device = DeviceParams(r_wire_ohm=args.r_wire, r_source_ohm=50.0)
    print(f"wire {args.r_wire} ohm/segment, source 50 ohm; one read of an n x n tile (2n device columns)")
    for n in args.sizes:
        model = random_fc_model(n, n, 0, tile_rows=n, tile_cols=n, device=device)
        chip = Chip(model, device)
        volts = np.random.default_rng(0).integers(0, 2, (1, n)) * 0.2
        physics, phys_s = timed(PhysicsReader(chip).read, 0, 0, 0, volts, n)
        with tempfile.TemporaryDirectory() as tmp:
            write_netlists(model, chip, Path(tmp))
            spice, spice_s = timed(SpiceReader(model, chip, Path(tmp), mode="per-vector").read, 0, 0, 0, volts, n)
        err = np.max(np.abs(spice.i_plus - physics.i_plus)) / np.max(np.abs(physics.i_plus))
        print(f"{n:4d} x {n:<4d} physics {phys_s:8.3f} s   ngspice {spice_s:8.2f} s   ratio {spice_s / phys_s:8.1f}x"
              f"   max rel diff {err:.1e}")


if __name__ == "__main__":
    main()
