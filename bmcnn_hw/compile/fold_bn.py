"""Pass: fold each hidden layer's batch norm + step into an integer threshold and flip.

The trained model computes, in eval mode, ``a = (f(acc) >= 0)`` with ``f`` the
float64 BN formula of :class:`~bmcnn_hw.train.model.ThresholdBN`. ``f`` is a
composition of correctly rounded monotone operations, so ``a`` is monotone in the
integer ``acc``. We evaluate ``f`` itself on every reachable integer and read off
where it switches: the folded ``(acc >= theta) XOR flip`` then equals the trained
model bit for bit, with no tolerance.
"""

from __future__ import annotations

import numpy as np
import torch

from ..artefact import CompiledModel
from ..errors import ArtefactError


def fold_threshold(norm, acc_min: int, acc_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer ``theta`` (int64) and ``flip`` (uint8) per channel for a ThresholdBN.

    Raises:
        ArtefactError: if the activation is not monotone over the range (cannot happen
            for finite parameters; guards against NaN in a corrupt checkpoint).
    """
    grid = torch.arange(acc_min, acc_max + 1, dtype=torch.float64)
    channels = norm.weight.numel()
    with torch.no_grad():
        active = (norm.eval_preactivation(grid[:, None].expand(-1, channels)) >= 0).numpy()
    count = active.sum(axis=0)
    decreasing = (norm.weight.detach().double() < 0).numpy()
    theta = np.where(decreasing, acc_min + count, acc_max + 1 - count).astype(np.int64)
    flip = decreasing.astype(np.uint8)
    rebuilt = (grid.numpy()[:, None] >= theta[None, :]) ^ flip.astype(bool)[None, :]
    if not np.array_equal(rebuilt, active):
        bad = int(np.argmax((rebuilt != active).any(axis=0)))
        raise ArtefactError(f"channel {bad}: batch-norm activation is not monotone (NaN in the checkpoint?)")
    return theta, flip


def fold_bn(model: CompiledModel, torch_model) -> CompiledModel:
    """Attach theta/flip to hidden layers and integer S/B to the output layer."""
    for i, norm in enumerate(torch_model.norms):
        layer = model.layers[i]
        theta, flip = fold_threshold(norm, layer.acc_min, layer.acc_max)
        model = model.replace_layer(i, theta=theta, flip=flip)
    scale, bias = (t.numpy() for t in torch_model.head.integer_params())
    return model.replace_layer(len(model.layers) - 1, score_scale=scale.astype(np.int64),
                               score_bias=bias.astype(np.int64))
