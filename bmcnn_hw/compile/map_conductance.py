"""Weight -> device-state mapping of the differential-pair encoding.

w = +1 -> (G+ = G_on, G- = G_off); w = -1 -> (G_off, G_on). Padding positions of a
partial tile (w = 0) hold both devices at G_off, so they add no differential current.
"""

from __future__ import annotations

import numpy as np


def padded_tile(layer, rt: int, ct: int) -> np.ndarray:
    """(tile_rows, tile_cols) int8 weights of one tile; padding is 0."""
    t = layer.tiling
    r0, r1 = t.row_range(rt, layer.rows)
    c0, c1 = t.col_range(ct, layer.cols)
    out = np.zeros((t.tile_rows, t.tile_cols), dtype=np.int8)
    out[: r1 - r0, : c1 - c0] = layer.weight[r0:r1, c0:c1]
    return out


def device_states(weight_tile: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boolean ON-state maps (plus, minus) of a tile's differential pairs."""
    return weight_tile > 0, weight_tile < 0
