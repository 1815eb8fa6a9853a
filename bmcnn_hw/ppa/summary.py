"""The PPA report: totals per inference, per layer and component, with the source of every figure."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..artefact import CompiledModel
from ..golden.chip import Chip
from ..spice.engines import engine_label
from .cost_model import CostModel
from .records import COMPONENTS, LayerPpa, PpaOptions, layer_record
from .schedule import adc_count, conversions_per_read

AREA_COMPONENTS = ("array", "tia", "adc", "zero_detect", "digital")


def transient_engine_label(engine: str, cell: str = "linear") -> str:
    """Name (and version) of the engine that solved ``ppa``'s transients of ``cell`` cells."""
    if engine == "linear":
        from .linear_transient import ENGINE_LABEL, LINEARISED_1T1R_LABEL

        return LINEARISED_1T1R_LABEL if cell == "1t1r" else ENGINE_LABEL
    return engine_label(engine)


def _transient_source(engine: str, cell: str) -> str:
    """Who solved the transients: a SPICE engine, or bmcnn-hw's linear engine (checked against ngspice)."""
    if engine == "linear" and cell == "1t1r":
        return (f"{transient_engine_label(engine, cell)}: the netlist's transient solved by bmcnn-hw with each access "
                f"transistor linearised (an approximation: {LINEARISED_1T1R_CHECK})")
    if engine == "linear":
        return (f"{transient_engine_label(engine)}: the netlist's transient solved by bmcnn-hw (linear cells; read "
                "times and energies within 1 % of ngspice on the tiles of tests/ppa/test_linear_transient.py)")
    return f"SPICE: {engine_label(engine)} transient"


LINEARISED_1T1R_CHECK = ("read times and energies within 1 % of ngspice on the 1T1R tiles of "
                         "tests/ppa/test_linear_transient.py")
"""What the test file asserts of the linearised 1T1R transient (kept equal to its tolerance)."""


def _sources(cost: CostModel, options: PpaOptions, n_images: int, skips: bool, cell: str) -> dict[str, str]:
    spice = (f"{_transient_source(options.engine, cell)} of the worst-case read (all rows switched) of each "
             "layer's tile (0,0), "
             f"scaled by the physics executor's DC driver power on {n_images} test images relative to that read's")
    digital = (f"OpenSTA report_power on the Yosys netlist ({Path(options.liberty).name}), switching activity from a "
               "gate-level Icarus simulation of real beats (functional transitions, no glitches; gated clock nets at "
               "their simulated toggles), busy time only. Debian's OpenSTA 2.0.17 counts a flip-flop's clock-pin "
               "internal energy twice and output-arc internal energy by cell-dependent factors (docs/ppa_method.md); "
               "the figure is OpenSTA's, uncorrected")
    return {
        "energy.array_drivers": spice, "energy.tia_output": spice + "; output current drawn from a rail at supply/2",
        "energy.tia_bias": f"model [tia]: {cost.tia.source}", "energy.adc": f"model [adc]: {cost.adc.source}",
        "energy.digital": digital if options.digital else "not measured (--no-digital)",
        "area.array": f"devices x cell pitch^2, model [array]: {cost.array.source}",
        "area.tia": f"model [tia]: {cost.tia.source}", "area.adc": f"model [adc]: {cost.adc.source}",
        "area.digital": "Yosys stat -liberty" if options.digital else "not measured (--no-digital)",
        "energy.zero_detect": _zero_detect_source(cost, "energy", skips),
        "area.zero_detect": _zero_detect_source(cost, "area", skips),
        "read_time": f"{_transient_source(options.engine, cell)}: latest time a TIA output stays within 1/2 ADC step, "
                     "after rise and after fall",
        "clock": ("OpenSTA: the shortest period meeting every setup and clock-gating check of the slowest layer "
                  "(bisection)") if options.digital else "assumed",
    }


def _zero_detect_source(cost: CostModel, what: str, skips: bool) -> str:
    if not skips or cost.zero_detect is None:
        return "none (the build performs every read)"
    per = "(rows - 1) gates x energy per gate per read, every read" if what == "energy" else "(rows - 1) gates"
    return f"per row tile {per}, model [zero_detect]: {cost.zero_detect.source}"


def _warnings(model: CompiledModel, cost: CostModel, layers: list[LayerPpa]) -> list[str]:
    notes = []
    rail = cost.tia.supply_v / 2
    for lp in layers:
        if lp.transient is not None and not model.hardware.readout.v_swing_v and lp.transient.v_out_max_v > rail:
            notes.append(f"{lp.schedule.name}: worst-case TIA output {lp.transient.v_out_max_v:.3g} V exceeds the "
                         f"+-{rail:g} V a {cost.tia.supply_v:g} V TIA can swing; this build has no rails (compile with "
                         "--v-swing and --tia-rf auto for a realisable readout)")
    notes += _pitch_warnings(model, cost, layers)
    return notes


def _pitch_warnings(model: CompiledModel, cost: CostModel, layers: list[LayerPpa]) -> list[str]:
    """ADCs wider than the columns they serve: several cannot sit in one row under the tile."""
    adc_side_um = cost.adc.area_um2 ** 0.5
    per_weight = 2 if model.hardware.geometry.encoding == "differential" else 1
    notes = []
    sensed = {la.name for la in model.layers if la.sense}
    crossbar = {la.name: la for la in model.layers if la.tiling is not None}
    for lp in layers:
        if lp.schedule.name not in crossbar:
            continue
        layer = crossbar[lp.schedule.name]
        if adc_count(layer, lp.columns_per_adc) < 2:  # a lone converter sits beside its tile
            continue
        share = conversions_per_read(layer, lp.columns_per_adc)  # the columns it serves
        span_um = share * per_weight * cost.array.cell_pitch_um
        what, option = ("a comparator costed as ", "--columns-per-comparator") if lp.schedule.name in sensed \
            else ("", "--columns-per-adc")
        if lp.transient is not None and adc_side_um > span_um:
            need = math.ceil(adc_side_um / (per_weight * cost.array.cell_pitch_um))
            notes.append(f"{lp.schedule.name}: {what}an ADC of {cost.adc.area_um2 / 1e6:.4g} mm^2 (~{adc_side_um:.0f} "
                         f"um wide) serves {share} column(s) spanning {span_um:g} um; in one row under the tile it "
                         f"needs {option} >= {need} (else they stack {math.ceil(adc_side_um / span_um)} rows deep)")
    return notes


def _share_assumption(share: int, tile_cols: int) -> str:
    """The assumption line of ``share`` weight columns per ADC on tiles of ``tile_cols`` columns."""
    across = f"the columns of {share // tile_cols} tiles side by side; " if share > tile_cols else ""
    return (f"read cycle = transient settling time + {share} ADC conversion(s) (1 / sample rate each): {share} weight "
            f"column(s) share one ADC ({across}a layer with fewer used columns converts those)")


def summarize(model: CompiledModel, chip: Chip, cost: CostModel, layers: list[LayerPpa], period_ns: float,
              n_images: int, options: PpaOptions, seconds: float) -> dict[str, Any]:
    """The report dict (JSON-able): totals, per layer, sources, assumptions, warnings."""
    energy = {c: sum(lp.energy_j[c] for lp in layers) for c in COMPONENTS}
    area = {c: sum(lp.area_um2[c] for lp in layers) for c in AREA_COMPONENTS}
    e_total, a_total_mm2 = sum(energy.values()), sum(area.values()) * 1e-6
    times = [max(lp.analog_time_s, lp.digital_time_s) for lp in layers]
    latency, bottleneck = sum(times), max(times)
    ops = 2 * sum(lp.schedule.macs for lp in layers)
    throughput = 1.0 / bottleneck if bottleneck else 0.0
    return {
        "build": {"layers": [la.name for la in model.layers], "device": chip.describe(),
                  "geometry": model.hardware.geometry.to_dict(), "readout": model.hardware.readout.to_dict()},
        "images": n_images, "clock_mhz": 1e3 / period_ns, "columns_per_adc": options.columns_per_adc,
        "spice_engine": transient_engine_label(options.engine, chip.params.cell),
        "cost_model": cost.path,
        "liberty": str(options.liberty) if options.digital else None,
        "totals": {"energy_per_inference_j": e_total, "energy_j": energy, "area_mm2": a_total_mm2,
                   "area_um2": area, "latency_s": latency, "throughput_inferences_per_s": throughput,
                   "ops_per_inference": ops, "tops_per_w": ops / e_total / 1e12 if e_total else 0.0,
                   "tops_per_mm2": ops * throughput / 1e12 / a_total_mm2 if a_total_mm2 else 0.0},
        "layers": {lp.schedule.name: layer_record(lp) for lp in layers},
        "sources": _sources(cost, options, n_images, bool(model.zero_detect_layers()), chip.params.cell),
        "assumptions": [
            "all tiles of a layer read in parallel, one read per output position and input bit plane",
            _share_assumption(options.columns_per_adc or 1, model.hardware.geometry.tile_cols),
            "ADC codes are double-buffered: a layer's next read overlaps the streaming of the last one, so a "
            "layer takes max(analog time, digital time); latency sums the layers, throughput is set by the "
            "slowest layer (layers pipelined across images)",
            "the periphery takes one ADC code per clock cycle and is clock-gated when idle",
            "a digital fixed-point layer's MAC engine is busy for its cycles per image (load, multiply-accumulate, "
            "hand on; bmcnn_hw.rtl.mac.layer_cycles) and clock-gated when idle",
            "ops = 2 x MACs of the network: binary on the crossbars, fixed-point in MAC engines (padding excluded)",
            "row drivers: ideal ramps (plus the build's source resistance); their own area is not counted",
        ] + _skip_assumptions(model) + _sense_assumptions(model, layers),
        "warnings": _warnings(model, cost, layers),
        "seconds": seconds,
    }


def _skip_assumptions(model: CompiledModel) -> list[str]:
    """How skipped all-zero reads are costed, naming the layers with zero detectors (none: no line)."""
    layers = model.zero_detect_layers()
    if not layers:
        return []
    return [f"a row tile's read whose inputs are all 0 is skipped in {', '.join(layers)} (skip_zero_reads): its TIAs "
            "stay unbiased and its ADCs idle, the periphery still takes its code 0 in the same slot (time as without "
            "skipping)"]


def _sense_assumptions(model: CompiledModel, layers: list[LayerPpa]) -> list[str]:
    """How the layers read out by sense amplifiers are costed (none: no line); the columns per
    comparator are those each layer was costed with (:func:`~bmcnn_hw.ppa.flow.converter_share`)."""
    shares = {lp.schedule.name: lp.columns_per_adc for lp in layers}
    sensed = [la for la in model.layers if la.sense]
    if not sensed:
        return []
    names = ", ".join(f"{la.name} ({la.adc_bits}-bit references, one comparator per {shares[la.name]} weight "
                      "column(s) of a tile)" for la in sensed)
    return [f"sense amplifiers read out {names}: their `adc` entries are the comparators, each costed as one bit "
            "cycle of the [adc] model's SAR at the reference width (energy E_conv / bits, time 1 / (sample rate x "
            "bits)) and, for area, a whole SAR (comparator and DAC) per comparator, deciding its columns one after "
            "another after each read (columns_per_comparator); a skipped all-zero read takes its decision "
            "(reference <= 0) without firing the comparator"]


def si_units(value: float, unit: str) -> str:
    """``value`` with an SI prefix and three significant digits, e.g. ``47.7 uJ``."""
    for scale, prefix in ((1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "u"), (1e-3, "m"), (1.0, "")):
        shown = f"{value / scale:.3g}"
        if abs(float(shown)) < 1000:  # decided on the rounded figure: 999.7 nJ is 1 uJ, not "1e+03 nJ"
            return f"{shown} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def format_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: totals, per-layer energy/area/time tables, sources, warnings."""
    t = report["totals"]
    lines = ["# PPA per inference", "",
             f"Clock {report['clock_mhz']:.1f} MHz; {report['images']} test images; "
             f"cost model `{report['cost_model']}`.",
             "", "| figure | value |", "|---|---|",
             f"| energy per inference | {si_units(t['energy_per_inference_j'], 'J')} |",
             f"| latency | {si_units(t['latency_s'], 's')} |",
             f"| throughput | {t['throughput_inferences_per_s']:.4g} inferences/s |",
             f"| area | {t['area_mm2']:.4g} mm^2 |",
             f"| ops per inference | {t['ops_per_inference']:,} |",
             f"| TOPS/W | {t['tops_per_w']:.4g} |", f"| TOPS/mm^2 | {t['tops_per_mm2']:.4g} |", "",
             "## Energy per inference by layer and component", "",
             "| layer | " + " | ".join(COMPONENTS) + " | total |", "|---" * (len(COMPONENTS) + 2) + "|"]
    for name, rec in report["layers"].items():
        e = rec["energy_j"]
        cells = " | ".join(si_units(e[c], "J") for c in COMPONENTS)
        lines.append(f"| {name} | {cells} | {si_units(sum(e.values()), 'J')} |")
    lines += ["", "## Area by layer and component", "",
              "| layer | " + " | ".join(AREA_COMPONENTS) + " | total |", "|---" * (len(AREA_COMPONENTS) + 2) + "|"]
    for name, rec in report["layers"].items():
        a = rec["area_um2"]
        lines.append(f"| {name} | " + " | ".join(f"{a[c] * 1e-6:.4g} mm^2" for c in AREA_COMPONENTS)
                     + f" | {sum(a.values()) * 1e-6:.4g} mm^2 |")
    lines += ["", "## Time per layer", "",
              "| layer | reads | reads performed | read time (transient) | analog time | beats | digital time | fmax "
              "| cells |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, rec in report["layers"].items():
        d = rec.get("digital", {})
        fmax = f"{d['fmax_mhz']:.1f} MHz" if d else "-"
        read_time = si_units(rec["transient"]["read_time_s"], "s") if rec["transient"] else "- (digital)"
        performed = f"{rec['performed_read_fraction']:.1%}" if rec["transient"] else "-"
        lines.append(f"| {name} | {rec['schedule']['reads']:,} | {performed} | {read_time} | "
                     f"{si_units(rec['analog_time_s'], 's')} | {rec['schedule']['beats']:,} | "
                     f"{si_units(rec['digital_time_s'], 's')} | {fmax} | {d.get('cells', '-')} |")
    lines += ["", "## Sources", ""] + [f"- **{k}**: {v}" for k, v in report["sources"].items()]
    lines += ["", "## Assumptions", ""] + [f"- {a}" for a in report["assumptions"]]
    if report["warnings"]:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in report["warnings"]]
    return "\n".join(lines) + "\n"


def plot_breakdown(report: dict[str, Any], path: Path) -> None:
    """Energy and area per layer by component, side-by-side bars on a log scale (PNG): the
    components differ by orders of magnitude, and a linear stack hides all but the largest."""
    from ..plotting import pyplot

    plt = pyplot()

    names = list(report["layers"])
    fig, (ax_e, ax_a) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, comps, scale, label in ((ax_e, "energy_j", COMPONENTS, 1e6, "energy per inference (uJ)"),
                                         (ax_a, "area_um2", AREA_COMPONENTS, 1e-6, "area (mm$^2$)")):
        width = 0.8 / len(comps)
        for k, comp in enumerate(comps):
            values = [report["layers"][n][key][comp] * scale for n in names]
            x = [i - 0.4 + (k + 0.5) * width for i in range(len(names))]
            ax.bar(x, [v if v > 0 else float("nan") for v in values], width, label=comp, color=f"C{k}")
        ax.set_xticks(range(len(names)), names)
        ax.set_yscale("log")
        ax.set_ylabel(f"{label}, log scale")
        ax.grid(axis="y", which="major", alpha=0.3)
        ax.legend(fontsize=7)
    t = report["totals"]
    fig.suptitle(f"{si_units(t['energy_per_inference_j'], 'J')} per inference, {t['area_mm2']:.3g} mm$^2$, "
                 f"{t['tops_per_w']:.3g} TOPS/W, digital clock {report['clock_mhz']:.0f} MHz")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
