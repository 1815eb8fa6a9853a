"""Measure the 1T1R transistor table's interpolation error against ngspice.

Characterises the access transistor of a device preset with ngspice on a grid of half the
table's steps in every direction (a band of gate values around the word-line voltage, every
drain value, the lowest source values, where the column nodes of a read sit), interpolates the
preset's own table (``bmcnn_hw.spice.sky130.transistor_table``, the one the physics executor
uses) at those points and prints the largest difference: over all points, and at the points
that are midpoints in one direction only (gate, drain or source), each with where it occurs.

    python scripts/transistor_table_error.py [--device rram-1t1r-sky130] [--gate-points 24] [--source-points 121]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bmcnn_hw.presets import get_preset
from bmcnn_hw.spice import sky130


def _halved(axis: np.ndarray) -> np.ndarray:
    """``axis`` with every step's midpoint inserted."""
    return np.linspace(axis[0], axis[-1], 2 * len(axis) - 1)


def _off_grid(points: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """True where a point of ``points`` is a midpoint (not a node) of ``axis``."""
    return ~np.isclose(points[:, None], axis[None, :], rtol=0, atol=1e-9).any(axis=1)


def main() -> None:
    """Characterise the half-step grid, compare, print."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="rram-1t1r-sky130", help="a 1T1R device preset or file")
    parser.add_argument("--gate-points", type=int, default=24, help="half-step gate values, centred on V_wl")
    parser.add_argument("--source-points", type=int, default=121, help="lowest half-step source values")
    args = parser.parse_args()
    params = get_preset(args.device)
    table = sky130.transistor_table(params)
    gate, drain, source = _halved(table.vg_v), _halved(table.vd_v), _halved(table.vs_v)
    centre = len(gate) // 2
    gate = gate[max(0, centre - args.gate_points // 2):centre + args.gate_points // 2]
    source = source[:args.source_points]
    exact = sky130.characterise(params, sky130.model_include(params.corner), (gate, drain, source))
    g, d, s = np.meshgrid(gate, drain, source, indexing="ij")
    interpolated = table.current(g.ravel(), d.ravel(), s.ravel())[0].reshape(exact.shape)
    error = np.abs(interpolated - exact)
    largest = np.abs(table.ids_a).max()
    print(f"{args.device}: table {table.ids_a.shape} (gate, drain, source), {error.size:,} half-step points")
    print(f"largest error {error.max():.3g} A = {error.max() / largest:.3g} of the table's largest current")
    mid = [_off_grid(gate, table.vg_v), _off_grid(drain, table.vd_v), _off_grid(source, table.vs_v)]
    for axis, name in enumerate(("gate", "drain", "source")):
        masks = [m if k == axis else ~m for k, m in enumerate(mid)]
        only = masks[0][:, None, None] & masks[1][None, :, None] & masks[2][None, None, :]
        masked = np.where(only, error, 0.0)
        at = np.unravel_index(np.argmax(masked), masked.shape)
        print(f"  midpoints in {name} only: {masked.max():.3g} A at V_g {gate[at[0]]:.4f}, "
              f"V_d {drain[at[1]]:.5f}, V_s {source[at[2]]:.5f} V")


if __name__ == "__main__":
    main()
