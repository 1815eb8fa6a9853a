"""SPICE + RTL co-simulation of a build on real images, checked against the golden model.

Per crossbar layer: the layer's input bits drive its tile netlists in ngspice (the chip's sampled
devices); the readout gives ADC codes; the cocotb-driven RTL layer top (periphery + pool or
argmax, tuning registers loaded) accumulates, thresholds and pools; its output bits feed the
next layer, and the last layer's RTL argmax is the prediction. At every interface (column
currents, ADC codes, activations, scores, class) the values are compared with the golden
physics model of the same chip; the first mismatch names image, layer, tile, column and
both values. A digital fixed-point layer has no crossbar: its RTL layer top (MAC engine in
front of the periphery) takes the layer's input elements and is checked the same way.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..artefact import CompiledLayer, CompiledModel, load_model
from ..golden.chip import Chip
from ..golden.crossbar import CrossbarAccumulator
from ..golden.integer import exact_matmul
from ..golden.layers import layer_output, periphery_inputs, walk_layers
from ..golden.tile_reader import PhysicsReader
from ..progress import bar
from ..rtl.emit import emitted_rtl, top_name, verified_rtl
from ..rtl.layer import layer_stream_fields
from ..spice.report import AGREEMENT_RTOL, compare_chip_reads, worst_tile
from ..spice.run import SpiceReader
from .rtl_check import layer_codes
from .rtl_regress import layer_harness, layer_payloads, start_layer_run, unpack_array
from .runner import run_stream_tb
from .scenarios import full_layer_scenario, unpack_words, word_bits


def _compare_reads(model, chip, layer: CompiledLayer, spice_reads, physics_reads,
                   positions: int) -> tuple[float, str | None, int]:
    """Worst relative current error, the first unexplained ADC-code mismatch (described) and the
    number of codes that differ at a rounding boundary within the cell type's tolerance."""
    worst, first, explained = compare_chip_reads(model, chip, spice_reads, physics_reads)
    if first is None:
        return worst, None, explained
    s, p, m, c = first
    where = (f"image {m // positions}, layer {layer.name}, tile ({s.rt},{s.ct}), bit plane {s.plane}, "
             f"position {m % positions}, column {c}: SPICE code {s.codes[m, c]}, golden {p.codes[m, c]}")
    return worst, where, explained


def _rtl_outputs(layer: CompiledLayer, seen: list, where: list, shape: tuple) -> np.ndarray:
    out = np.zeros(shape, dtype=np.int64)
    for value, place in zip(seen, where, strict=False):  # a failing RTL may return fewer outputs (reported)
        if layer.sense:  # a word of every channel's bit at (image[, y, x])
            out[(place[0], slice(None), *place[1:])] = word_bits(value[0], layer.cols)
        else:
            out[place] = value[0] if layer.is_output else value[1]
    return out


def _rtl_cocotb(rtl_dir: Path, work_dir: Path, sim: str, layer: CompiledLayer, golden: np.ndarray, stimulus, n: int,
                writes: list) -> tuple[np.ndarray, str | None, int]:
    """The layer top in the cocotb testbench (Python per beat): (layer output, error, outputs seen).

    ``stimulus``: ADC codes of a crossbar layer, input vectors of a digital one."""
    scenario, where = full_layer_scenario(layer, golden, stimulus, n, writes)
    sim_dir = work_dir / "sim" / f"{sim}_{top_name(layer)}"
    rtl_error = None
    try:
        run_stream_tb(rtl_dir / f"{top_name(layer)}.v", top_name(layer), scenario, sim_dir, sim)
    except Exception as exc:  # the outputs file still tells which value differed  # noqa: BLE001
        rtl_error = str(exc)
    seen = json.loads((sim_dir / "outputs.json").read_text()) if (sim_dir / "outputs.json").is_file() else []
    shape = (n,) if layer.is_output else golden.shape
    return _rtl_outputs(layer, seen, where, shape), rtl_error, len(seen)


def _rtl_stream(rtl_dir: Path, work_dir: Path, layer: CompiledLayer, golden: np.ndarray, stimulus, n: int,
                writes: list) -> tuple[np.ndarray, str | None, int]:
    """The layer top in the compiled Verilator harness (binary beats through a pipe):
    (layer output, error, outputs seen). ``stimulus`` as for :func:`_rtl_cocotb`."""
    fields = layer_stream_fields(layer, top=True)
    run = start_layer_run(layer_harness(rtl_dir, layer), layer, work_dir / f"{top_name(layer)}.out")
    run.write_registers([(int(a), int(v)) for a, v in writes])
    run.send(layer_payloads(layer, stimulus, fields["i"]))
    result = run.finish()
    if layer.is_output:
        hardware_order = np.zeros(n, dtype=np.int64)
        name = "class"
    else:
        hardware_order = np.zeros(golden.size, dtype=np.int64)  # (n, py, px, ch) or (n, ch)
        name = "bits" if layer.sense else "bit"
    got = unpack_array(fields["o"], result.outputs, name)
    if layer.sense:  # one word per position: its channels' bits in order
        got = unpack_words(got.astype(np.uint64), layer.cols).ravel()
    got = got[: hardware_order.size]
    hardware_order[: got.size] = got
    out: np.ndarray
    if layer.is_output or golden.ndim == 2:
        out = hardware_order.reshape((n,) if layer.is_output else golden.shape)
    else:
        nn, c, hp, wp = golden.shape
        out = hardware_order.reshape(nn, hp, wp, c).transpose(0, 3, 1, 2)
    error = f"error register {result.error} after the run" if result.error else None
    return out, error, len(result.outputs)


def cosimulate(build_dir: Path, images: np.ndarray, chip: Chip, work_dir: Path, *, tuning=None,
               register_writes: dict | None = None, sim: str = "icarus", progress: bool = True,
               spice_jobs: int = 1, regenerate_rtl: bool = False, spice_cache=None,
               spice_scheduler: str | None = None, spice_engine: str = "ngspice") -> dict:
    """Co-simulate ``images`` through SPICE tiles (``spice_jobs`` ngspice processes at a time, or on
    the Dask cluster at ``spice_scheduler``; reads through the read cache ``spice_cache`` if given;
    solved by ``spice_engine``) and RTL layer tops; returns the report dict.

    The RTL is the build's own ``rtl/`` after its hashes are checked (what is handed off), or with
    ``regenerate_rtl`` the model's Verilog emitted into ``work_dir/rtl`` (the report says which).
    """
    model = load_model(build_dir)
    work_dir = Path(work_dir)
    rtl_dir = emitted_rtl(model, work_dir, None if regenerate_rtl else verified_rtl(build_dir, model))
    if sim == "verilator":  # build (or find cached) every harness before minutes of SPICE
        for layer in model.layers:
            layer_harness(rtl_dir, layer)
    spice = SpiceReader(model, chip, Path(build_dir) / "netlists", jobs=spice_jobs, progress=progress,
                        cache=spice_cache, scheduler=spice_scheduler, engine=spice_engine)
    n, layers, mismatch = len(images), [], None
    walk = walk_layers(model, images.astype(np.int64))
    for step in bar(walk, desc="cosim", unit="layer", total=len(model.layers), disable=not progress):
        i, layer, rows = step.index, step.layer, step.rows
        t0 = time.perf_counter()
        if layer.digital:  # no crossbar: the RTL's MAC engine takes the layer's input itself
            acc, stimulus, t1 = exact_matmul(rows, layer.weight), rows, time.perf_counter()
            worst, code_mismatch, at_boundary, tile = None, None, 0, None
        else:
            spice_acc = CrossbarAccumulator(model, spice, record=True)
            # The RTL is checked bit for bit on the codes SPICE gave it; they equal the physics codes
            # except (1T1R) where a current sits within the stated tolerance of a rounding boundary.
            acc = spice_acc(i, layer, rows)
            t1 = time.perf_counter()
            physics_acc = CrossbarAccumulator(model, PhysicsReader(chip), record=True)
            physics_acc(i, layer, rows)
            worst, code_mismatch, at_boundary = _compare_reads(model, chip, layer, spice_acc.reads,
                                                               physics_acc.reads, rows.shape[1])
            # a sense layer's comparators decide against references set by theta and the tuning
            stimulus = periphery_inputs(layer, layer_codes(spice_acc.reads, i),
                                        None if tuning is None else tuning[i])
            tile = worst_tile(model, chip, layer.name, list(zip(spice_acc.reads, physics_acc.reads, strict=True)))
        if tuning is not None and tuning[i] is not None:
            acc = acc + tuning[i]
        golden = layer_output(layer, acc)
        writes = (register_writes or {}).get(f"periphery_{layer.name}", [])
        t2 = time.perf_counter()
        if sim == "verilator":
            rtl_out, rtl_error, rtl_count = _rtl_stream(rtl_dir, work_dir, layer, golden, stimulus, n, writes)
        else:
            rtl_out, rtl_error, rtl_count = _rtl_cocotb(rtl_dir, work_dir, sim, layer, golden, stimulus, n, writes)
        t3 = time.perf_counter()
        n_outputs = n if layer.is_output else golden.size  # one prediction per image, else one per bit
        transfers = n_outputs // layer.cols if layer.sense else n_outputs  # a sense layer's: one word per position
        expected = golden.argmax(axis=1) if layer.is_output else golden
        differs = np.argwhere(rtl_out != expected)
        if mismatch is None and code_mismatch:
            mismatch = code_mismatch
        if mismatch is None and (rtl_error or len(differs) or rtl_count != transfers):
            place = tuple(int(v) for v in differs[0]) if len(differs) else None
            short = rtl_error or f"the RTL gave {rtl_count} outputs, golden expects {transfers}"
            mismatch = (f"layer {layer.name}, output {place} (image, channel, ...): RTL {rtl_out[place]}, "
                        f"golden {expected[place]}" if place is not None else f"layer {layer.name}: {short}")
        wrong = len(differs) + abs(rtl_count - transfers) + bool(rtl_error) + bool(code_mismatch)
        layers.append({"layer": layer.name, "digital": layer.digital, "outputs": n_outputs, "rtl_outputs": rtl_count,
                       "mismatches": wrong,
                       "max_rel_current_error": worst, "worst_tile": tile,
                       "adc_codes_identical": code_mismatch is None and not at_boundary,
                       "codes_differing_at_boundary": at_boundary,
                       "rtl_equals_golden": not len(differs) and rtl_count == transfers and rtl_error is None,
                       "seconds_spice": round(t1 - t0, 3), "seconds_rtl": round(t3 - t2, 3),
                       "seconds_python": round(t2 - t1, 3)})
        step.output = rtl_out  # the RTL's bits feed the next layer
    predictions, rtol = rtl_out.tolist(), AGREEMENT_RTOL[chip.params.cell]
    return {"build": str(build_dir), "images": n, "chip": chip.describe(), "simulator": sim,
            "spice_engine": spice.engine_name(),
            "rtl": rtl_source(rtl_dir, regenerate_rtl),
            "tuned": tuning is not None, "layers": layers, "predictions_rtl": predictions,
            "mismatches": sum(row["mismatches"] for row in layers), "first_mismatch": mismatch,
            "rtol": rtol,
            "ok": mismatch is None and all(row["digital"] or row["max_rel_current_error"] <= rtol
                                           for row in layers)}


def build_for_chip(build_dir: Path, model: CompiledModel, chip: Chip, scratch: Path) -> Path:
    """The build directory whose netlists hold ``chip``: ``build_dir`` itself (its netlists checked
    against their hashes) when ``chip`` is the chip the build was written for, else a copy at
    ``scratch`` with this chip's netlists written (another seed, device or age)."""
    build_chip = Chip.of_build(model)
    if chip.params == build_chip.params and chip.seed == build_chip.seed and chip.age is None:
        from ..artefact import verify_netlists

        verify_netlists(Path(build_dir))
        return Path(build_dir)
    import shutil

    from ..spice.netlist import write_netlists

    if scratch.exists():
        shutil.rmtree(scratch)
    shutil.copytree(build_dir, scratch, ignore=shutil.ignore_patterns("netlists"))
    write_netlists(model, chip, scratch / "netlists")
    return scratch


def rtl_source(rtl_dir: Path, regenerated: bool) -> str:
    """Which Verilog a report's RTL results are of, in words."""
    if regenerated:
        return f"regenerated from the CompiledModel into {rtl_dir} (not the build's rtl/)"
    return f"the build's own {rtl_dir} (hashes checked)"


def _codes(row: dict) -> str:
    if row.get("digital"):
        return "digital MAC (no ADC)"
    if row["adc_codes_identical"]:
        return "same"
    at_boundary = row.get("codes_differing_at_boundary")
    return f"{at_boundary} differ at a rounding boundary" if at_boundary else "DIFFER"


def cosim_markdown(report: dict) -> str:
    """The report as a Markdown table."""
    lines = [f"Co-simulation of {report['images']} image(s), chip seed {report['chip']['seed']}, "
             f"{report['simulator']}, tuned: {report['tuned']}", f"RTL simulated: {report['rtl']}",
             f"SPICE engine: {report.get('spice_engine', 'ngspice')}", "",
             "| layer | outputs | max dI / I_max (SPICE vs golden) | ADC codes | RTL = golden | SPICE s | RTL s "
             "| Python s |",
             "|---|---|---|---|---|---|---|---|"]
    for row in report["layers"]:
        current = "-" if row.get("digital") else f"{row['max_rel_current_error']:.1e}"
        lines.append(f"| {row['layer']} | {row['outputs']} | {current} | "
                     f"{_codes(row)} | {'yes' if row['rtl_equals_golden'] else 'NO'} | "
                     f"{row['seconds_spice']} | {row['seconds_rtl']} | {row['seconds_python']} |")
    lines += ["", f"RTL predictions: {report['predictions_rtl']}; mismatches: {report['mismatches']}"
              + (f" (first: {report['first_mismatch']})" if report["first_mismatch"] else "")]
    lines += [f"FAILED: SPICE differs from physics beyond {report['rtol']:g} in layer {row['layer']}, worst tile "
              f"{row['worst_tile']} (dI/I_max {row['max_rel_current_error']:.2e})" for row in report["layers"]
              if not row.get("digital") and row["max_rel_current_error"] > report["rtol"]]
    return "\n".join(lines) + "\n"
