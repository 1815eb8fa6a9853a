"""Straight-through estimators for binary weights, {0,1} activations and fixed point."""

from __future__ import annotations

import torch


class _SignSTE(torch.autograd.Function):
    """w -> +1 if w >= 0 else -1; gradient passes where |w| <= 1 (hard-tanh STE)."""

    @staticmethod
    def forward(ctx, w):
        ctx.save_for_backward(w)
        return torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))

    @staticmethod
    def backward(ctx, grad):
        (w,) = ctx.saved_tensors
        return grad * (w.abs() <= 1).to(grad.dtype)


class _StepSTE(torch.autograd.Function):
    """y -> 1 if y >= 0 else 0 (the hardware's {0, V_read} drive); STE on |y| <= 1."""

    @staticmethod
    def forward(ctx, y):
        ctx.save_for_backward(y)
        return (y >= 0).to(y.dtype)

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (y.abs() <= 1).to(grad.dtype)


class _RoundSTE(torch.autograd.Function):
    """Round to nearest integer (half away from zero is not needed: ties are measure-zero)."""

    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


def binarize(w: torch.Tensor) -> torch.Tensor:
    """Binary weights in {-1, +1} (0 maps to +1), straight-through gradient."""
    return _SignSTE.apply(w)


def step(y: torch.Tensor) -> torch.Tensor:
    """Binary activation in {0, 1}: ``y >= 0``, straight-through gradient."""
    return _StepSTE.apply(y)


def quantize_fixed(x: torch.Tensor, frac_bits: int) -> torch.Tensor:
    """Integer code of ``x`` in a fixed-point format with ``frac_bits`` fraction bits (STE)."""
    return _RoundSTE.apply(x * (2 ** frac_bits))
