"""``bmcnn-hw import MODEL.onnx``: a binarized (Q)ONNX graph as a bmcnn-hw checkpoint directory.

The graph (walked by :mod:`bmcnn_hw.onnx_graph`) maps onto bmcnn-hw's semantics layer by layer:

* **weights**: each output channel's weights must be ``{-s_c, +s_c}`` with ``s_c > 0``
  (a BipolarQuant, Sign or already-binary constant); the signs become the crossbar's
  ``{-1, +1}`` and ``s_c`` is folded into what follows;
* **inputs**: the first layer takes the input quantizer's integer codes (the pixels; the
  graph's input for pixel p is ``p * scale``); a hidden layer takes the previous
  activation's two levels ``lo < hi`` as ``{0, 1}`` (the crossbar's drive), so its source
  accumulator is ``s_c * (lo * colsum_c + (hi - lo) * acc)`` with ``acc`` bmcnn-hw's integer one;
* **thresholds**: the nodes between a layer and its activation (batch norm, scales,
  offsets) and the activation itself are *executed by qonnx/onnxruntime* on every integer
  accumulator the layer can reach; where the activation is ``hi`` is read off as an integer
  threshold and flip per channel - the same enumeration ``compile`` does for its own batch
  norm, so the imported thresholds equal the source graph's float32 decisions on every
  reachable accumulator;
* **scores**: the output layer's source scores are an affine function ``A_c * acc + B_c``
  of the integer accumulator; A and B become fixed-point codes of a score format wide
  enough to hold them (exactly when they are dyadic, as with power-of-two scales).

The rule where float arithmetic enters: the source graph computes each accumulator in
float32, here it is taken as the exact sum times the scales (rounded once to float32). With
power-of-two scales both are exact. With other scales (Brevitas's default binary weight
scale 0.1) the source's sums carry rounding, and an activation can differ where a threshold
lies within that rounding of a reachable sum: :func:`compare_with_source` counts such
disagreements rather than hiding them. ``Sign`` maps 0 to 0, which has no binary form;
such points (a batch-norm output of exactly 0) are driven as ``hi`` and counted in the report.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .compile.thresholds import Thresholds
from .errors import ConfigError
from .onnx_graph import (
    GraphPlan,
    LayerNodes,
    first_line,
    linear_bias,
    load_graph,
    node_label,
    source_hashes,
    walk_graph,
)
from .train.architecture import LayerKind, LayerSpec, ModelConfig
from .train.checkpoint import save_checkpoint
from .train.model import BMCNN

MNIST_SHAPE = (1, 28, 28)
DEFAULT_INPUT_SCALE = 2.0 ** -8
"""Scale of a graph without an input quantizer: its input is the pixel p times this (UQ0.8)."""
MAX_SCORE_FRAC_BITS = 16


@dataclass
class Incoming:
    """What feeds a layer: pixel codes (``scale`` per code) or two activation levels."""

    scale: float = 1.0
    lo: float | None = None
    hi: float | None = None

    @property
    def pixels(self) -> bool:
        """True for the first layer (integer pixel codes)."""
        return self.lo is None


def binary_signs(layer: LayerNodes) -> tuple[np.ndarray, np.ndarray]:
    """(signs in {-1, +1} as float32, per-output-channel scale s_c > 0) of a layer's weights.

    Raises:
        ConfigError: a channel's weights are not ``{-s, +s}`` with one ``s > 0``.
    """
    weight = layer.weight
    flat = weight.reshape(weight.shape[0], -1)
    scale = np.abs(flat).max(axis=1)
    binary = np.isclose(np.abs(flat), scale[:, None], rtol=0, atol=0) & (scale[:, None] > 0)
    if not binary.all():
        channel = int(np.argmax(~binary.all(axis=1)))
        values = np.unique(flat[channel])
        sample = ", ".join(f"{v:g}" for v in values[:4]) + (", ..." if len(values) > 4 else "")
        raise ConfigError(f"{node_label(layer.linear)}: weights are not binary (output channel {channel} holds "
                          f"{len(values)} distinct values: {sample}); a memristive layer takes {{-s, +s}} per channel "
                          "(zero weights, as ONNX Sign gives for 0, have no binary form)")
    return np.where(weight > 0, 1.0, -1.0).astype(np.float32), scale


def _chain_model(plan: GraphPlan, layer: LayerNodes, channels: int, points: int) -> tuple[Any, str, str]:
    """A ModelWrapper of the layer's elementwise nodes (and activation) alone, input (points, C[, 1, 1])."""
    import onnx
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    nodes = list(layer.chain) + ([layer.activation] if layer.activation is not None else [])
    first_input = nodes[0].input[0] if nodes else layer.linear.output[0]
    last_output = nodes[-1].output[0] if nodes else first_input
    shape = [points, channels] + ([1, 1] if layer.kind == "conv" else [])
    initializers = []
    for node in nodes:
        for name in node.input[1:]:
            value = plan.folded.get_initializer(name) if name else None
            if value is not None:
                initializers.append(onnx.numpy_helper.from_array(np.asarray(value), name))
    graph = helper.make_graph([onnx.NodeProto.FromString(n.SerializeToString()) for n in nodes], "chain",
                              [helper.make_tensor_value_info(first_input, TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(last_output, TensorProto.FLOAT, None)], initializers)
    model = helper.make_model(graph, opset_imports=list(plan.folded.model.opset_import))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ModelWrapper(model).transform(InferShapes()), first_input, last_output


def run_chain(plan: GraphPlan, layer: LayerNodes, source_acc: np.ndarray) -> np.ndarray:
    """The layer's elementwise nodes and activation, executed by qonnx on float32 ``source_acc``
    (points, channels); returns (points, channels)."""
    from qonnx.core.onnx_exec import execute_onnx

    points, channels = source_acc.shape
    model, first, last = _chain_model(plan, layer, channels, points)
    if first == last:
        return source_acc.astype(np.float64)
    feed = source_acc.astype(np.float32).reshape(model.get_tensor_shape(first))
    try:
        out = execute_onnx(model, {first: feed})[last]
    except Exception as exc:  # onnxruntime / qonnx raise many types  # noqa: BLE001
        raise ConfigError(f"{node_label(layer.linear)}: executing the nodes after it failed "
                          f"({type(exc).__name__}: {first_line(exc)})") from None
    return np.asarray(out, dtype=np.float64).reshape(points, channels)


def source_accumulators(layer: LayerNodes, incoming: Incoming, signs: np.ndarray, scale: np.ndarray,
                        grid: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """The source graph's accumulator (float32) for every integer accumulator in ``grid`` and channel."""
    colsum = signs.reshape(signs.shape[0], -1).sum(axis=1).astype(np.float64)
    acc = grid.astype(np.float64)[:, None]
    if incoming.pixels:
        value = scale[None, :] * incoming.scale * acc
    else:
        assert incoming.lo is not None and incoming.hi is not None
        value = scale[None, :] * (incoming.lo * colsum[None, :] + (incoming.hi - incoming.lo) * acc)
    if bias is not None:
        value = value + bias[None, :]
    return value.astype(np.float32)


def activation_levels(layer: LayerNodes, out: np.ndarray) -> tuple[float, float, int]:
    """(lo, hi, ties) of an activation's outputs; ties: Sign's zeros, driven as hi.

    Raises:
        ConfigError: the activation takes other than two levels.
    """
    values = np.unique(out)
    ties = 0
    if layer.activation.op_type == "Sign":
        ties = int((out == 0).sum())
        return -1.0, 1.0, ties
    if layer.activation.op_type == "BipolarQuant" and len(values) <= 2 and np.allclose(np.abs(values), values.max()):
        level = float(np.abs(values).max())
        return -level, level, 0
    if len(values) != 2:
        raise ConfigError(f"{node_label(layer.activation)}: the activation takes {len(values)} distinct values over "
                          "the layer's reachable accumulators; bmcnn-hw hidden activations are binary (two levels)")
    return float(values[0]), float(values[1]), ties


def threshold_of(layer: LayerNodes, active: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per channel integer theta and flip with ``active == (grid >= theta) XOR flip``.

    Raises:
        ConfigError: a channel's activation is not a threshold function of its accumulator.
    """
    count = active.sum(axis=0)
    decreasing = active[0] & ~active[-1]
    acc_min, acc_max = int(grid[0]), int(grid[-1])
    theta = np.where(decreasing, acc_min + count, acc_max + 1 - count).astype(np.int64)
    rebuilt = (grid[:, None] >= theta[None, :]) ^ decreasing[None, :]
    if not np.array_equal(rebuilt, active):
        channel = int(np.argmax((rebuilt != active).any(axis=0)))
        raise ConfigError(f"{node_label(layer.activation)}: channel {channel}'s activation is not a threshold of "
                          "its accumulator (it switches more than once)")
    return theta, decreasing


def score_format_for(a: np.ndarray, b: np.ndarray) -> tuple[str, bool]:
    """The narrowest score format holding A and B exactly (when dyadic) and whether it is exact."""
    for frac in range(MAX_SCORE_FRAC_BITS + 1):
        codes = np.concatenate([a, b]) * 2.0 ** frac
        if np.array_equal(codes, np.round(codes)):
            return _format_holding(codes, frac), True
    frac = MAX_SCORE_FRAC_BITS
    return _format_holding(np.round(np.concatenate([a, b]) * 2.0 ** frac), frac), False


def score_parameters(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(A, B, factor): the per-class score affine bmcnn-hw computes, source scores = factor * ours.

    factor is 1 where A and B are dyadic (the scores then equal the source's exactly). Where
    they are not but every class shares one scale A (a per-tensor weight scale such as 0.1),
    the scores are divided by it: rounding A and B separately per class would break the
    source's ties between classes differently, dividing keeps the ranking exact.
    """
    _, exact = score_format_for(a, b)
    if exact or not np.allclose(a, a[0], rtol=1e-6, atol=0) or a[0] <= 0:
        return a, b, 1.0
    factor = float(a[0])
    return _snap_dyadic(a / factor), _snap_dyadic(b / factor), factor


def _format_holding(codes: np.ndarray, frac: int) -> str:
    peak = int(np.abs(codes).max()) if codes.size else 0
    bits = max(2, peak.bit_length() + 1)
    if bits > 32:
        raise ConfigError(f"the output layer's score scale and offset need {bits} bits; "
                          "the score format has at most 32")
    return f"Q{max(1, bits - frac)}.{frac}"


@dataclass
class ImportedLayer:
    """What one source layer became: its spec and the parameters of bmcnn-hw's model."""

    spec: LayerSpec
    signs: np.ndarray
    theta: np.ndarray | None = None
    flip: np.ndarray | None = None
    score_a: np.ndarray | None = None
    score_b: np.ndarray | None = None
    report: dict[str, Any] = field(default_factory=dict)


def _input_incoming(plan: GraphPlan, input_scale: float | None, path: Path) -> Incoming:
    """What feeds the first layer: the input quantizer's codes and scale (8-bit pixels)."""
    if tuple(plan.input_shape[1:]) != MNIST_SHAPE:
        raise ConfigError(f"{path}: the graph's input {plan.folded.graph.input[0].name!r} has shape "
                          f"{list(plan.input_shape)}; bmcnn-hw runs MNIST, (N, 1, 28, 28)")
    quant = plan.input_quant
    if quant is None:
        return Incoming(scale=input_scale or DEFAULT_INPUT_SCALE)
    if input_scale is not None:
        raise ConfigError(f"{path}: --input-scale is for graphs without an input quantizer; "
                          f"{node_label(quant)} gives the scale")
    from qonnx.util.basic import get_by_name

    scale, zero, bits = (np.asarray(plan.folded.get_initializer(name)) for name in quant.input[1:4])
    signed = get_by_name(quant.attribute, "signed")
    narrow = get_by_name(quant.attribute, "narrow")
    if (signed is not None and signed.i) or (narrow is not None and narrow.i) or np.any(zero != 0):
        raise ConfigError(f"{node_label(quant)}: the input quantizer must be unsigned, not narrow, zero point 0 "
                          "(bmcnn-hw pixels are unsigned codes)")
    if scale.size != 1 or float(scale.reshape(-1)[0]) <= 0 or int(bits.reshape(-1)[0]) != 8:
        raise ConfigError(f"{node_label(quant)}: the input quantizer must have one positive scale and 8 bits "
                          f"(MNIST pixels; got scale {scale.reshape(-1)[:3].tolist()}, {bits.reshape(-1)[0]} bits)")
    return Incoming(scale=float(scale.reshape(-1)[0]))


def map_layers(plan: GraphPlan, incoming: Incoming) -> list[ImportedLayer]:
    """Each source layer as bmcnn-hw parameters (see the module doc)."""
    imported: list[ImportedLayer] = []
    last = len(plan.layers) - 1
    for index, layer in enumerate(plan.layers):
        signs, scale = binary_signs(layer)
        kind: LayerKind = "conv" if layer.kind == "conv" else "fc"
        spec = LayerSpec(kind, int(signs.shape[0]), kernel=int(signs.shape[-1]) if layer.kind == "conv" else 0,
                         pool=layer.pool)
        fan_in = int(np.prod(signs.shape[1:]))
        peak = fan_in * (2 ** 8 - 1 if incoming.pixels else 1)
        grid = np.arange(-peak, peak + 1, dtype=np.int64)
        acc = source_accumulators(layer, incoming, signs, scale, grid, linear_bias(plan.folded, layer.linear))
        out = run_chain(plan, layer, acc)
        report = {"node": layer.linear.name, "op": layer.linear.op_type,
                  "elementwise": [n.op_type for n in layer.chain],
                  "weight_scales": sorted({float(s) for s in scale})[:4]}
        if index == last:
            a, b, factor = score_parameters(*_affine_scores(layer, out, grid))
            report.update(score_factor=factor)
            imported.append(ImportedLayer(spec, signs, score_a=a, score_b=b, report=report))
            break
        lo, hi, ties = activation_levels(layer, out)
        theta, flip = threshold_of(layer, out >= hi, grid)
        report.update(activation=layer.activation.op_type, levels=[lo, hi], sign_ties=ties,
                      constant_channels=int(((theta <= grid[0]) | (theta > grid[-1])).sum()))
        imported.append(ImportedLayer(spec, signs, theta=theta, flip=flip, report=report))
        incoming = Incoming(lo=lo, hi=hi)
    return imported


def _affine_scores(layer: LayerNodes, out: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) per class with source score = A * acc + B, checked on every reachable acc."""
    zero = int(np.searchsorted(grid, 0))
    b = out[zero]
    a = (out[-1] - out[0]) / float(grid[-1] - grid[0])
    fitted = a[None, :] * grid[:, None] + b[None, :]
    tolerance = 1e-5 * max(1.0, float(np.abs(out).max()))
    if not np.allclose(out, fitted, rtol=0, atol=tolerance):
        raise ConfigError(f"{node_label(layer.linear)}: the output scores are not an affine function of the "
                          "accumulator (only scales, offsets and batch norm may follow the last layer)")
    return _snap_dyadic(a), _snap_dyadic(b)


def _snap_dyadic(values: np.ndarray) -> np.ndarray:
    """Values that are float32 roundings of dyadic numbers with <= 16 fraction bits, made exact."""
    snapped = np.round(values * 2.0 ** MAX_SCORE_FRAC_BITS) / 2.0 ** MAX_SCORE_FRAC_BITS
    close = np.abs(snapped - values) <= 1e-6 * np.maximum(1.0, np.abs(values))
    return np.where(close, snapped, values)


def build_model(imported: list[ImportedLayer], name: str, description: str) -> BMCNN:
    """The BMCNN holding the imported parameters: ``sign`` weights, thresholds as canonical
    batch norms (mean theta - 1/2, var 1, weight -1 where flipped), scores as S, B codes."""
    last = imported[-1]
    assert last.score_a is not None and last.score_b is not None
    score_format, _ = score_format_for(last.score_a, last.score_b)
    config = ModelConfig(name=name, input_shape=MNIST_SHAPE, input_bits=8, layers=tuple(i.spec for i in imported),
                         score_format=score_format, description=description)
    model = BMCNN(config)
    with torch.no_grad():
        for i, layer in enumerate(imported):
            model.weights[i].copy_(torch.from_numpy(layer.signs))
            if layer.theta is None or layer.flip is None:
                continue
            norm: Any = model.norms[i]
            norm.weight.copy_(torch.from_numpy(np.where(layer.flip, -1.0, 1.0)).float())
            norm.bias.zero_()
            norm.running_mean.copy_(torch.from_numpy(layer.theta.astype(np.float64) - 0.5))
            norm.running_var.fill_(1.0)
        model.head.scale.copy_(torch.from_numpy(last.score_a).float())
        model.head.bias.copy_(torch.from_numpy(last.score_b).float())
    model.eval()
    _check_score_codes(model, last)
    return model


def _check_score_codes(model: BMCNN, last: ImportedLayer) -> None:
    """The head's float32 parameters must quantize to the intended codes (exact for dyadic A, B)."""
    frac = model.config.score_frac_bits
    s, b = model.head.integer_params()
    assert last.score_a is not None and last.score_b is not None
    want_s = np.round(last.score_a * 2.0 ** frac)
    want_b = np.round(last.score_b * 2.0 ** frac)
    if not (np.array_equal(s.numpy(), want_s) and np.array_equal(b.numpy(), want_b)):
        with torch.no_grad():  # float32 could not hold a code exactly: set the latent values to the codes
            model.head.scale.copy_(torch.from_numpy(want_s / 2.0 ** frac))
            model.head.bias.copy_(torch.from_numpy(want_b / 2.0 ** frac))


def model_name(path: Path) -> str:
    """A model name from the file name: ``imported-<stem>`` in [a-z0-9-]."""
    stem = re.sub(r"[^a-z0-9]+", "-", Path(path).stem.lower()).strip("-") or "model"
    return f"imported-{stem}"


def import_onnx(path: Path, out: Path, *, input_scale: float | None = None, name: str | None = None,
                verify_images: np.ndarray | None = None) -> tuple[BMCNN, dict[str, Any]]:
    """Write checkpoint directory ``out`` for (Q)ONNX file ``path``; returns the model and the import report.

    ``verify_images`` (uint8, (N, 28, 28)): run the source graph and the imported model on
    them before writing; the counts (:func:`compare_with_source`) go into the report.

    Raises:
        DataError: the file is not ONNX. ConfigError: something in it cannot be mapped (names the node).
    """
    path = Path(path)
    graph = load_graph(path)
    plan = walk_graph(graph, path)
    incoming = _input_incoming(plan, input_scale, path)
    imported = map_layers(plan, incoming)
    last = imported[-1]
    assert last.score_a is not None and last.score_b is not None
    _, exact = score_format_for(last.score_a, last.score_b)
    description = " -> ".join(f"{s.kind}{s.out}" + (f" pool{s.pool}" if s.pool > 1 else "") for s in
                              (i.spec for i in imported))
    model = build_model(imported, name or model_name(path), f"imported from {path.name}: {description}")
    report: dict[str, Any] = {
        "imported_from": str(path.resolve()), "sha256": source_hashes(path), "format": "onnx",
        "input_scale": incoming.scale, "input_quantizer": plan.input_quant.name if plan.input_quant else None,
        "score_format": model.config.score_format, "scores_exact": exact, "score_factor": last.report["score_factor"],
        "layers": [layer.report for layer in imported],
    }
    if verify_images is not None:
        report["verification"] = compare_with_source(graph, model, verify_images, report)
    save_checkpoint(out, model, {"imported": report}, {"imported": report, "history": []}, plot=False,
                    thresholds=carried_thresholds(imported, model).to_dict())
    return model, report


def carried_thresholds(imported: list[ImportedLayer], model: BMCNN) -> Thresholds:
    """The thresholds read off the source graph and the output layer's score codes, as the
    checkpoint's ``thresholds.json`` carries them into ``compile`` (no batch-norm round trip)."""
    theta = tuple(layer.theta.astype(np.int64) for layer in imported if layer.theta is not None)
    flip = tuple(layer.flip.astype(np.uint8) for layer in imported if layer.flip is not None)
    scale, bias = (t.numpy().astype(np.int64) for t in model.head.integer_params())
    return Thresholds(theta, flip, scale, bias)


def pixels_to_source_input(images: np.ndarray, scale: float) -> np.ndarray:
    """uint8 images (N, H, W) -> the source graph's input (N, 1, H, W): pixel * scale, float32."""
    return (images.astype(np.float64) * scale).astype(np.float32)[:, None]


def compare_with_source(graph: Any, model: BMCNN, images: np.ndarray, report: dict[str, Any],
                        batch: int = 500) -> dict[str, Any]:
    """Run the source graph (a ModelWrapper from :func:`load_graph`, executed by qonnx) and the
    imported model on ``images``; count agreements.

    Scores compare as ``score_factor * ours`` (the report's factor; 1 unless factored out).
    """
    from .onnx_graph import execute_source

    source = execute_source(graph, pixels_to_source_input(images, report["input_scale"]), batch).astype(np.float64)
    with torch.no_grad():
        ours = model(torch.from_numpy(images[:, None].astype(np.uint8))).double().numpy() * report["score_factor"]
    integer = np.all(source == np.round(source), axis=1)
    return {
        "images": len(images),
        "classes_equal": int((source.argmax(axis=1) == ours.argmax(axis=1)).sum()),
        "scores_equal": int(np.all(source == ours, axis=1).sum()),
        "integer_source_outputs": int(integer.sum()),
        "scores_equal_where_integer": int((np.all(source == ours, axis=1) & integer).sum()),
        "max_score_difference": float(np.abs(source - ours).max()) if len(images) else 0.0,
    }


def describe(report: dict[str, Any]) -> list[str]:
    """Human-readable lines about an import report."""
    lines = []
    if report["score_factor"] != 1.0:
        lines.append(f"scores are the source's divided by {report['score_factor']:.9g} (one scale shared by every "
                     "class; the ranking is unchanged)")
    for i, layer in enumerate(report["layers"]):
        what = f"layer {i}: {layer['op']} {layer['node']!r}"
        if "activation" in layer:
            what += (f" -> {'/'.join(layer['elementwise']) or 'no elementwise ops'} -> {layer['activation']} "
                     f"levels {layer['levels']}: integer thresholds ({layer['constant_channels']} constant channels"
                     + (f", {layer['sign_ties']} Sign ties driven as hi" if layer["sign_ties"] else "") + ")")
        else:
            what += f" -> scores in {report['score_format']} ({'exact' if report['scores_exact'] else 'rounded'})"
        lines.append(what)
    check = report.get("verification")
    if check:
        lines.append(f"source graph (qonnx) vs imported model on {check['images']} test images: classes equal on "
                     f"{check['classes_equal']}, scores equal on {check['scores_equal']} "
                     f"(largest difference {check['max_score_difference']:.3g})")
    return lines
