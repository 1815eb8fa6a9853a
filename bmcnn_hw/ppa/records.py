"""Records of the PPA flow: its options and what it measured per layer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .schedule import LayerSchedule
from .sta import StaResult
from .synth import SynthResult
from .tools import DEFAULT_CELL_MODELS, DEFAULT_LIBERTY
from .transient import TransientRead

COMPONENTS = ("array_drivers", "tia_output", "tia_bias", "adc", "zero_detect", "digital")


@dataclass(frozen=True)
class PpaOptions:
    """What ``bmcnn-hw ppa`` measures with."""

    liberty: Path = DEFAULT_LIBERTY
    cell_models: Path = DEFAULT_CELL_MODELS
    cost_model: Path | None = None
    clock_mhz: float | None = None
    """None: the fastest clock every layer meets (the slowest layer's fmax, rounded down to 1 MHz)."""
    activity_beats: int = 20000
    """Gate-level simulation budget per layer (beats of real images, whole outputs)."""
    digital: bool = True
    """False: skip synthesis, timing and digital power (analog and model figures only)."""
    columns_per_adc: int | None = None
    """Weight columns sharing one ADC (converted one after another after each read); None: the
    build's (``ReadoutParams.columns_per_adc``)."""
    engine: str = "ngspice"
    """Engine of the transient reads: ``ngspice`` (the reference), ``vacask``, ``linear``
    (:mod:`bmcnn_hw.ppa.linear_transient`, linear cells only) or ``auto``
    (:func:`bmcnn_hw.spice.engines.resolve_engine`: VACASK for 1T1R cells where it is installed,
    ``linear`` for linear cells behind wires)."""


@dataclass
class LayerPpa:
    """Everything measured for one layer."""

    schedule: LayerSchedule
    transient: TransientRead | None
    """The SPICE read of the layer's tile (0, 0); None for a digital layer."""
    dc_power_per_inference_w_s: float
    """Sum over the layer's tile reads of the DC driver power of real inputs (W x reads)."""
    synth: SynthResult | None = None
    sta: StaResult | None = None
    gate_outputs_checked: int = 0
    gate_beats: int = 0
    energy_j: dict[str, float] = field(default_factory=dict)
    area_um2: dict[str, float] = field(default_factory=dict)
    analog_time_s: float = 0.0
    digital_time_s: float = 0.0
    columns_per_adc: int = 1
    """Weight columns sharing one ADC in this layer."""
    performed_read_fraction: float = 1.0
    """Share of the layer's row-tile reads performed (below 1 only in a build that skips all-zero
    reads; measured on the PPA's images)."""


def layer_record(lp: LayerPpa) -> dict[str, Any]:
    """JSON-able record of one layer."""
    out = {"schedule": asdict(lp.schedule), "transient": asdict(lp.transient) if lp.transient else None,
           "energy_j": lp.energy_j,
           "area_um2": lp.area_um2, "analog_time_s": lp.analog_time_s, "digital_time_s": lp.digital_time_s,
           "layer_time_s": max(lp.analog_time_s, lp.digital_time_s),
           "dc_power_x_reads_w": lp.dc_power_per_inference_w_s,
           "performed_read_fraction": lp.performed_read_fraction}
    if lp.synth is not None and lp.sta is not None:
        out["digital"] = {"cells": lp.synth.cells, "area_um2": lp.synth.area_um2, "cell_counts": lp.synth.cell_counts,
                          "critical_path_ns": lp.sta.critical_path_ns, "slack_ns": lp.sta.slack_ns,
                          "fmax_mhz": lp.sta.fmax_mhz, "power_w": lp.sta.power_w,
                          "annotated_nets": lp.sta.annotated_nets, "annotated_pins": lp.sta.annotated_pins,
                          "activity_nets_sent": lp.sta.nets_sent, "gate_level_beats": lp.gate_beats,
                          "gate_level_outputs_checked": lp.gate_outputs_checked}
    return out
