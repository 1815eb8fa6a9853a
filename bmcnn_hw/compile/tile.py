"""Pass: cut each layer's weight matrix into crossbar tiles and size its ADC."""

from __future__ import annotations

import math

from ..artefact import CompiledLayer, CompiledModel, Tiling
from ..errors import ConfigError


def tile_layer(rows: int, cols: int, tile_rows: int, tile_cols: int) -> Tiling:
    """Tiling of a rows x cols matrix with explicit padding of the last tiles."""
    n_rt, n_ct = math.ceil(rows / tile_rows), math.ceil(cols / tile_cols)
    return Tiling(tile_rows, tile_cols, n_rt, n_ct, n_rt * tile_rows - rows, n_ct * tile_cols - cols)


def mac_lanes(layer: CompiledLayer, requested: int) -> int:
    """MAC units of a digital layer's engine: ``requested`` (0: one per output channel).

    Raises:
        ConfigError: ``requested`` does not divide the layer's output channels (names the layer
            and the divisors that do).
    """
    if requested == 0:
        return layer.cols
    if layer.cols % requested:
        divisors = [d for d in range(1, layer.cols + 1) if layer.cols % d == 0]
        raise ConfigError(f"layer {layer.name}: mac_lanes {requested} does not divide its {layer.cols} output "
                          f"channels; choose one of {', '.join(map(str, divisors))} (0 = one per channel)")
    return requested


def tile(model: CompiledModel) -> CompiledModel:
    """Record tiling and ADC bits of every crossbar layer, the MAC lanes of every digital layer,
    and whether each periphery's configuration registers are clock-gated (from the model's
    HardwareConfig)."""
    geometry, readout = model.hardware.geometry, model.hardware.readout
    for i, layer in enumerate(model.layers):
        model = model.replace_layer(i, clock_gating=model.hardware.digital.clock_gating)
        layer = model.layers[i]
        if layer.digital:
            model = model.replace_layer(i, mac_lanes=mac_lanes(layer, model.hardware.digital.mac_lanes))
            continue
        tiling = tile_layer(layer.rows, layer.cols, geometry.tile_rows, geometry.tile_cols)
        used_rows = min(layer.rows, geometry.tile_rows)
        model = model.replace_layer(i, tiling=tiling, adc_bits=readout.resolved_bits(used_rows),
                                    bipolar=geometry.input_mode == "bipolar")
    return model
