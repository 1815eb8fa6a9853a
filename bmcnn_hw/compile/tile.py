"""Pass: cut each layer's weight matrix into crossbar tiles and size its ADC."""

from __future__ import annotations

import math

from ..artefact import CompiledModel, Tiling


def tile_layer(rows: int, cols: int, tile_rows: int, tile_cols: int) -> Tiling:
    """Tiling of a rows x cols matrix with explicit padding of the last tiles."""
    n_rt, n_ct = math.ceil(rows / tile_rows), math.ceil(cols / tile_cols)
    return Tiling(tile_rows, tile_cols, n_rt, n_ct, n_rt * tile_rows - rows, n_ct * tile_cols - cols)


def tile(model: CompiledModel) -> CompiledModel:
    """Record tiling and ADC bits of every layer (from the model's HardwareConfig)."""
    geometry, readout = model.hardware.geometry, model.hardware.readout
    for i, layer in enumerate(model.layers):
        if layer.digital:
            continue
        tiling = tile_layer(layer.rows, layer.cols, geometry.tile_rows, geometry.tile_cols)
        used_rows = min(layer.rows, geometry.tile_rows)
        model = model.replace_layer(i, tiling=tiling, adc_bits=readout.resolved_bits(used_rows),
                                    bipolar=geometry.input_mode == "bipolar")
    return model
