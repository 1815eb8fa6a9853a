"""Testbench scenarios from the golden model: beats, register traffic, resets and expected outputs.

Each generator returns the JSON-able scenario that :mod:`bmcnn_hw.cosim.tb_stream` runs.
Expected values come from the golden integer model (accumulators, thresholds, pooling,
scores) plus a Python model of the registers the scenario writes. Scenarios on real data
end by reading the sticky ``error`` register, which must still be 0.
"""

from __future__ import annotations

import numpy as np

from ..artefact import CompiledLayer
from ..errors import SimulationError
from ..golden.layers import comparator_decisions
from ..rtl.layer import layer_stream_fields
from ..rtl.mac import frame_elements, frames_per_image, layer_cycles
from ..rtl.periphery import bipolar_offsets, layer_registers, periphery_code_bits
from ..rtl.streams import activation_layout, layout_fields, score_layout

PERIPHERY_IN = ["code", "plane", "channel", "first", "last", "group_last"]
"""Payload fields of a beat into a periphery, in the order scenarios list them."""
SENSE_IN = ["code", "group_last"]
"""Payload fields of a sense read-out layer's beat (one read's decision word)."""
MAC_IN = ["value", "last"]
"""Payload fields of an input element into a MAC engine, in the order scenarios list them."""


def periphery_fields(layer: CompiledLayer) -> list[str]:
    """The payload fields a crossbar layer's periphery beat lists: :data:`SENSE_IN` or :data:`PERIPHERY_IN`."""
    return SENSE_IN if layer.sense else PERIPHERY_IN


def pack_words(bits: np.ndarray) -> np.ndarray:
    """Rows of channel bits (..., C) as words, bit ``c`` = channel ``c`` (uint64, for the compiled
    stream harness's 64-bit payloads).

    Raises:
        SimulationError: more than 64 channels (the cocotb testbenches take any width: :func:`word`).
    """
    if bits.shape[-1] > 64:
        raise SimulationError(f"a word of {bits.shape[-1]} channels does not fit the stream harness's 64-bit "
                              "payloads; use the cocotb testbenches (--sim icarus)")
    weights = np.left_shift(np.uint64(1), np.arange(bits.shape[-1], dtype=np.uint64))
    return (bits.astype(np.uint64) * weights).sum(axis=-1, dtype=np.uint64)


def word(bits) -> int:
    """One row of channel bits as a Python int of any width, bit ``c`` = channel ``c`` (what the
    cocotb testbenches pack: a sense layer may have more than 64 channels)."""
    return sum(int(b) << c for c, b in enumerate(bits))


def word_bits(value: int, channels: int) -> list[int]:
    """The channel bits of a word of any width (inverse of :func:`word`)."""
    return [(int(value) >> c) & 1 for c in range(channels)]


def unpack_words(words: np.ndarray, channels: int) -> np.ndarray:
    """Words as rows of channel bits (..., C) uint8 (inverse of :func:`pack_words`)."""
    shifts = np.arange(channels, dtype=np.uint64)
    return ((np.asarray(words, dtype=np.uint64)[..., None] >> shifts) & np.uint64(1)).astype(np.uint8)


def error_read(layer: CompiledLayer) -> dict:
    """The step that reads the periphery's sticky ``error`` register and expects 0."""
    return {"read": [layer_registers(layer)["error"].offset, 0]}


def beat_order(layer: CompiledLayer) -> list[tuple[int, int]]:
    """(plane, row tile) order of the beats of one output (a digital layer's periphery takes
    one beat, the whole dot product, as plane 0 of row tile 0)."""
    if layer.digital:
        return [(0, 0)]
    assert layer.tiling is not None  # memristive layers are tiled
    return [(plane, rt) for plane in range(layer.input_bits) for rt in range(layer.tiling.n_row_tiles)]


def _beats(layer: CompiledLayer, codes: dict, m: int, ch: int, group_last: int = 0,
           regs: RegisterModel | None = None) -> list[dict]:
    """The beats of output (vector ``m``, channel ``ch``); ``group_last`` rides on its last beat.
    A sense layer's one beat carries every channel's decision of vector ``m``: ``codes`` are
    decisions, or with ``regs`` its reads' codes, each decided against the reference the
    registers set now (theta - tune_offset)."""
    if layer.sense:  # one beat per read: every channel's decision (``ch`` is not used)
        row = codes[(0, 0)][m]
        decided = row if regs is None else np.array([regs.decision(int(v), c) for c, v in enumerate(row)])
        return [{"beat": [word(decided), int(group_last)]}]
    order = beat_order(layer)
    end = len(order) - 1
    values = [int(codes[(plane, rt)][m, ch]) for plane, rt in order]
    return [{"beat": [value, plane, ch, int(k == 0), int(k == end), int(group_last and k == end)]}
            for k, (value, (plane, rt)) in enumerate(zip(values, order, strict=True))]


class RegisterModel:
    """Python mirror of a periphery's registers (reset values from the CompiledModel)."""

    def __init__(self, layer: CompiledLayer):
        self.map = layer_registers(layer)
        self.reset()

    def reset(self) -> None:
        self.values = {r.name: list(r.reset) for r in self.map.registers}

    def random_write(self, rng: np.random.Generator, channel: int) -> tuple[int, int, str]:
        """A random in-range write to a rw register of ``channel``; returns (addr, value, name)."""
        names = [r.name for r in self.map.registers if r.access == "rw"]  # error (w1c) is set by hardware
        reg = self.map[names[int(rng.integers(len(names)))]]
        lo, hi = (-(1 << (reg.width - 1)), (1 << (reg.width - 1)) - 1) if reg.signed else (0, (1 << reg.width) - 1)
        if reg.name == "tune_offset":
            lo, hi = max(lo, -64), min(hi, 64)  # small corrections, like the tuning method's
        value = int(rng.choice([lo, hi, int(rng.integers(lo, hi + 1))]))
        self.values[reg.name][channel] = value
        return reg.offset + channel, value, reg.name

    def decision(self, code: int, ch: int) -> int:
        """A sense comparator's decision on ``code`` against the reference theta - tune_offset."""
        return int(comparator_decisions(code, self.values["theta"][ch], self.values["tune_offset"][ch]))

    def sense_result(self, codes: np.ndarray, last: int) -> list[int]:
        """A sense periphery's expected (decision word, activation word, last) for one read's codes (cols,)."""
        decided = np.array([self.decision(int(v), c) for c, v in enumerate(codes)], dtype=np.uint8)
        flips = np.asarray(self.values["flip"], dtype=np.uint8)
        return [word(decided), word(decided ^ flips), last]

    def evaluate(self, layer: CompiledLayer, acc: int, ch: int, last: int = 0) -> list[int]:
        """Expected (channel, acc, act, last[, score]) for a golden accumulator (ADC layers; a sense
        layer's is :meth:`sense_result`)."""
        tuned = acc + self.values["tune_offset"][ch]
        act = 0 if layer.is_output else int((tuned >= self.values["theta"][ch]) ^ bool(self.values["flip"][ch]))
        out = [ch, tuned, act, last]
        if layer.is_output:
            assert layer.score_scale is not None and layer.score_bias is not None  # is_output says so
            out.append(tuned * int(layer.score_scale[ch]) + int(layer.score_bias[ch]))
        return out


def periphery_scenario(layer: CompiledLayer, acc: np.ndarray, codes: dict, picks: np.ndarray, *, seed: int = 0,
                       write_prob: float = 0.1, reset_prob: float = 0.02, idle_prob: float = 0.2,
                       stall_prob: float = 0.3) -> dict:
    """Golden vectors for one layer's periphery, with register traffic, resets and extremes.

    Args:
        acc: golden accumulators (M, cols); codes: (plane, rt) -> ADC codes (M, cols).
        picks: (K, 2) (vector index, channel) outputs to send, in order.
    """
    if layer.sense:
        return _sense_periphery_scenario(layer, codes, picks[:, 0], seed, write_prob, reset_prob, idle_prob,
                                         stall_prob)
    rng = np.random.default_rng(seed)
    regs = RegisterModel(layer)
    steps: list[dict] = []
    expected: list[list[int]] = []
    codes, acc = _with_extremes(layer, codes, acc)
    n_vectors = acc.shape[0]
    extremes = [(n_vectors - 2, 0), (n_vectors - 1, layer.cols - 1)]
    steps += _directed_thresholds(layer, regs, acc, codes, expected)
    for m, ch in [*extremes, *map(tuple, picks.tolist())]:
        if rng.random() < write_prob:
            addr, value, _ = regs.random_write(rng, ch)
            steps += [{"write": [addr, value]}, {"read": [addr, value]}]
        if rng.random() < reset_prob:
            steps.append({"reset": len(expected)})
            regs.reset()
        last = int(rng.integers(2))  # passed through to the pool/argmax
        steps += _beats(layer, codes, m, ch, last, regs)
        expected.append(regs.evaluate(layer, int(acc[m, ch]), ch, last))
    outputs = ["channel", "acc", "act", "last"] + (["score"] if layer.is_output else [])
    ident = regs.map["id"]
    steps += [{"read": [ident.offset, int(ident.reset[0])]}, error_read(layer)]
    return {"fields": layer_stream_fields(layer, top=False), "inputs": PERIPHERY_IN, "outputs": outputs,
            "steps": steps, "expected": expected, "idle_prob": idle_prob, "stall_prob": stall_prob, "seed": seed}


def _sense_periphery_scenario(layer: CompiledLayer, codes: dict, picks: np.ndarray, seed: int, write_prob: float,
                              reset_prob: float, idle_prob: float, stall_prob: float) -> dict:
    """:func:`periphery_scenario` of a sense layer: one beat per picked read (``picks``: vector
    indices), each channel decided against the references the random register writes leave."""
    rng = np.random.default_rng(seed)
    regs = RegisterModel(layer)
    steps: list[dict] = []
    expected: list[list[int]] = []
    codes, _ = _with_extremes(layer, codes, codes[(0, 0)])
    reads = codes[(0, 0)]
    steps += _directed_thresholds(layer, regs, reads, codes, expected)
    for m in [len(reads) - 2, len(reads) - 1, *picks.tolist()]:
        if rng.random() < write_prob:
            addr, value, _ = regs.random_write(rng, int(rng.integers(layer.cols)))
            steps += [{"write": [addr, value]}, {"read": [addr, value]}]
        if rng.random() < reset_prob:
            steps.append({"reset": len(expected)})
            regs.reset()
        last = int(rng.integers(2))  # passed through to the pool
        steps += _beats(layer, codes, m, 0, last, regs)
        expected.append(regs.sense_result(reads[m], last))
    ident = regs.map["id"]
    steps += [{"read": [ident.offset, int(ident.reset[0])]}, error_read(layer)]
    return {"fields": layer_stream_fields(layer, top=False), "inputs": SENSE_IN, "outputs": ["acc", "act", "last"],
            "steps": steps, "expected": expected, "idle_prob": idle_prob, "stall_prob": stall_prob, "seed": seed}


def _directed_thresholds(layer: CompiledLayer, regs: RegisterModel, acc: np.ndarray, codes: dict,
                         expected: list) -> list[dict]:
    """Channel 0 of vector 0 with theta at its minimum and maximum, each with flip 0 and 1; with
    hard-wired (read-only) thresholds, tune_offset at its minimum and maximum instead."""
    if layer.is_output:
        return []
    theta = regs.map["theta"]
    moved = regs.map["tune_offset"] if theta.access == "ro" else theta
    lo, hi = -(1 << (moved.width - 1)), (1 << (moved.width - 1)) - 1
    steps: list[dict] = []
    for value in (lo, hi):
        for flip in (0, 1) if moved is theta else (None,):
            regs.values[moved.name][0] = value
            steps.append({"write": [moved.offset, value]})
            if flip is not None:
                regs.values["flip"][0] = flip
                steps.append({"write": [regs.map["flip"].offset, flip]})
            steps += _beats(layer, codes, 0, 0, regs=regs)
            expected.append(regs.sense_result(acc[0], 0) if layer.sense else regs.evaluate(layer, int(acc[0, 0]), 0, 0))
    steps.append({"reset": len(expected)})  # back to the CompiledModel's values
    regs.reset()
    return steps


def _with_extremes(layer: CompiledLayer, codes: dict, acc: np.ndarray) -> tuple[dict, np.ndarray]:
    """Append two directed vectors: every ADC code at its minimum, then at its maximum."""
    cols = acc.shape[1]
    if layer.sense:  # the comparator's inputs at the ends of its reference DAC's range
        lo, hi = -(2 ** (layer.adc_bits - 1)), 2 ** (layer.adc_bits - 1) - 1
    else:
        lo, hi = _code_range(layer, periphery_code_bits(layer))
    extra = {key: np.vstack([value, np.broadcast_to(lo, (1, cols)), np.broadcast_to(hi, (1, cols))])
             for key, value in codes.items()}
    totals = []
    for code in (lo, hi):
        total = sum(code << plane for plane, _ in beat_order(layer))
        if layer.bipolar:
            total = (total + np.asarray(bipolar_offsets(layer))) >> 1
        totals.append(np.broadcast_to(total, (cols,)))
    return extra, np.vstack([acc, np.stack(totals)])


def pool_scenario(group: int, windows: int, channel_width: int, seed: int = 0) -> dict:
    """Random windows of bits for :class:`~bmcnn_hw.rtl.pool.BinaryMaxPool`; expected = OR."""
    rng = np.random.default_rng(seed)
    steps, expected = [], []
    for _ in range(windows):
        ch = int(rng.integers(1 << channel_width))
        bits = (rng.random(group) < rng.choice([0.0, 0.1, 0.5])).astype(int)
        steps += [{"beat": [int(b), ch, int(k == group - 1)]} for k, b in enumerate(bits)]
        expected.append([int(bits.max()), ch])
    fields = {"i": layout_fields(activation_layout(channel_width, last=True)),
              "o": layout_fields(activation_layout(channel_width))}
    return {"fields": fields,
            "inputs": ["bit", "channel", "last"], "outputs": ["bit", "channel"],
            "steps": steps, "expected": expected, "idle_prob": 0.2, "stall_prob": 0.3, "seed": seed}


def argmax_scenario(classes: int, images: int, score_width: int, seed: int = 0) -> dict:
    """Random score vectors (ties and extremes included) for :class:`~bmcnn_hw.rtl.argmax.Argmax`."""
    rng = np.random.default_rng(seed)
    lo, hi = -(2 ** (score_width - 1)), 2 ** (score_width - 1) - 1
    steps, expected = [], []
    for k in range(images):
        if k % 3 == 0:
            scores = rng.integers(-3, 3, classes)  # many ties
        else:
            scores = rng.integers(lo, hi + 1, classes)
        if k == 1:
            scores[:] = lo
        steps += [{"beat": [c, int(s), int(c == classes - 1)]} for c, s in enumerate(scores)]
        best = int(np.argmax(scores))
        expected.append([best, int(scores[best])])
    fields = {"i": layout_fields(score_layout(classes, score_width, last=True)),
              "o": layout_fields(score_layout(classes, score_width))}
    return {"fields": fields,
            "inputs": ["class", "score", "last"], "outputs": ["class", "score"],
            "steps": steps, "expected": expected, "idle_prob": 0.2, "stall_prob": 0.3, "seed": seed}


def _top_outputs(layer: CompiledLayer) -> list[str]:
    if layer.sense:
        return ["bits"]
    return ["class", "score"] if layer.is_output else ["channel", "bit"]


def _window_beats(layer: CompiledLayer, codes: dict, n: int, ch: int, py: int, px: int) -> list[dict]:
    """The beats of one pool window (its members in turn; the last closes the window)."""
    h, w = layer.conv_hw
    p = layer.pool
    members = [(dy, dx) for dy in range(p) for dx in range(p)]
    steps: list[dict] = []
    for k, (dy, dx) in enumerate(members):
        steps += _beats(layer, codes, n * h * w + (py * p + dy) * w + px * p + dx, ch, int(k == len(members) - 1))
    return steps


def _image_beats(layer: CompiledLayer, codes: dict, n: int) -> list[dict]:
    """The beats of every class of image ``n`` (output layer; the last class closes the image)."""
    steps: list[dict] = []
    for ch in range(layer.cols):
        steps += _beats(layer, codes, n, ch, int(ch == layer.cols - 1))
    return steps


def _top_scenario(layer: CompiledLayer, steps: list, expected: list, idle_prob: float, stall_prob: float,
                  seed: int) -> dict:
    scenario = {"fields": layer_stream_fields(layer, top=True),
                "inputs": MAC_IN if layer.digital else periphery_fields(layer),
                "outputs": _top_outputs(layer), "steps": [*steps, error_read(layer)], "expected": expected,
                "idle_prob": idle_prob, "stall_prob": stall_prob, "seed": seed}
    if layer.digital:  # the engine computes for a while after a frame's last element
        scenario["drain_cycles"] = 2 * layer_cycles(layer) + 100
    return scenario


def mac_frames(layer: CompiledLayer, rows: np.ndarray) -> np.ndarray:
    """A digital layer's input vectors (N, P, rows) as the frames its MAC engine takes, in
    hardware order: (N, frames, frame length). A conv layer's frame is one pool window in raster
    order, its members in turn; an fc layer's is its one input vector."""
    n, positions, fan_in = rows.shape
    if layer.kind != "conv":
        return rows.reshape(n, positions, fan_in)
    h, w = layer.conv_hw
    p = layer.pool
    # position (py*p + dy)*w + px*p + dx -> order (n, py, px, dy, dx, row)
    windows = rows.reshape(n, h // p, p, w // p, p, fan_in).transpose(0, 1, 3, 2, 4, 5)
    return windows.reshape(n, (h // p) * (w // p), frame_elements(layer))


def _frame_beats(frame: np.ndarray) -> list[dict]:
    """The beats of one MAC frame, ``last`` on its final element."""
    end = len(frame) - 1
    return [{"beat": [int(v), int(k == end)]} for k, v in enumerate(frame)]


def _frame_outputs(layer: CompiledLayer, output: np.ndarray, n: int,
                   frame: int) -> list[tuple[tuple[int, ...], list[int]]]:
    """(where it lands, expected values) of each layer-top output of frame ``frame`` (a pooled
    position in raster order) of image ``n``: each channel's bit at (image, channel, y, x) for
    conv or (image, channel) for fc; the prediction at (image,) for the output layer."""
    if layer.is_output:
        best = int(np.argmax(output[n]))
        return [((n,), [best, int(output[n, best])])]
    if layer.sense:  # one word of every channel's bit
        where = (n, *divmod(frame, output.shape[3])) if layer.kind == "conv" else (n,)
        bits = output[n, :, where[1], where[2]] if layer.kind == "conv" else output[n]
        return [(where, [word(bits)])]
    if layer.kind == "conv":
        py, px = divmod(frame, output.shape[3])
        return [((n, ch, py, px), [ch, int(output[n, ch, py, px])]) for ch in range(layer.cols)]
    return [((n, ch), [ch, int(output[n, ch])]) for ch in range(layer.cols)]


def _digital_top_scenario(layer: CompiledLayer, rows: np.ndarray, output: np.ndarray, n_images: int, picks: int,
                          seed: int) -> dict:
    """Random frames of a digital layer top (MAC engine + periphery + pool or argmax)."""
    rng = np.random.default_rng(seed)
    frames = mac_frames(layer, rows)
    steps, expected = [], []
    for _ in range(picks):
        n, f = int(rng.integers(n_images)), int(rng.integers(frames.shape[1]))
        steps += _frame_beats(frames[n, f])
        expected += [values for _, values in _frame_outputs(layer, output, n, f)]
    return _top_scenario(layer, steps, expected, 0.1, 0.3, seed)


def layer_top_scenario(layer: CompiledLayer, trace_acc: np.ndarray, output: np.ndarray, stimulus, n_images: int,
                       picks: int, seed: int = 0) -> dict:
    """Golden vectors for a :class:`~bmcnn_hw.rtl.layer.LayerTop` (periphery + pool or argmax).

    Args:
        trace_acc: golden accumulators (N, P, cols); output: the golden layer output (pooled
            bits (N, C, H', W') / (N, F), or scores (N, classes) for the output layer).
        stimulus: (plane, rt) -> ADC codes (N * P, cols) of a crossbar layer; the input vectors
            (N, P, rows) of a digital layer (``picks`` random frames of them are sent).
    """
    if layer.digital:
        return _digital_top_scenario(layer, stimulus, output, n_images, picks, seed)
    codes = stimulus
    rng = np.random.default_rng(seed)
    steps, expected = [], []
    if layer.is_output:
        for n in range(min(n_images, picks)):
            steps += _image_beats(layer, codes, n)
            best = int(np.argmax(output[n]))
            expected.append([best, int(output[n, best])])
        tie = tie_image(layer)
        if tie is not None:  # two classes with the best score: the first must win
            steps += _image_beats(layer, tie[0], 0)
            expected.append(tie[1])
    elif layer.sense:  # whole reads: every channel of a pool window (conv) or of an image (fc)
        frames = frames_per_image(layer)
        for _ in range(picks):
            n, frame = int(rng.integers(n_images)), int(rng.integers(frames))
            steps += _frame_beats_of(layer, codes, n, frame)
            expected += [values for _, values in _frame_outputs(layer, output, n, frame)]
    elif layer.kind == "conv":
        h, w = layer.conv_hw
        for _ in range(picks):
            n, ch = int(rng.integers(n_images)), int(rng.integers(layer.cols))
            py, px = int(rng.integers(h // layer.pool)), int(rng.integers(w // layer.pool))
            steps += _window_beats(layer, codes, n, ch, py, px)
            expected.append([ch, int(output[n, ch, py, px])])
    else:
        for _ in range(picks):
            n, ch = int(rng.integers(n_images)), int(rng.integers(layer.cols))
            steps += _beats(layer, codes, n, ch, 1)
            expected.append([ch, int(output[n, ch])])
    return _top_scenario(layer, steps, expected, 0.1, 0.3, seed)


def _code_range(layer: CompiledLayer, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(cols,) lowest and highest code each channel's ADC can give."""
    if layer.adc_window:
        return layer.adc_low, layer.adc_low + 2 ** bits - 1
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return np.full(layer.cols, lo), np.full(layer.cols, hi)


def tie_image(layer: CompiledLayer) -> tuple[dict, list[int]] | None:
    """A directed image for the output layer top whose two best classes score the same: its ADC
    codes ((plane, rt) -> (1, cols); plane 0 only, every other class at its lowest score) and the
    expected [class, score], the first of the two (as numpy's argmax). None when no pair of
    reachable sums ties above the rest (bipolar layers are not tried)."""
    assert layer.tiling is not None and layer.score_scale is not None and layer.score_bias is not None
    if layer.bipolar:
        return None
    n_rt = layer.tiling.n_row_tiles
    lo, hi = _code_range(layer, periphery_code_bits(layer))
    scale, bias = layer.score_scale.astype(np.int64), layer.score_bias.astype(np.int64)
    sums = [np.arange(n_rt * lo[c], n_rt * hi[c] + 1) for c in range(layer.cols)]
    floor = np.array([(s * scale[c] + bias[c]).min() for c, s in enumerate(sums)])
    best: tuple[int, int, int, int, int] | None = None
    for i in range(layer.cols):
        for j in range(i + 1, layer.cols):
            rest = np.delete(floor, [i, j]).max(initial=np.iinfo(np.int64).min)
            scores_j = {int(a * scale[j] + bias[j]): int(a) for a in sums[j]}
            for a in sums[i]:
                score = int(a * scale[i] + bias[i])
                if score in scores_j and score > rest and (best is None or score > best[0]):
                    best = (score, i, int(a), j, scores_j[score])
    if best is None:
        return None
    score, i, a_i, j, a_j = best
    totals = np.array([sums[c][int(np.argmin(s * scale[c] + bias[c]))] for c, s in enumerate(sums)])
    totals[i], totals[j] = a_i, a_j
    codes = {(plane, rt): np.zeros((1, layer.cols), dtype=np.int64)
             for plane in range(layer.input_bits) for rt in range(n_rt)}
    left = totals.copy()
    for rt in range(n_rt):  # fill row tile by row tile, each code within its channel's range
        share = np.clip(left - (n_rt - rt - 1) * hi, lo, hi)
        codes[(0, rt)][0] = share
        left -= share
    return codes, [i, score]


def _output_order(layer: CompiledLayer, output: np.ndarray, n_images: int) -> tuple[list, list]:
    """Every output of a layer top in hardware order (frame by frame, :func:`_frame_outputs`),
    and where each lands."""
    pairs = [pair for n in range(n_images) for frame in range(frames_per_image(layer))
             for pair in _frame_outputs(layer, output, n, frame)]
    return [values for _, values in pairs], [where for where, _ in pairs]


def _frame_beats_of(layer: CompiledLayer, codes: dict, n: int, frame: int) -> list[dict]:
    """A sense layer's beats of frame ``frame`` (a pooled position in raster order) of image ``n``."""
    if layer.kind != "conv":
        return _beats(layer, codes, n, 0, 1)
    py, px = divmod(frame, layer.conv_hw[1] // layer.pool)
    return _window_beats(layer, codes, n, 0, py, px)


def _crossbar_steps(layer: CompiledLayer, codes: dict, n_images: int) -> list[dict]:
    """Every beat of a crossbar layer top for ``n_images`` images, in hardware order."""
    steps: list[dict] = []
    for n in range(n_images):
        if layer.sense:
            for frame in range(frames_per_image(layer)):
                steps += _frame_beats_of(layer, codes, n, frame)
        elif layer.is_output:
            steps += _image_beats(layer, codes, n)
        elif layer.kind == "conv":
            h, w = layer.conv_hw
            for py in range(h // layer.pool):
                for px in range(w // layer.pool):
                    for ch in range(layer.cols):
                        steps += _window_beats(layer, codes, n, ch, py, px)
        else:
            for ch in range(layer.cols):
                steps += _beats(layer, codes, n, ch, 1)
    return steps


def full_layer_scenario(layer: CompiledLayer, output: np.ndarray, stimulus, n_images: int,
                        register_writes=()) -> tuple[dict, list]:
    """Every output of a layer top for ``n_images`` images, in hardware order.

    ``stimulus``: ADC codes ((plane, rt) -> (N * P, cols)) of a crossbar layer, or the input
    vectors (N, P, rows) of a digital one. Returns the scenario and, per expected output, where
    it lands: (image, channel, y, x) for conv, (image, channel) for fc, (image,) for the output
    layer's prediction.
    """
    steps: list[dict] = [{"write": [int(a), int(v)]} for a, v in register_writes]
    if layer.digital:
        frames = mac_frames(layer, stimulus[:n_images])
        for frame in frames.reshape(-1, frames.shape[2]):
            steps += _frame_beats(frame)
    else:
        steps += _crossbar_steps(layer, stimulus, n_images)
    expected, where = _output_order(layer, output, n_images)
    return _top_scenario(layer, steps, expected, 0.0, 0.0, 0), where
