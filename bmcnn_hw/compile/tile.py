"""Pass: cut each layer's weight matrix into crossbar tiles and size its ADC."""

from __future__ import annotations

import math

import numpy as np

from ..artefact import CompiledLayer, CompiledModel, Tiling, tile_sign_counts
from ..config import CrossbarGeometry, Encoding, ReadoutParams, rows_code_bits
from ..errors import ConfigError
from ..golden.device_map import physical_columns
from .to_crossbar import PassContext

NGSPICE_MAX_PORTS = 1004
"""Most ports a subcircuit instance may have in ngspice 39 (its subckt expansion stops with
"N_GLOBAL_NODES overflow" at 1005, measured): a tile's netlist is one subcircuit whose ports are
its used rows and physical columns."""


def tile_layer(rows: int, cols: int, tile_rows: int, tile_cols: int) -> Tiling:
    """Tiling of a rows x cols matrix with explicit padding of the last tiles."""
    n_rt, n_ct = math.ceil(rows / tile_rows), math.ceil(cols / tile_cols)
    return Tiling(tile_rows, tile_cols, n_rt, n_ct, n_rt * tile_rows - rows, n_ct * tile_cols - cols)


def check_spice_ports(layer: CompiledLayer, tiling: Tiling, encoding: Encoding) -> None:
    """Refuse a tile whose netlist ngspice cannot load (more than :data:`NGSPICE_MAX_PORTS` ports).

    Raises:
        ConfigError: naming the layer, its tile, the port count and the limit.
    """
    rows = min(tiling.tile_rows, layer.rows)
    phys = len(physical_columns(encoding, min(tiling.tile_cols, layer.cols)))
    if rows + phys > NGSPICE_MAX_PORTS:
        raise ConfigError(f"{layer.name}: a {tiling.tile_rows}x{tiling.tile_cols} tile is a netlist subcircuit of "
                          f"{rows + phys} ports ({rows} rows + {phys} {encoding} columns); ngspice accepts at most "
                          f"{NGSPICE_MAX_PORTS}: choose --tile with rows + physical columns <= {NGSPICE_MAX_PORTS}")


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


def signed_width(lo: int, hi: int) -> int:
    """Bits of the smallest signed code (at least 2) that holds every integer in [lo, hi]."""
    bits = 2
    while -(2 ** (bits - 1)) > lo or hi > 2 ** (bits - 1) - 1:
        bits += 1
    return bits


def weight_code_range(weight: np.ndarray, tile_rows: int, bipolar: bool) -> tuple[int, int]:
    """Lowest and highest ADC code any column of any row tile of ``weight`` can produce from binary
    inputs, in unit currents.

    A column with p +1 and n -1 weights in a tile spans [-n, p] with inputs in {0, 1} (only the
    -1 rows driven, only the +1 rows driven) and [-(p + n), p + n] with inputs in {-1, +1}.
    Padding rows carry no weight and add nothing.
    """
    plus, minus = tile_sign_counts(weight, tile_rows)
    if bipolar:
        plus = minus = plus + minus
    return -int(minus.max()), int(plus.max())


def window_width(weight: np.ndarray, tile_rows: int) -> int:
    """Bits of the smallest unsigned ADC window per column that holds the range [-n, p] of each
    of its tiles (at most n -1 and p +1 weights in any; inputs in {0, 1}): p + n + 1 levels, at
    least 2 bits."""
    plus, minus = tile_sign_counts(weight, tile_rows)
    levels = int((plus.max(axis=0) + minus.max(axis=0)).max()) + 1
    return max(2, (levels - 1).bit_length())


def adc_bits(layer: CompiledLayer, readout: ReadoutParams, tile_rows: int, bipolar: bool) -> int:
    """ADC bits of a crossbar layer: the readout's fixed width, or the smallest exact one for the
    tile's rows (``adc_range`` rows), for the layer's own weights (``weights``, signed) or for
    each tile column's window (``columns``, unsigned)."""
    if readout.adc_bits or readout.adc_range == "rows":
        return int(readout.resolved_bits(min(layer.rows, tile_rows)))
    if readout.adc_range == "columns":
        return window_width(layer.weight, tile_rows)
    return signed_width(*weight_code_range(layer.weight, tile_rows, bipolar))


def sense_eligible(layer: CompiledLayer, geometry: CrossbarGeometry) -> bool:
    """Whether a layer can be read out by sense amplifiers: a hidden crossbar layer whose binary
    unipolar inputs fit one row tile (one read per output decides it)."""
    return (not layer.digital and not layer.is_output and layer.input_bits == 1
            and layer.rows <= geometry.tile_rows and geometry.input_mode == "unipolar")


def sense_layers(model: CompiledModel) -> set[str]:
    """Names of the layers the model's ``readout.sense_layers`` asks for.

    Raises:
        ConfigError: a name that is not a layer, or a layer that cannot be sensed (naming the
            layers that can).
    """
    geometry = model.hardware.geometry
    eligible = [la.name for la in model.layers if sense_eligible(la, geometry)]
    names = model.hardware.readout.sense_names(eligible)
    legal = ", ".join(eligible) if eligible else "none in this model"
    for name in names:
        layer = next((la for la in model.layers if la.name == name), None)
        if layer is None:
            raise ConfigError(f"--sense-layers: no layer {name!r} (layers: "
                              f"{', '.join(la.name for la in model.layers)}); layers that qualify: {legal}")
        if name not in eligible:
            raise ConfigError(f"--sense-layers: layer {name} cannot be read out by sense amplifiers (it needs a "
                              f"hidden crossbar layer with 1-bit unipolar inputs on at most {geometry.tile_rows} "
                              f"rows; it has {layer.rows} rows of {layer.input_bits}-bit inputs"
                              f"{', and is the output layer' if layer.is_output else ''}); layers that qualify: "
                              f"{legal}")
    return set(names)


def check_skip_layers(model: CompiledModel) -> None:
    """The layers ``readout.skip_zero_reads`` names (when it names layers) are crossbar layers.

    Raises:
        ConfigError: naming the layer and the crossbar layers.
    """
    crossbar = [la.name for la in model.layers if not la.digital]
    for name in model.hardware.readout.skip_names():
        if name not in crossbar:
            raise ConfigError(f"--skip-zero-reads: no crossbar layer {name!r} (crossbar layers: "
                              f"{', '.join(crossbar) or 'none'}); give `auto`, layer names, or no value for all")


def tile(model: CompiledModel, ctx: PassContext | None = None) -> CompiledModel:
    """Pass: record tiling and ADC bits of every crossbar layer, the MAC lanes of every digital layer,
    and whether each periphery's configuration registers are clock-gated and its thresholds
    hard-wired (from the model's HardwareConfig)."""
    geometry, readout = model.hardware.geometry, model.hardware.readout
    sensed = sense_layers(model)
    check_skip_layers(model)
    for i, layer in enumerate(model.layers):
        model = model.replace_layer(i, clock_gating=model.hardware.digital.clock_gating,
                                    hardwired_thresholds=model.hardware.digital.hardwired_thresholds)
        layer = model.layers[i]
        if layer.digital:
            model = model.replace_layer(i, mac_lanes=mac_lanes(layer, model.hardware.digital.mac_lanes))
            continue
        tiling = tile_layer(layer.rows, layer.cols, *geometry.layer_tile(layer.rows, layer.cols))
        check_spice_ports(layer, tiling, geometry.encoding)
        bipolar = geometry.input_mode == "bipolar"
        bits = (rows_code_bits(layer.rows) if layer.name in sensed  # reference DAC: +-rows exactly
                else adc_bits(layer, readout, geometry.tile_rows, bipolar))
        model = model.replace_layer(i, tiling=tiling, adc_bits=bits,
                                    bipolar=bipolar, sense=layer.name in sensed,
                                    adc_window=readout.adc_range == "columns" and layer.name not in sensed)
    return model
