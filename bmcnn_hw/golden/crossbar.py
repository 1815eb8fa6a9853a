"""Crossbar physics executor: tiles of sampled devices, TIA + ADC, bit-serial accumulation.

A tile read takes binary row inputs ``bits`` (M, used rows), drives active rows at
V_read (columns held at virtual ground by the TIA), and gives per weight column
the differential current ``I+ - I-``. The ADC turns it into a signed code with one
step per ``lsb_units`` units of ``V_read * (G_on - G_off)``; for an ideal chip the
code equals the integer dot product of the tile. The accumulator sums codes across
row tiles and shift-adds the bit planes of multi-bit inputs.

The tile reader is pluggable: :class:`PhysicsReader` here (NumPy), and the SPICE
reader in :mod:`bmcnn_hw.spice.run`; everything around the read is shared.
"""

from __future__ import annotations

import numpy as np

from ..artefact import CompiledModel
from ..config import ReadoutParams
from .chip import Chip
from .integer import Trace, run_integer


class PhysicsReader:
    """Ideal-wire tile read: ``I = V @ G`` for each side of the differential pairs."""

    def __init__(self, chip: Chip):
        self.chip = chip

    def read_currents(self, layer_index: int, rt: int, ct: int, bits: np.ndarray,
                      used_cols: int) -> tuple[np.ndarray, np.ndarray]:
        """Currents (A) of the first ``used_cols`` G+ and G- columns, each (M, used_cols).

        ``bits`` (M, used_rows) drives the tile's first rows; padding rows sit at 0 V
        and, with ideal wires, carry no current, so they are left out of the product.
        """
        devices = self.chip.tiles[(layer_index, rt, ct)]
        used_rows = bits.shape[1]
        volts = bits.astype(np.float64) * self.chip.params.v_read_v
        return (volts @ devices.g_plus[:used_rows, :used_cols],
                volts @ devices.g_minus[:used_rows, :used_cols])


def adc_codes(i_diff: np.ndarray, unit_current_a: float, readout: ReadoutParams, bits: int) -> np.ndarray:
    """Signed ADC codes of differential currents: round(I / LSB), clipped to ``bits`` bits."""
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return np.clip(np.rint(i_diff / (unit_current_a * readout.lsb_units)), lo, hi).astype(np.int64)


class CrossbarAccumulator:
    """``accumulate`` callback for :func:`run_integer` that reads through crossbar tiles."""

    def __init__(self, model: CompiledModel, reader, record: bool = False):
        self.model, self.reader = model, reader
        self.unit = reader.chip.params.unit_current_a
        self.record = record
        self.reads: list = []
        """When ``record``: (layer, rt, ct, plane, bits, i_plus, i_minus, codes) per tile read."""

    def __call__(self, index: int, layer, rows: np.ndarray) -> np.ndarray:
        n, p, _ = rows.shape
        flat = rows.reshape(n * p, layer.rows)
        t = layer.tiling
        acc = np.zeros((n * p, layer.cols), dtype=np.int64)
        for plane in range(layer.input_bits):
            plane_bits = ((flat >> plane) & 1).astype(np.uint8)
            for rt in range(t.n_row_tiles):
                r0, r1 = t.row_range(rt, layer.rows)
                tile_bits = np.ascontiguousarray(plane_bits[:, r0:r1])
                for ct in range(t.n_col_tiles):
                    c0, c1 = t.col_range(ct, layer.cols)
                    i_plus, i_minus = self.reader.read_currents(index, rt, ct, tile_bits, c1 - c0)
                    codes = adc_codes(i_plus - i_minus, self.unit, self.model.hardware.readout, layer.adc_bits)
                    acc[:, c0:c1] += codes << plane
                    if self.record:
                        self.reads.append((index, rt, ct, plane, tile_bits, i_plus, i_minus, codes))
        return acc.reshape(n, p, layer.cols)


def run_crossbar(model: CompiledModel, images: np.ndarray, reader, record: bool = False) -> tuple[Trace, CrossbarAccumulator]:
    """Run images through the crossbar executor with ``reader`` doing every tile read."""
    accumulator = CrossbarAccumulator(model, reader, record)
    return run_integer(model, images, accumulator), accumulator
