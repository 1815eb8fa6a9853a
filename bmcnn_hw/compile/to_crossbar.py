"""Pass: lay every trained layer out as a crossbar weight matrix (im2col order for conv)."""

from __future__ import annotations

import numpy as np

from ..artefact import CompiledLayer, CompiledModel
from ..config import HardwareConfig
from ..errors import ArtefactError


def conv_weight_to_matrix(weight: np.ndarray) -> np.ndarray:
    """(C_out, C_in, kh, kw) -> (C_in*kh*kw, C_out); rows in (c_in, ky, kx) order."""
    return weight.reshape(weight.shape[0], -1).T


def accumulator_range(fan_in: int, input_bits: int) -> tuple[int, int]:
    """Bounds of ``sum(w * x)`` for w in {-1, +1} and unsigned ``input_bits``-bit x."""
    peak = (2 ** input_bits - 1) * fan_in
    return -peak, peak


def to_crossbar(torch_model, hardware: HardwareConfig) -> CompiledModel:
    """Build the CompiledModel skeleton (weights, shapes, ranges) from a trained BMCNN.

    Raises:
        ArtefactError: when a binarized weight is not exactly -1 or +1.
    """
    config = torch_model.config
    shapes = config.shapes()
    layers = []
    for i, (spec, w) in enumerate(zip(config.layers, torch_model.binary_weights())):
        w = w.numpy()
        if not np.isin(w, (-1.0, 1.0)).all():
            raise ArtefactError(f"layer {i}: binarized weights must be -1 or +1")
        matrix = conv_weight_to_matrix(w) if spec.kind == "conv" else w.T
        input_bits = config.input_bits if i == 0 else 1
        acc_min, acc_max = accumulator_range(matrix.shape[0], input_bits)
        layers.append(CompiledLayer(
            name=f"{spec.kind}{i}", kind=spec.kind, in_shape=tuple(shapes[i]), out_shape=tuple(shapes[i + 1]),
            kernel=spec.kernel if spec.kind == "conv" else 0, pool=spec.pool, input_bits=input_bits,
            weight=np.ascontiguousarray(matrix, dtype=np.int8), acc_min=acc_min, acc_max=acc_max))
    return CompiledModel(tuple(layers), hardware, config.to_dict(), config.score_frac_bits)
