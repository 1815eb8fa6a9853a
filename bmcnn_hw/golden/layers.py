"""Layer plumbing shared by every executor: im2col, pooling, thresholds, scores.

Shapes: images are (N, C, H, W) integer arrays; a layer's crossbar input is
(N, P, rows) with P output positions (P = H_out * W_out for conv, 1 for fc).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..artefact import CompiledLayer, CompiledModel


@dataclass
class LayerStep:
    """One layer of a :func:`walk_layers` run: where it is and its crossbar input."""

    index: int
    layer: CompiledLayer
    rows: np.ndarray
    """(N, P, rows) crossbar input vectors of this layer."""
    output: np.ndarray | None = None
    """Set by the consumer: this layer's output, the next layer's input."""

    def finish(self, acc: np.ndarray) -> np.ndarray:
        """Set and return the golden output of accumulators ``acc`` (:func:`layer_output`)."""
        self.output = layer_output(self.layer, acc)
        return self.output


def network_input(images: np.ndarray, shift: int) -> np.ndarray:
    """Images (N, H, W) or (N, C, H, W) as the first layer's (N, C, H, W) integer input.

    ``shift``: the first layer's :attr:`~bmcnn_hw.artefact.CompiledLayer.input_shift` (a model
    of fewer than 8 input bits sees each pixel's top ``input_bits`` bits). Integer pixels keep
    their (small) dtype: im2col then copies less.
    """
    x = images if images.ndim == 4 else images[:, None]
    x = x if x.dtype.kind in "ui" else x.astype(np.int64)
    return x >> shift if shift else x


def walk_layers(model: CompiledModel, images: np.ndarray) -> Iterator[LayerStep]:
    """The one walk through a model's layers, shared by every executor.

    Yields a :class:`LayerStep` per layer; the consumer computes the layer (integer matmul,
    crossbar reads, SPICE, RTL, ...) and sets ``step.output`` (``step.finish(acc)`` for the
    golden threshold/pool/score), which becomes the next layer's input.

    Raises:
        RuntimeError: a step was left without an output (a bug in the consumer).
    """
    x = network_input(images, model.layers[0].input_shift)
    for index, layer in enumerate(model.layers):
        step = LayerStep(index, layer, layer_rows(layer, x))
        yield step
        if step.output is None:
            raise RuntimeError(f"layer {layer.name}: the walk needs the layer's output (set step.output)")
        x = step.output


def layer_rows(layer: CompiledLayer, x: np.ndarray) -> np.ndarray:
    """Crossbar input vectors of ``layer`` for its input ``x``: (N, P, rows).

    conv: im2col, row order (c_in, ky, kx) like ``weight.reshape(out, -1)``;
    fc: the flattened (C, H, W) input, one position.
    """
    n = x.shape[0]
    if layer.kind == "fc":
        return x.reshape(n, 1, -1)
    k = layer.kernel
    windows = sliding_window_view(x, (k, k), axis=(2, 3))  # (N, C, Ho, Wo, k, k)
    ho, wo = windows.shape[2], windows.shape[3]
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(n, ho * wo, -1)


def periphery_inputs(layer: CompiledLayer, codes: dict[tuple[int, int], np.ndarray],
                     tune: np.ndarray | None = None) -> dict[tuple[int, int], np.ndarray]:
    """What a layer's periphery receives per beat, from its reads' codes ((plane, row tile) ->
    (M, cols)): the codes themselves, or for a sense layer (one plane, one row tile) each
    comparator's decision ``code >= theta - tune`` (0/1; ``tune``: the layer's tuning offsets
    (cols,), which set the comparators' references with theta)."""
    if not layer.sense:
        return codes
    assert layer.theta is not None  # sense layers are hidden layers
    return {key: comparator_decisions(value, layer.theta, tune) for key, value in codes.items()}


def comparator_decisions(codes: np.ndarray | int, theta: np.ndarray | int,
                         tune: np.ndarray | int | None = None) -> np.ndarray:
    """A sense comparator's decisions (uint8 0/1): ``code >= theta - tune``, i.e. the column
    current against a reference of ``theta - tune - 1/2`` unit currents (arrays broadcast; no
    ``tune``: untuned)."""
    ref = np.asarray(theta, dtype=np.int64) - (0 if tune is None else np.asarray(tune, dtype=np.int64))
    decided: np.ndarray = (np.asarray(codes) >= ref).astype(np.uint8)
    return decided


def layer_output(layer: CompiledLayer, acc: np.ndarray) -> np.ndarray:
    """Turn integer accumulators (N, P, cols) into the layer's output.

    Hidden layers: bits ``(acc >= theta) XOR flip``, max-pooled (= OR), shaped like
    ``layer.out_shape``. Output layer: integer scores ``acc * S + B`` (N, classes).
    """
    n = acc.shape[0]
    if layer.is_output:
        assert layer.score_scale is not None and layer.score_bias is not None  # is_output says so
        scores: np.ndarray = acc[:, 0, :].astype(np.int64) * layer.score_scale + layer.score_bias
        return scores
    assert layer.theta is not None and layer.flip is not None  # hidden layers have both
    bits: np.ndarray = ((acc >= layer.theta) ^ layer.flip.astype(bool)).astype(np.uint8)
    if layer.kind == "fc":
        return bits.reshape(n, -1)
    c = layer.cols
    h, w = layer.conv_hw
    bits = bits.reshape(n, h, w, c).transpose(0, 3, 1, 2)  # (N, C, H, W)
    p = layer.pool
    if p > 1:
        bits = bits.reshape(n, c, h // p, p, w // p, p).max(axis=(3, 5))
    return bits
