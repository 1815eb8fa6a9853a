"""What one inference asks of each layer's hardware: reads, ADC conversions, stream beats, MACs.

The schedule is the one the generated RTL implements: for every output position and input
bit plane, all tiles of a layer read at once (each tile has its drivers, TIAs and ADCs); the
codes then stream into the layer's periphery one ADC code per clock cycle, ordered
(plane, row tile) per output channel (:func:`bmcnn_hw.cosim.scenarios.beat_order`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..artefact import CompiledLayer
from ..rtl.mac import layer_cycles


@dataclass(frozen=True)
class LayerSchedule:
    """Per-inference counts of one crossbar layer."""

    name: str
    positions: int
    """Output positions (conv: H_out x W_out before pooling; fc: 1)."""
    planes: int
    row_tiles: int
    col_tiles: int
    reads: int
    """Parallel reads of the layer's tiles (positions x planes)."""
    tile_reads: int
    """Reads summed over tiles (reads x tiles)."""
    conversions: int
    """ADC conversions: one per used weight column of every tile read."""
    beats: int
    """Clock cycles of the layer's digital side: one per code streamed into the periphery (a sense
    layer's: one per read, every channel's decision in one word), or a digital layer's MAC
    engine cycles (load, multiply-accumulate, hand on)."""
    macs: int
    """Multiply-accumulates of the layer (positions x fan-in x outputs; padding excluded): binary
    on a crossbar, fixed-point in a digital layer's MAC engine."""
    tias: int
    """TIAs: one per physical column of every tile (differential: two per weight column)."""
    devices: int
    """Memristors of every tile (rows x physical columns, padding included)."""


def positions(layer: CompiledLayer) -> int:
    """Output positions of a layer before pooling."""
    if layer.kind != "conv":
        return 1
    h, w = layer.conv_hw
    return h * w


def layer_schedule(layer: CompiledLayer, encoding: str) -> LayerSchedule:
    """The counts of ``layer`` for one inference (``encoding``: "differential" or "reference")."""
    if layer.digital:  # no crossbar: no reads, conversions, TIAs or devices
        return LayerSchedule(name=layer.name, positions=positions(layer), planes=layer.input_bits, row_tiles=0,
                             col_tiles=0, reads=0, tile_reads=0, conversions=0, beats=layer_cycles(layer),
                             macs=positions(layer) * layer.rows * layer.cols, tias=0, devices=0)
    t = layer.tiling
    assert t is not None  # memristive layers are tiled
    pos, tiles = positions(layer), t.n_row_tiles * t.n_col_tiles
    reads = pos * layer.input_bits
    phys = 2 * t.tile_cols if encoding == "differential" else t.tile_cols + 1
    return LayerSchedule(
        name=layer.name, positions=pos, planes=layer.input_bits, row_tiles=t.n_row_tiles, col_tiles=t.n_col_tiles,
        reads=reads, tile_reads=reads * tiles, conversions=reads * t.n_row_tiles * layer.cols,
        beats=reads if layer.sense else reads * t.n_row_tiles * layer.cols, macs=pos * layer.rows * layer.cols,
        tias=tiles * phys, devices=tiles * t.tile_rows * phys)


def performed_read_fraction(layer: CompiledLayer, rows: np.ndarray) -> float:
    """Share of a crossbar layer's row-tile reads that are not all zero, for its input ``rows``
    (N, P, rows): the reads a build compiled with ``skip_zero_reads`` performs. A read of row
    tile ``rt`` in bit plane ``k`` is all zero when bit ``k`` of every input on its rows is 0."""
    t = layer.tiling
    assert t is not None  # crossbar layers are tiled
    performed = 0
    for rt in range(t.n_row_tiles):
        start, stop = t.row_range(rt, layer.rows)
        block = rows[..., start:stop]
        performed += sum(int(np.count_nonzero(((block >> plane) & 1).any(axis=-1)))
                         for plane in range(layer.input_bits))
    total = rows.shape[0] * rows.shape[1] * layer.input_bits * t.n_row_tiles
    return performed / total if total else 1.0


def _used_columns(layer: CompiledLayer) -> list[int]:
    """Used weight columns of each column tile of a crossbar layer (the last may be padded)."""
    t = layer.tiling
    assert t is not None  # crossbar layers are tiled
    return [t.col_range(ct, layer.cols)[1] - t.col_range(ct, layer.cols)[0] for ct in range(t.n_col_tiles)]


def adc_count(layer: CompiledLayer, columns_per_adc: int) -> int:
    """ADCs of a crossbar layer: per tile, one per ``columns_per_adc`` used weight columns
    (padding columns of the last column tile get none); a share larger than a tile's columns
    spans the used columns of that many tiles of the layer side by side."""
    t, used = layer.tiling, _used_columns(layer)
    assert t is not None  # crossbar layers are tiled
    if columns_per_adc > t.tile_cols:
        return math.ceil(t.n_row_tiles * sum(used) / columns_per_adc)
    return t.n_row_tiles * sum(math.ceil(u / columns_per_adc) for u in used)


def conversions_per_read(layer: CompiledLayer, columns_per_adc: int) -> int:
    """Conversions one ADC of a crossbar layer makes one after another after each read: its
    share, or fewer where the layer's tiles have fewer used columns."""
    t, used = layer.tiling, _used_columns(layer)
    assert t is not None  # crossbar layers are tiled
    columns = t.n_row_tiles * sum(used) if columns_per_adc > t.tile_cols else max(used)
    return min(columns_per_adc, columns)
