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
from .to_crossbar import PassContext

GRID_LIMIT = 1 << 16
"""Accumulator ranges up to this many integers are folded on the full grid (and checked
for monotonicity everywhere); wider ones (digital fixed-point layers) by bisection."""


def _active(norm, acc: torch.Tensor) -> np.ndarray:
    """Activation of every channel for integer accumulators ``acc`` (points, channels)."""
    with torch.no_grad():
        return (norm.eval_preactivation(acc.to(torch.float64)) >= 0).numpy()


def _first_true(predicate, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per channel, the smallest a in [lo, hi) with predicate true (hi when none), for
    a predicate that is false then true along a (monotone)."""
    lo, hi = lo.copy(), hi.copy()
    while np.any(lo < hi):
        mid = (lo + hi) // 2
        true = predicate(mid)
        hi = np.where((lo < hi) & true, mid, hi)
        lo = np.where((lo < hi) & ~true, mid + 1, lo)
    return lo


def fold_threshold(norm, acc_min: int, acc_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer ``theta`` (int64) and ``flip`` (uint8) per channel for a ThresholdBN.

    Raises:
        ArtefactError: if the activation is not monotone over the range (cannot happen
            for finite parameters; guards against NaN in a corrupt checkpoint).
    """
    channels = norm.weight.numel()
    decreasing = (norm.weight.detach().double() < 0).numpy()
    flip = decreasing.astype(np.uint8)
    if acc_max - acc_min + 1 > GRID_LIMIT:
        # active(a) XOR decreasing switches from false to true at theta.
        def switched(points: np.ndarray) -> np.ndarray:
            return _active(norm, torch.from_numpy(points)[None, :])[0] ^ decreasing

        lo = np.full(channels, acc_min, dtype=np.int64)
        theta = _first_true(switched, lo, np.full(channels, acc_max + 1, dtype=np.int64))
        _check_switch(norm, theta, acc_min, acc_max, decreasing)
        return theta, flip
    grid = torch.arange(acc_min, acc_max + 1, dtype=torch.float64)
    active = _active(norm, grid[:, None].expand(-1, channels))
    count = active.sum(axis=0)
    theta = np.where(decreasing, acc_min + count, acc_max + 1 - count).astype(np.int64)
    rebuilt = (grid.numpy()[:, None] >= theta[None, :]) ^ flip.astype(bool)[None, :]
    if not np.array_equal(rebuilt, active):
        bad = int(np.argmax((rebuilt != active).any(axis=0)))
        raise ArtefactError(f"channel {bad}: batch-norm activation is not monotone (NaN in the checkpoint?)")
    return theta, flip


def _check_switch(norm, theta: np.ndarray, acc_min: int, acc_max: int, decreasing: np.ndarray) -> None:
    """The folded activation equals the BN one at both ends and on both sides of theta."""
    points = np.stack([np.full_like(theta, acc_min), np.clip(theta - 1, acc_min, acc_max),
                       np.clip(theta, acc_min, acc_max), np.full_like(theta, acc_max)])
    active = _active(norm, torch.from_numpy(points))
    rebuilt = (points >= theta[None, :]) ^ decreasing[None, :]
    if not np.array_equal(rebuilt, active):
        bad = int(np.argmax((rebuilt != active).any(axis=0)))
        raise ArtefactError(f"channel {bad}: batch-norm activation is not monotone (NaN in the checkpoint?)")


def fold_bn(model: CompiledModel, ctx: PassContext) -> CompiledModel:
    """Pass: attach theta/flip to hidden layers and integer S/B to the output layer, from the
    norms and head of ``ctx.network``."""
    torch_model = ctx.network
    for i, norm in enumerate(torch_model.norms):
        layer = model.layers[i]
        theta, flip = fold_threshold(norm, layer.acc_min, layer.acc_max)
        model = model.replace_layer(i, theta=theta, flip=flip)
    scale, bias = (t.numpy() for t in torch_model.head.integer_params())
    return model.replace_layer(len(model.layers) - 1, score_scale=scale.astype(np.int64),
                               score_bias=bias.astype(np.int64))
