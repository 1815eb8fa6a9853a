"""Pass: lay every trained layer out as a weight matrix (im2col order for conv): crossbar
+-1 for binary layers, integer codes for digital fixed-point layers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..artefact import CompiledLayer, CompiledModel, pixel_shift
from ..config import HardwareConfig
from ..errors import ArtefactError, ConfigError


def conv_weight_to_matrix(weight: np.ndarray) -> np.ndarray:
    """(C_out, C_in, kh, kw) -> (C_in*kh*kw, C_out); rows in (c_in, ky, kx) order."""
    return weight.reshape(weight.shape[0], -1).T


def accumulator_range(fan_in: int, input_bits: int, weight_bound: int = 1) -> tuple[int, int]:
    """Bounds of ``sum(w * x)`` for |w| <= ``weight_bound`` and unsigned ``input_bits``-bit x."""
    peak = (2 ** input_bits - 1) * fan_in * weight_bound
    return -peak, peak


def _weight_matrix(index: int, spec, w: np.ndarray) -> np.ndarray:
    """Crossbar-order integer matrix of one layer, checked against its precision."""
    if spec.precision == "binary" and not np.isin(w, (-1.0, 1.0)).all():
        raise ArtefactError(f"layer {index}: binarized weights must be -1 or +1")
    if spec.precision == "fixed" and not np.array_equal(w, np.rint(w)):
        raise ArtefactError(f"layer {index}: fixed-point weight codes must be integers")
    matrix = conv_weight_to_matrix(w) if spec.kind == "conv" else w.T
    return np.ascontiguousarray(matrix, dtype=np.int8 if spec.precision == "binary" else np.int16)


@dataclass(frozen=True)
class PassContext:
    """What a compiler pass reads besides the model: the hardware target and the trained network
    (a BMCNN in eval mode) that ``to_crossbar`` lowers and ``fold_bn`` takes the norms of, and the
    integer thresholds an imported checkpoint carries (``thresholds.json``; ``set_thresholds``)."""

    hardware: HardwareConfig
    network: Any = None
    thresholds: Any = None


def empty_model(hardware: HardwareConfig) -> CompiledModel:
    """The model the pipeline starts from: no layers yet, the target hardware."""
    return CompiledModel((), hardware, {}, 0)


def to_crossbar(model: CompiledModel, ctx: PassContext) -> CompiledModel:
    """Pass: lower ``ctx.network`` into ``model`` (an :func:`empty_model`): the CompiledModel
    skeleton (weights, shapes, ranges) for ``ctx.hardware``.

    Binary layers become crossbar matrices of +-1; fixed-point layers become digital
    layers holding their integer weight codes.

    Raises:
        ConfigError: for the float baseline (it has no hardware form).
        ArtefactError: when a binarized weight is not exactly -1 or +1, or ``model`` has layers already.
    """
    if model.layers:
        raise ArtefactError("to_crossbar: lowers a network into an empty model; this one has layers already")
    torch_model, hardware = ctx.network, ctx.hardware
    config = torch_model.config
    if config.is_float:
        raise ConfigError(f"model {config.name!r} is a float baseline: only binary and fixed-point "
                          f"layers compile to hardware")
    shapes = config.shapes()
    layers = []
    for i, (spec, w) in enumerate(zip(config.layers, torch_model.binary_weights(), strict=True)):
        matrix = _weight_matrix(i, spec, w.numpy())
        input_bits = config.input_bits if i == 0 else 1
        acc_min, acc_max = accumulator_range(matrix.shape[0], input_bits, spec.weight_code_bound)
        digital = spec.precision == "fixed"
        layers.append(CompiledLayer(
            name=f"{spec.kind}{i}", kind=spec.kind, in_shape=tuple(shapes[i]), out_shape=tuple(shapes[i + 1]),
            kernel=spec.kernel if spec.kind == "conv" else 0, pool=spec.pool, input_bits=input_bits,
            weight=matrix, acc_min=acc_min, acc_max=acc_max, digital=digital,
            weight_bits=spec.weight_fmt.bits if digital else 1, input_shift=pixel_shift(input_bits) if i == 0 else 0))
    return CompiledModel(tuple(layers), hardware, config.to_dict(), config.score_frac_bits)
