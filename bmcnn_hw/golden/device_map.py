"""Weight -> device-state mapping of the two encodings, and the physical column layout.

differential: w = +1 -> (G+ = G_on, G- = G_off); w = -1 -> (G_off, G_on). Padding positions
of a partial tile (w = 0) hold both devices at G_off, so they add no differential current.

reference: one device per weight, w = +1 -> G_on, w = -1 -> G_off (padding: G_off), and one
shared reference column of resistors at R_ref = 1 / ((G_on + G_off) / 2); the output of a
column is I - I_ref.

Physical column order along the rows (it matters for IR drop): differential pairs
interleaved (G+ of column 0, G- of column 0, G+ of column 1, ...); reference: the weight
columns, then the reference column last.
"""

from __future__ import annotations

import numpy as np

from ..artefact import CompiledLayer
from ..config import Encoding


def padded_tile(layer: CompiledLayer, rt: int, ct: int) -> np.ndarray:
    """(tile_rows, tile_cols) int8 weights of one tile; padding is 0."""
    t = layer.tiling
    assert t is not None  # memristive layers are tiled
    r0, r1 = t.row_range(rt, layer.rows)
    c0, c1 = t.col_range(ct, layer.cols)
    out = np.zeros((t.tile_rows, t.tile_cols), dtype=np.int8)
    out[: r1 - r0, : c1 - c0] = layer.weight[r0:r1, c0:c1]
    return out


def device_states(weight_tile: np.ndarray, encoding: Encoding = "differential") -> tuple[np.ndarray, np.ndarray | None]:
    """Boolean ON-state maps (positive devices, negative devices or None) of a tile."""
    if encoding == "reference":
        return weight_tile > 0, None
    return weight_tile > 0, weight_tile < 0


def physical_columns(encoding: Encoding, used_cols: int) -> list[tuple[str, int]]:
    """Physical columns in layout order as (side, weight column); side is "p", "m" or "ref"."""
    if encoding == "reference":
        return [("p", c) for c in range(used_cols)] + [("ref", -1)]
    return [(side, c) for c in range(used_cols) for side in ("p", "m")]


def reference_resistance(r_on_ohm: float, r_off_ohm: float) -> float:
    """R_ref of the shared reference column: G_ref = (G_on + G_off) / 2."""
    return 2.0 / (1.0 / r_on_ohm + 1.0 / r_off_ohm)
