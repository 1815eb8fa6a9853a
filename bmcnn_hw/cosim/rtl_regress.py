"""RTL regression at test-set scale: every beat of every image through every layer's RTL.

The physics executor runs the images on a (sampled, optionally tuned) chip in batches and
hands each layer's ADC codes (a digital layer's input elements), in hardware order, to that
layer top's compiled Verilator harness (:mod:`bmcnn_hw.cosim.streamsim`), which runs beside it; the tuning registers are
written first. At the end every activation (hidden layers) and every prediction and score
(output layer) the RTL produced is compared with the golden model's, and the sticky error
register must be 0.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..artefact import CompiledLayer, CompiledModel
from ..golden.chip import Chip
from ..golden.crossbar import CrossbarAccumulator
from ..golden.integer import Accumulate, TuningOffsets, run_integer
from ..golden.layers import periphery_inputs
from ..golden.tile_reader import PhysicsReader
from ..progress import bar
from ..rtl.emit import emitted_rtl, top_name
from ..rtl.layer import layer_stream_fields
from ..rtl.mac import frames_per_image
from ..rtl.periphery import tune_offset_writes
from .scenarios import beat_order, mac_frames, pack_words
from .streamsim import StreamResult, StreamRun, build_harness

Fields = dict[str, list[int]]
CHUNK = 1 << 22
"""Outputs compared at a time."""


def payload_bits(fields: Fields) -> int:
    """Width of a packed payload."""
    return max(offset + width for offset, width, _ in fields.values())


def _field(fields: Fields, name: str, values: np.ndarray) -> np.ndarray:
    offset, width, _ = fields[name]
    return (values.astype(np.int64) & ((1 << width) - 1)).astype(np.uint64) << np.uint64(offset)


def unpack_array(fields: Fields, words: np.ndarray, name: str) -> np.ndarray:
    """Field ``name`` of every payload word (sign-extended when the field is signed)."""
    offset, width, signed = fields[name]
    value = ((words.astype(np.uint64) >> np.uint64(offset)) & np.uint64((1 << width) - 1)).astype(np.int64)
    return np.where(value >> (width - 1), value - (1 << width), value) if signed else value


def beat_payloads(layer: CompiledLayer, codes: dict[tuple[int, int], np.ndarray], fields: Fields) -> np.ndarray:
    """Packed input payloads of every beat of ``codes`` ((plane, rt) -> (M, cols)) in hardware
    order (:func:`~bmcnn_hw.cosim.scenarios.full_layer_scenario`'s order, vectorised)."""
    if layer.sense:
        return sense_payloads(layer, codes[(0, 0)], fields)
    order = beat_order(layer)
    stacked = np.stack([codes[key] for key in order])  # (B, M, cols)
    b, m, cols = stacked.shape
    beat = np.arange(b)
    if layer.kind == "conv" and not layer.is_output:
        h, w = layer.conv_hw
        p = layer.pool
        n = m // (h * w)
        # position m = n*h*w + (py*p + dy)*w + px*p + dx -> order (n, py, px, channel, dy, dx, beat)
        ordered = stacked.reshape(b, n, h // p, p, w // p, p, cols).transpose(1, 2, 4, 6, 3, 5, 0)
        channel = np.arange(cols)[:, None, None, None]
        closes = ((np.arange(p)[:, None, None] == p - 1) & (np.arange(p)[None, :, None] == p - 1))[None]
    else:
        ordered = stacked.transpose(1, 2, 0)  # (M, channel, beat)
        channel = np.arange(cols)[:, None]
        closes = (np.arange(cols)[:, None] == cols - 1) if layer.is_output else np.ones((cols, 1), dtype=bool)
    last = beat == b - 1
    static = (_field(fields, "plane", np.asarray([plane for plane, _ in order])) | _field(fields, "first", beat == 0)
              | _field(fields, "last", last) | _field(fields, "channel", channel)
              | _field(fields, "group_last", closes & last))
    return (_field(fields, "code", ordered) | static).ravel()


def sense_payloads(layer: CompiledLayer, decisions: np.ndarray, fields: Fields) -> np.ndarray:
    """Packed beats of a sense layer: one decision word per read of ``decisions`` (M, cols), in
    hardware order (a conv layer's pool windows in raster order, each window's members in turn,
    ``group_last`` on the last; an fc layer's reads in turn, each closing its image)."""
    words = pack_words(decisions)
    if layer.kind == "conv" and layer.pool > 1:
        h, w = layer.conv_hw
        p = layer.pool
        # position m = n*h*w + (py*p + dy)*w + px*p + dx -> order (n, py, px, dy, dx)
        words = words.reshape(-1, h // p, p, w // p, p).transpose(0, 1, 3, 2, 4)
        closes = (np.arange(p)[:, None] == p - 1) & (np.arange(p)[None, :] == p - 1)
    else:
        closes = np.ones(1, dtype=bool)
    return (_field(fields, "code", words) | _field(fields, "group_last", np.broadcast_to(closes, words.shape))).ravel()


def mac_payloads(layer: CompiledLayer, rows: np.ndarray, fields: Fields) -> np.ndarray:
    """Packed input payloads of a digital layer's MAC engine for its input vectors ``rows``
    (N, P, rows), frame by frame in hardware order
    (:func:`~bmcnn_hw.cosim.scenarios.mac_frames`), ``last`` on each frame's final element."""
    frames = mac_frames(layer, rows)
    closes = np.arange(frames.shape[2]) == frames.shape[2] - 1
    return (_field(fields, "value", frames) | _field(fields, "last", closes)).ravel()


def layer_payloads(layer: CompiledLayer, stimulus, fields: Fields) -> np.ndarray:
    """The layer top's input payloads: ADC codes ((plane, rt) -> (M, cols)) of a crossbar layer
    (:func:`beat_payloads`) or the input vectors (N, P, rows) of a digital one (:func:`mac_payloads`)."""
    return mac_payloads(layer, stimulus, fields) if layer.digital else beat_payloads(layer, stimulus, fields)


def expected_outputs(layer: CompiledLayer, output: np.ndarray) -> dict[str, np.ndarray]:
    """The layer top's outputs, field by field, in hardware order, from the golden layer output."""
    if layer.is_output:
        return {"class": output.argmax(axis=1), "score": output.max(axis=1)}
    bits = output.transpose(0, 2, 3, 1) if output.ndim == 4 else output  # (n, py, px, ch) or (n, ch)
    if layer.sense:  # one word per pooled position (conv) or image (fc)
        return {"bits": pack_words(bits).ravel()}
    channels = np.broadcast_to(np.arange(layer.cols, dtype=np.int32), bits.shape)
    return {"bit": bits.ravel().astype(np.uint8), "channel": channels.ravel()}  # small dtypes: 46 M of them


def first_difference(layer: CompiledLayer, expected: dict[str, np.ndarray], words: np.ndarray,
                     fields: Fields) -> tuple[int, str] | None:
    """(count, description of the first) of outputs that differ from ``expected``, or None."""
    n = len(next(iter(expected.values())))
    if len(words) != n:
        return abs(len(words) - n), f"{len(words)} outputs, golden expects {n}"
    count, first = 0, None
    for start in range(0, n, CHUNK):  # unpacked a chunk at a time: int64 fields of every output would not fit
        got = {name: unpack_array(fields, words[start:start + CHUNK], name) for name in expected}
        bad = np.zeros(len(got[next(iter(got))]), dtype=bool)
        for name, want in expected.items():
            bad |= got[name] != want[start:start + CHUNK]
        if first is None and bad.any():
            k = int(np.argmax(bad))
            first = start + k, {name: int(got[name][k]) for name in expected}
        count += int(bad.sum())
    if first is None:
        return None
    k, rtl = first
    per_image = n // max(1, _images(layer, n))
    return count, (f"output {k} (image {k // per_image}): RTL " + ", ".join(f"{name} {v}" for name, v in rtl.items())
                   + "; golden " + ", ".join(f"{name} {int(expected[name][k])}" for name in expected))


def _images(layer: CompiledLayer, outputs: int) -> int:
    if layer.is_output:
        return outputs
    if layer.sense:  # one word per pooled position
        return outputs // frames_per_image(layer)
    return outputs // int(np.prod(layer.out_shape))


def tuning_writes(layer: CompiledLayer, offsets: np.ndarray | None) -> list[tuple[int, int]]:
    """Register writes that load a layer's tuning offsets (none for an untuned layer)."""
    return [] if offsets is None else tune_offset_writes(layer, offsets)


def layer_harness(rtl_dir: Path, layer: CompiledLayer) -> Path:
    """The (cached) Verilator stream harness of the layer top emitted in ``rtl_dir``."""
    fields = layer_stream_fields(layer, top=True)
    top = top_name(layer)
    return build_harness(rtl_dir / f"{top}.v", top, payload_bits(fields["i"]), payload_bits(fields["o"]))


def start_layer_run(binary: Path, layer: CompiledLayer, out_path: Path) -> StreamRun:
    """A running harness ``binary`` of the layer top, its outputs going to ``out_path``."""
    fields = layer_stream_fields(layer, top=True)
    return StreamRun(binary, payload_bits(fields["i"]), payload_bits(fields["o"]), out_path)


def rtl_regression(model: CompiledModel, chip: Chip, images: np.ndarray, work_dir: Path, *,
                   tuning: TuningOffsets | None = None, batch: int = 100, shards: int = 2,
                   progress: bool = True, rtl_dir: Path | None = None) -> dict[str, Any]:
    """Every beat of ``images`` through every layer top's RTL (Verilator), checked against golden.

    The Verilog is ``rtl_dir``'s (a build's verified ``rtl/``, what is handed off), or, when None,
    the model's emitted into ``work_dir/rtl``.

    Each layer runs in ``shards`` harness processes (batches go round-robin; a pool window or an
    image never spans two batches), so the simulators use every core while the physics executor
    prepares the next batch.

    Digital layers' MAC engines take the layer's input vectors (the physics run's previous
    layer output) instead of ADC codes.

    Raises:
        ConfigError: a digital layer's RTL cannot be built (MAC lanes, accumulator width).
        ToolNotFound, SimulationError: Verilator missing, a build or a harness failed.
    """
    work_dir = Path(work_dir)
    rtl_dir = emitted_rtl(model, work_dir, rtl_dir)
    fields = [layer_stream_fields(layer, top=True) for layer in model.layers]
    started = time.perf_counter()
    binaries = [layer_harness(rtl_dir, layer) for layer in model.layers]
    build_s = time.perf_counter() - started
    runs = [[start_layer_run(binary, layer, work_dir / f"{layer.name}.{k}.out") for k in range(shards)]
            for binary, layer in zip(binaries, model.layers, strict=True)]
    for i, layer in enumerate(model.layers):
        for run in runs[i]:
            run.write_registers(tuning_writes(layer, None if tuning is None else tuning[i]))
    expected: list[list[dict[str, np.ndarray]]] = [[] for _ in model.layers]
    predictions = []
    reader = PhysicsReader(chip)
    starts = range(0, len(images), batch)
    for b, start in enumerate(bar(starts, desc="rtl regression", unit="batch", disable=not progress)):
        accumulator = CrossbarAccumulator(model, reader, capture_codes=True, count_energy=False)
        digital_rows: dict[int, np.ndarray] = {}
        trace = run_integer(model, images[start:start + batch], _keeping_digital_rows(accumulator, digital_rows),
                            tuning)
        predictions.append(trace.predictions)
        for i, layer in enumerate(model.layers):
            stimulus = digital_rows[i] if layer.digital else periphery_inputs(
                layer, accumulator.layer_codes(i), None if tuning is None else tuning[i])
            runs[i][b % shards].send(layer_payloads(layer, stimulus, fields[i]["i"]))
            expected[i].append(expected_outputs(layer, trace.outputs[i]))
    results = [_merge([run.finish() for run in layer_runs], [len(next(iter(e.values()))) for e in parts])
               for layer_runs, parts in zip(runs, expected, strict=True)]
    report = _report(model, chip, len(images), expected, results, fields, build_s, time.perf_counter() - started,
                     tuning is not None, np.concatenate(predictions), shards)
    report["rtl"] = str(rtl_dir)
    return report


def _keeping_digital_rows(accumulator: Accumulate, captured: dict[int, np.ndarray]) -> Accumulate:
    """``accumulator``, keeping each digital layer's input vectors in ``captured`` (its RTL
    takes them, not ADC codes)."""
    def accumulate(i: int, layer: CompiledLayer, rows: np.ndarray) -> np.ndarray:
        if layer.digital:
            captured[i] = rows
        return accumulator(i, layer, rows)

    return accumulate


def _merge(shards: list[StreamResult], batch_outputs: list[int]) -> StreamResult:
    """One result from round-robin shards: outputs back in batch order, counts summed, errors OR-ed."""
    pieces, cursors = [], [0] * len(shards)
    for b, count in enumerate(batch_outputs):
        k = b % len(shards)
        pieces.append(shards[k].outputs[cursors[k]:cursors[k] + count])
        cursors[k] += count
    extra = [r.outputs[c:] for r, c in zip(shards, cursors, strict=True)]  # surplus shows as a count mismatch
    outputs = np.concatenate(pieces + extra)
    error = 0
    for r in shards:
        error |= r.error
    return StreamResult(outputs, sum(r.beats for r in shards), max(r.cycles for r in shards), error,
                        max(r.seconds for r in shards))


def _report(model: CompiledModel, chip: Chip, n_images: int, expected: list[list[dict[str, np.ndarray]]],
            results: list[StreamResult], fields: list[dict[str, Fields]], build_s: float, total_s: float,
            tuned: bool, predictions: np.ndarray, shards: int) -> dict[str, Any]:
    rows = []
    for layer, parts, result, f in zip(model.layers, expected, results, fields, strict=True):
        want = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
        diff = first_difference(layer, want, result.outputs, f["o"])
        rows.append({"layer": layer.name, "beats": result.beats, "cycles": result.cycles,
                     "outputs": len(result.outputs), "mismatches": 0 if diff is None else diff[0],
                     "first_mismatch": None if diff is None else diff[1], "error_register": result.error,
                     "seconds": round(result.seconds, 2),
                     "beats_per_s": round(result.beats / max(result.seconds, 1e-9))})
    ok = all(r["mismatches"] == 0 and r["error_register"] == 0 for r in rows)
    return {"images": n_images, "chip": chip.describe(), "tuned": tuned, "layers": rows, "ok": ok, "shards": shards,
            "predictions_checked": len(predictions), "build_seconds": round(build_s, 1),
            "seconds": round(total_s, 1)}


def regression_markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table."""
    lines = [f"RTL regression: {report['images']} images, chip seed {report['chip']['seed']}, tuned: "
             f"{report['tuned']}, Verilator, {report['shards']} process(es) per layer "
             f"(build {report['build_seconds']} s, total {report['seconds']} s)",
             f"RTL simulated: {report.get('rtl', 'not recorded')}", "",
             "| layer | beats | outputs | mismatches | error register | seconds | beats/s |",
             "|---|---|---|---|---|---|---|"]
    for row in report["layers"]:
        lines.append(f"| {row['layer']} | {row['beats']:,} | {row['outputs']:,} | {row['mismatches']} | "
                     f"{row['error_register']} | {row['seconds']} | {row['beats_per_s']:,} |")
    first = next((f"layer {r['layer']}, {r['first_mismatch']}" for r in report["layers"] if r["first_mismatch"]),
                 None)
    lines += ["", "Every activation and prediction = golden." if report["ok"] else f"FAILED: {first}"]
    return "\n".join(lines) + "\n"
