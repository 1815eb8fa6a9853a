"""``bmcnn-hw ppa``: energy, latency, throughput and area per inference of a build, every figure sourced.

Per crossbar layer: a SPICE transient read of its first tile (read time, worst-case read
energy), the physics executor's DC power on real test images (to scale that energy to the
inputs the chip really sees), the cost model (ADC, TIA bias, array pitch), and the layer's
Verilog through Yosys, a gate-level simulation of real beats (activity) and OpenSTA (fmax,
power). A digital fixed-point layer has only the last part: its layer top (MAC engine,
periphery, pool/argmax) through Yosys, a gate-level simulation of its real input elements and
OpenSTA; its time is the engine's cycles per image.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..artefact import CompiledLayer, CompiledModel, load_model
from ..config import check_converter_share
from ..cosim.rtl_check import layer_codes
from ..cosim.scenarios import full_layer_scenario
from ..errors import ConfigError
from ..golden.chip import Chip
from ..golden.crossbar import CrossbarAccumulator, run_crossbar
from ..golden.layers import layer_rows, network_input, periphery_inputs
from ..golden.tile_reader import PhysicsReader
from ..progress import heartbeat, say
from ..rtl.emit import top_name, verified_rtl
from ..rtl.mac import frame_elements, frames_per_image
from ..spice.engines import resolve_engine
from .cost_model import CostModel, load_cost_model
from .gatesim import run_gate_level
from .linear_transient import CELLS as LINEAR_ENGINE_CELLS
from .records import COMPONENTS, LayerPpa, PpaOptions
from .schedule import adc_count, conversions_per_read, layer_schedule, performed_read_fraction
from .sta import StaResult, run_sta
from .summary import AREA_COMPONENTS, summarize
from .synth import SynthResult, synthesize
from .transient import transient_read

NOMINAL_PERIOD_NS = 10.0
INPUT_PORTS = {"i__payload", "i__valid", "o__ready", "rst", "bus__addr", "bus__wdata", "bus__we"}
"""Input ports of a layer top (:mod:`bmcnn_hw.rtl.streams`, :class:`~bmcnn_hw.rtl.regs.RegisterBus`)."""


def _say(progress: bool, text: str) -> None:
    if progress:
        say(text)


def truncate_scenario(scenario: dict[str, Any], max_beats: int) -> dict[str, Any]:
    """The scenario cut to its first whole outputs that fit ``max_beats`` beats (at least one output)."""
    beats = [s for s in scenario["steps"] if "beat" in s]
    per_output = len(beats) // max(len(scenario["expected"]), 1)
    keep = max(1, max_beats // max(per_output, 1))
    if keep >= len(scenario["expected"]):
        return scenario
    return {**scenario, "steps": beats[: keep * per_output], "expected": scenario["expected"][:keep]}


def truncate_frames(scenario: dict[str, Any], layer: CompiledLayer, max_beats: int) -> dict[str, Any]:
    """A digital layer's scenario cut to its first whole MAC frames that fit ``max_beats``
    input elements (at least one frame), with the outputs those frames give."""
    frame = frame_elements(layer)
    outputs_per_frame = 1 if layer.is_output else layer.cols
    beats = [s for s in scenario["steps"] if "beat" in s]
    keep = min(max(1, max_beats // frame), len(beats) // frame)
    return {**scenario, "steps": beats[: keep * frame], "expected": scenario["expected"][: keep * outputs_per_frame]}


def _layer_rows(layer: CompiledLayer, index: int, trace: Any, images: np.ndarray) -> np.ndarray:
    """The crossbar input vectors of layer ``index`` for the first ``len(images)`` images of ``trace``."""
    layer_input = (network_input(images, layer.input_shift) if index == 0
                   else trace.outputs[index - 1][:len(images)])
    return layer_rows(layer, layer_input)


def _activity_scenario(layer: CompiledLayer, index: int, trace: Any, accumulator: CrossbarAccumulator,
                       images: np.ndarray, beats_per_image: int, budget: int) -> dict[str, Any]:
    """The first whole outputs, in hardware order, that fit ``budget`` beats (built only for the
    images they need: conv0 of the compact model has 147,456 beats per image). A digital
    layer's beats are its input elements, ``beats_per_image`` those of a crossbar layer."""
    if layer.digital:  # the MAC engine takes the layer's input elements
        per_image = frames_per_image(layer) * frame_elements(layer)
        needed = min(len(images), max(1, -(-budget // per_image)))
        rows = _layer_rows(layer, index, trace, images[:needed])
        scenario, _ = full_layer_scenario(layer, trace.outputs[index], rows, needed)
        return truncate_frames(scenario, layer, budget)
    needed = min(len(images), max(1, -(-budget // max(beats_per_image, 1))))
    codes = periphery_inputs(layer, layer_codes(accumulator.reads, index))  # a sense layer: decisions
    scenario, _ = full_layer_scenario(layer, trace.outputs[index], codes, needed)
    return truncate_scenario(scenario, budget)


def converter_share(layer: CompiledLayer, model: CompiledModel, options: PpaOptions) -> int:
    """Weight columns per converter of a crossbar layer: per ADC (``ppa --columns-per-adc``, else
    the build's), or for a sense layer per comparator (the build's ``columns_per_comparator``,
    else as ADCs)."""
    readout = model.hardware.readout
    per_adc = options.columns_per_adc or readout.columns_per_adc
    return (readout.columns_per_comparator or per_adc) if layer.sense else per_adc


def _choose_clock(timings: list[tuple[str, StaResult]], clock_mhz: float | None) -> float:
    """Clock period (ns): the requested one, checked against every layer's timing, or the
    slowest layer's fmax rounded down to 1 MHz.

    Raises:
        ConfigError: the requested clock is faster than a layer's fmax (names it and the slack).
    """
    if not timings:
        return 1e3 / clock_mhz if clock_mhz else NOMINAL_PERIOD_NS
    name, slowest = min(timings, key=lambda item: item[1].fmax_mhz)
    if clock_mhz is None:
        return 1e3 / max(math.floor(slowest.fmax_mhz), 1)
    if clock_mhz > slowest.fmax_mhz:
        period = 1e3 / clock_mhz
        slack = period - (slowest.period_ns - slowest.slack_ns)
        raise ConfigError(f"--clock-mhz {clock_mhz:g}: layer {name} fails timing (slack {slack:.3f} ns at "
                          f"{period:.3f} ns; its fmax is {slowest.fmax_mhz:.1f} MHz)")
    return 1e3 / clock_mhz


def _digital_energy_and_area(lp: LayerPpa, period_ns: float) -> None:
    """A digital layer: its gates only, busy for the engine's cycles."""
    lp.digital_time_s = lp.schedule.beats * period_ns * 1e-9
    power = lp.sta.power_w["total"] if lp.sta else 0.0
    lp.energy_j = {component: 0.0 for component in COMPONENTS} | {"digital": power * lp.digital_time_s}
    lp.area_um2 = {component: 0.0 for component in AREA_COMPONENTS} | {
        "digital": lp.synth.area_um2 if lp.synth else 0.0}


def _energy_and_area(lp: LayerPpa, layer: CompiledLayer, model: CompiledModel, cost: CostModel, period_ns: float,
                     options: PpaOptions) -> None:
    if layer.digital:
        _digital_energy_and_area(lp, period_ns)
        return
    s, tr = lp.schedule, lp.transient
    assert layer.tiling is not None and tr is not None  # crossbar layers are tiled and read in SPICE
    scale = lp.dc_power_per_inference_w_s / tr.power_dc_w if tr.power_dc_w else 0.0
    encoding = model.hardware.geometry.encoding
    used_phys = s.row_tiles * (2 * layer.cols if encoding == "differential" else layer.cols + s.col_tiles)
    digital_power = lp.sta.power_w["total"] if lp.sta else 0.0
    lp.digital_time_s = s.beats * period_ns * 1e-9
    share = lp.columns_per_adc = converter_share(layer, model, options)
    # A sense layer's comparators decide in one SAR bit cycle each, against a reference of adc_bits
    # (a SAR's comparator and DAC, costed as one of its bit cycles; area: a whole SAR per comparator).
    convert_s = cost.adc.decision_time_s(layer.adc_bits) if layer.sense else 1.0 / cost.adc.sample_rate_hz
    convert_j = (cost.adc.energy_per_decision_j if layer.sense else cost.adc.energy_per_conversion_j)(layer.adc_bits)
    lp.analog_time_s = s.reads * (tr.read_time_s + conversions_per_read(layer, share) * convert_s)
    performed = lp.performed_read_fraction  # a skipped read biases no TIA and starts no ADC; it keeps its slot
    skips = model.skips_zero_reads(layer)
    detect_energy, detect_area = _zero_detect_cost(layer, cost, s.reads) if skips else (0.0, 0.0)
    lp.energy_j = {
        "array_drivers": tr.energy_drivers_j * scale,
        "tia_output": tr.energy_tia_output_j * scale,
        # every used column's op-amp is biased for the settling window of each read (off between reads)
        "tia_bias": cost.tia.bias_power_w * tr.read_time_s * s.reads * used_phys * performed,
        "adc": s.conversions * convert_j * performed,
        "zero_detect": detect_energy,
        "digital": digital_power * lp.digital_time_s,
    }
    lp.area_um2 = {
        "array": s.devices * cost.array.cell_pitch_um ** 2,
        "tia": s.tias * cost.tia.area_um2,
        "adc": adc_count(layer, share) * cost.adc.area_um2,
        "zero_detect": detect_area,
        "digital": lp.synth.area_um2 if lp.synth else 0.0,
    }


def _zero_detect_cost(layer: CompiledLayer, cost: CostModel, reads: int) -> tuple[float, float]:
    """Energy per inference and area of a layer's zero detectors: one per row tile, evaluated on every read."""
    detector, t = cost.require_zero_detect(), layer.tiling
    assert t is not None  # crossbar layers are tiled
    tile_rows = [stop - start for start, stop in (t.row_range(rt, layer.rows) for rt in range(t.n_row_tiles))]
    energy = reads * sum(detector.energy_per_read_j(r) for r in tile_rows)
    return energy, sum(max(r - 1, 0) for r in tile_rows) * detector.area_per_gate_um2


def _analog(model: CompiledModel, chip: Chip, cost: CostModel, trace_energy: list[float], images: np.ndarray,
            work: Path, progress: bool, engine: str) -> list[LayerPpa]:
    layers = []
    for i, layer in enumerate(model.layers):
        schedule = layer_schedule(layer, model.hardware.geometry.encoding)
        if layer.digital:
            layers.append(LayerPpa(schedule, None, 0.0))
            continue
        started = time.perf_counter()
        with heartbeat(f"ppa: {layer.name}: transient read of tile (0,0) ({engine})", progress):
            tr = transient_read(model, chip, i, 0, 0, cost, work / layer.name / "transient", engine=engine)
        _say(progress, f"ppa: {layer.name}: transient read of tile (0,0) settles in {tr.read_time_s * 1e9:.2f} ns "
                       f"({time.perf_counter() - started:.1f} s)")
        dc = trace_energy[i] / len(images) / model.hardware.readout.t_read_s
        layers.append(LayerPpa(schedule, tr, dc))
    return layers


def _synthesize_and_time(model: CompiledModel, options: PpaOptions, build: Path, work: Path,
                         progress: bool) -> list[tuple[SynthResult, StaResult]]:
    """Per layer: the Yosys netlist and its OpenSTA timing at the nominal period (before any long run).

    Raises:
        ConfigError: a requested ``--clock-mhz`` that a layer fails, as soon as that layer is timed.
    """
    results = []
    for layer in model.layers:
        top = top_name(layer)
        target = 1e3 / options.clock_mhz if options.clock_mhz else NOMINAL_PERIOD_NS
        with heartbeat(f"ppa: {layer.name}: synthesis (Yosys) and timing (OpenSTA)", progress):
            synth = synthesize(build / "rtl" / f"{top}.v", top, options.liberty, work / layer.name / "synth", target)
            sta = run_sta(synth, NOMINAL_PERIOD_NS, work / layer.name / "synth")
        _say(progress, f"ppa: {layer.name}: {synth.cells} cells, {synth.area_um2:,.0f} um^2, "
                       f"fmax {sta.fmax_mhz:.1f} MHz")
        if options.clock_mhz:
            _choose_clock([(layer.name, sta)], options.clock_mhz)  # refuse now, not after synthesising the rest
        results.append((synth, sta))
    return results


def _measure_power(model: CompiledModel, layers: list[LayerPpa], trace: Any, accumulator: CrossbarAccumulator,
                   images: np.ndarray, options: PpaOptions, period: float, work: Path, progress: bool) -> None:
    """Per layer: gate-level simulation of real beats (checked against golden), then power at ``period``."""
    for i, (layer, lp) in enumerate(zip(model.layers, layers, strict=True)):
        assert lp.synth is not None
        scenario = _activity_scenario(layer, i, trace, accumulator, images, lp.schedule.beats,
                                      options.activity_beats)
        beats = sum("beat" in step for step in scenario["steps"])
        with heartbeat(f"ppa: {layer.name}: gate-level simulation of {beats:,} beats (Icarus)", progress):
            sim = run_gate_level(lp.synth.netlist, lp.synth.top, options.cell_models, scenario,
                                 work / layer.name / "gates", busy_inputs=layer.digital)
        (work / layer.name / "gates" / "activity.vcd").unlink(missing_ok=True)  # large; the Tcl keeps the figures
        lp.gate_beats, lp.gate_outputs_checked = sim.beats, sim.outputs_checked
        with heartbeat(f"ppa: {layer.name}: power (OpenSTA)", progress):
            lp.sta = run_sta(lp.synth, period, work / layer.name / "synth", sim.activity, sim.cycles, INPUT_PORTS)
        _say(progress, f"ppa: {layer.name}: gate-level netlist = golden on {sim.outputs_checked} outputs "
                       f"({sim.beats} beats); {lp.sta.power_w['total'] * 1e3:.3f} mW at {1e3 / period:.1f} MHz")


def _measure_skipped_reads(model: CompiledModel, layers: list[LayerPpa], trace: Any, images: np.ndarray,
                           progress: bool) -> None:
    """Each crossbar layer's share of performed (not all-zero) row-tile reads on ``images``."""
    for index, (layer, lp) in enumerate(zip(model.layers, layers, strict=True)):
        if layer.digital or not model.skips_zero_reads(layer):
            continue  # a layer without zero detectors performs every read
        lp.performed_read_fraction = performed_read_fraction(layer, _layer_rows(layer, index, trace, images))
        _say(progress, f"ppa: {layer.name}: {1 - lp.performed_read_fraction:.1%} of its row-tile reads are all "
                       f"zero on {len(images)} image(s) and skipped")


def verify_build_rtl(build: Path, model: CompiledModel) -> None:
    """The build's Verilog is the one compile (or `bmcnn-hw rtl BUILD`) wrote, for this version's interface.

    Raises:
        ArtefactError: an edited or missing file, or RTL from an older interface version.
    """
    verified_rtl(build, model)


def run_ppa(build: Path, images: np.ndarray, out_dir: Path, options: PpaOptions,
            progress: bool = True) -> dict[str, Any]:
    """Measure a build's PPA on ``images``; work files (netlists, logs) under ``out_dir / "work"``.

    Raises:
        ConfigError, ToolNotFound, SimulationError, MismatchError: as the steps do.
    """
    model = load_model(build)
    if options.columns_per_adc is None:
        options = dataclasses.replace(options, columns_per_adc=model.hardware.readout.columns_per_adc)
    else:
        check_converter_share("columns_per_adc", options.columns_per_adc, model.hardware.geometry.tile_cols)
    if not options.digital:
        model.require_all_memristive("ppa --no-digital", "that skips the only part of their cost (synthesis, timing "
                                     "and power)")
    if options.digital:
        verify_build_rtl(build, model)
    cost = load_cost_model(options.cost_model)
    if model.zero_detect_layers():
        cost.require_zero_detect()  # before any long step
    chip = Chip.of_build(model)
    if options.engine == "linear" and chip.params.cell not in LINEAR_ENGINE_CELLS:
        raise ConfigError(f"--engine linear solves tiles of linear or 1T1R cells; {build} has {chip.params.cell} "
                          "cells (use ngspice, vacask or auto)")
    options = dataclasses.replace(options, engine=resolve_engine(options.engine, chip, transient=True))
    work = Path(out_dir) / "work"
    started = time.perf_counter()
    timed = _synthesize_and_time(model, options, Path(build), work, progress) if options.digital else []
    period = _choose_clock([(la.name, sta) for la, (_, sta) in zip(model.layers, timed, strict=False)],
                           options.clock_mhz)
    _say(progress, f"ppa: physics executor on {len(images)} test image(s) (DC power of real inputs, ADC codes)")
    trace, accumulator = run_crossbar(model, images, PhysicsReader(chip), record=options.digital)
    layers = _analog(model, chip, cost, accumulator.energy_j, images, work, progress, options.engine)
    if model.zero_detect_layers():
        _measure_skipped_reads(model, layers, trace, images, progress)
    for lp, (synth, sta) in zip(layers, timed, strict=False):
        lp.synth, lp.sta = synth, sta
    if options.digital:
        _measure_power(model, layers, trace, accumulator, images, options, period, work, progress)
    for layer, lp in zip(model.layers, layers, strict=True):
        _energy_and_area(lp, layer, model, cost, period, options)
    return summarize(model, chip, cost, layers, period, len(images), options, time.perf_counter() - started)
