"""The BMCNN model family, described as data (``ModelConfig``) and built as a torch module.

Hardware semantics every layer follows (and the golden model reproduces):

* binary weights w in {-1, +1} (memristive), or fixed-point weight codes (digital);
  activations in {0, 1} (rows driven at 0 or V_read);
* the first layer takes unsigned ``input_bits``-bit pixels p (fixed point UQ0.8: value
  p / 256; the integer accumulator is in units of that LSB); a model of fewer input bits
  sees the 8-bit pixel's top ``input_bits`` bits (``pixel >> (8 - input_bits)``);
* hidden layers: ``a = step(BN(acc))``, evaluated in float64 in eval mode so that the
  compiler can fold it into an exact integer threshold;
* the output layer: integer scores ``acc * S + B`` with fixed-point S, B
  (``score_format``), trained with a rounding STE.

The architectures themselves are data: :mod:`bmcnn_hw.train.architecture`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..artefact import pixel_shift
from .architecture import FixedFormat, LayerSpec, ModelConfig
from .binarize import binarize, quantize_fixed, step

__all__ = ["BMCNN", "LayerSpec", "ModelConfig", "ScoreHead", "ThresholdBN"]


class ThresholdBN(nn.Module):
    """Batch norm followed by the {0,1} step; eval mode computes BN in float64.

    Eval formula (the compiler folds exactly this function):
    ``y = (acc - running_mean) * (weight / sqrt(running_var + eps)) + bias``.
    """

    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, channels: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels, dtype=torch.float64))
        self.register_buffer("running_var", torch.ones(channels, dtype=torch.float64))
        self.eps = eps
        self.momentum = 0.1

    def eval_preactivation(self, acc: torch.Tensor, channel_dim: int = 1) -> torch.Tensor:
        """The float64 eval-mode BN output for integer-valued ``acc`` (the folded function)."""
        shape = [1] * acc.dim()
        shape[channel_dim] = -1
        scale = self.weight.detach().double() / torch.sqrt(self.running_var + self.eps)
        centred = acc.double() - self.running_mean.view(shape)
        return centred * scale.view(shape) + self.bias.detach().double().view(shape)

    def forward(self, acc: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return step(self.eval_preactivation(acc)).to(acc.dtype)
        dims = [d for d in range(acc.dim()) if d != 1]
        mean = acc.mean(dim=dims)
        var = acc.var(dim=dims, unbiased=False)
        with torch.no_grad():
            n = acc.numel() // acc.shape[1]
            self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean.double())
            self.running_var.mul_(1 - self.momentum).add_(self.momentum * var.double() * n / max(n - 1, 1))
        shape = [1, -1] + [1] * (acc.dim() - 2)
        y = (acc - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        return step(y * self.weight.view(shape) + self.bias.view(shape))


class ScoreHead(nn.Module):
    """Fixed-point per-class affine of the output layer: ``score = acc * S + B`` (S, B integers).

    S and B are codes of ``fmt`` (clamped to its range); the float returned is
    ``score / 2**frac_bits``, computed in float64 in eval mode (exact).
    """

    def __init__(self, classes: int, fmt: FixedFormat, init_scale: float):
        super().__init__()
        self.fmt = fmt
        self.frac_bits = fmt.frac_bits
        self.scale = nn.Parameter(torch.full((classes,), init_scale))
        self.bias = nn.Parameter(torch.zeros(classes))

    def _codes(self, value: torch.Tensor) -> torch.Tensor:
        return quantize_fixed(value, self.frac_bits).clamp(self.fmt.code_min, self.fmt.code_max)

    def integer_params(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(S, B) as int64 tensors."""
        return self._codes(self.scale.detach()).to(torch.int64), self._codes(self.bias.detach()).to(torch.int64)

    def forward(self, acc: torch.Tensor) -> torch.Tensor:
        s, b = self._codes(self.scale), self._codes(self.bias)
        if self.training:
            return (acc * s + b) / 2 ** self.frac_bits
        return (acc.double() * s.double() + b.double()) / 2 ** self.frac_bits


def fixed_codes(w: torch.Tensor, fmt: FixedFormat) -> torch.Tensor:
    """Integer weight codes of a fixed-point layer (rounding STE, clamped to the format)."""
    return quantize_fixed(w, fmt.frac_bits).clamp(fmt.code_min, fmt.code_max)


def _init_bound(spec: LayerSpec, fan_in: int) -> float:
    """Half-width of the uniform initialisation of a layer's latent weights."""
    return 0.1 if spec.precision == "binary" else 1.0 / math.sqrt(fan_in)


def _float_norm(spec: LayerSpec) -> nn.Module:
    return nn.BatchNorm2d(spec.out) if spec.kind == "conv" else nn.BatchNorm1d(spec.out)


class BMCNN(nn.Module):
    """Binary / fixed-point / float conv and fc layers, built from a :class:`ModelConfig`.

    Binary and fixed layers use integer-valued weights (+-1 or fixed-point codes), so
    every accumulator is an exact integer; hidden activations are {0, 1}. The float
    baseline uses float weights, batch norm and ReLU on pixels scaled to [0, 1].

    ``weight_noise``, when set, is called as ``weight_noise(index, weights)`` on the
    effective weights of each binary (memristive) layer in training mode and returns the
    perturbed weights (variation-aware training).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.weight_noise: Callable[[int, torch.Tensor], torch.Tensor] | None = None
        shapes, fans = config.shapes(), config.fan_ins()
        self.weights = nn.ParameterList()
        self.norms = nn.ModuleList()
        for spec, shape, fan_in in zip(config.layers, shapes[:-1], fans, strict=True):
            size = (spec.out, shape[0], spec.kernel, spec.kernel) if spec.kind == "conv" else (spec.out, fan_in)
            w = torch.empty(size)
            bound = _init_bound(spec, fan_in)
            nn.init.uniform_(w, -bound, bound)
            self.weights.append(nn.Parameter(w))
        for spec in config.layers[:-1]:
            self.norms.append(_float_norm(spec) if config.is_float else ThresholdBN(spec.out, config.bn_eps))
        last = config.layers[-1]
        if config.is_float:
            self.head_bias = nn.Parameter(torch.zeros(last.out))
        else:
            fmt = last.weight_fmt
            typical = _init_bound(last, fans[-1]) * 2 ** fmt.frac_bits if fmt else 1.0
            self.head = ScoreHead(last.out, FixedFormat.parse(config.score_format),
                                  1.0 / (math.sqrt(fans[-1]) * max(1.0, typical)))

    def effective_weight(self, i: int) -> torch.Tensor:
        """Weights layer ``i`` computes with: +-1, fixed-point codes, or float (with STE)."""
        spec, w = self.config.layers[i], self.weights[i]
        if spec.precision == "binary":
            w = binarize(w)
            if self.training and self.weight_noise is not None:
                w = self.weight_noise(i, w)
            return w
        if spec.precision == "fixed":
            return fixed_codes(w, spec.weight_fmt)
        return w

    def binary_weights(self) -> list[torch.Tensor]:
        """Each layer's integer weights: {-1, +1} or fixed-point codes (conv: (out, in, k, k); fc: (out, in))."""
        spec_weights = []
        for spec, w in zip(self.config.layers, self.weights, strict=True):
            w = w.detach()
            spec_weights.append(binarize(w) if spec.precision == "binary" else fixed_codes(w, spec.weight_fmt))
        return spec_weights

    def layer_accumulators(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """Accumulator of layer ``i`` for its input ``x`` (integer-valued unless float)."""
        spec = self.config.layers[i]
        w = self.effective_weight(i)
        if spec.kind == "conv":
            return F.conv2d(x, w)
        return F.linear(x.flatten(1), w)

    def forward(self, x: torch.Tensor, return_activations: bool = False):
        """Scores for uint8-valued pixels ``x`` (N, C, H, W) as float; optionally every layer's output."""
        x = x.float()
        if self.config.is_float:
            x = x / (2 ** self.config.input_bits - 1)
        elif pixel_shift(self.config.input_bits):  # the pixel's top input_bits bits, as the hardware reads them
            x = torch.div(x, 2 ** pixel_shift(self.config.input_bits), rounding_mode="floor")
        activations = []
        for i, spec in enumerate(self.config.layers[:-1]):
            x = self.norms[i](self.layer_accumulators(x, i))
            if self.config.is_float:
                x = F.relu(x)
            if spec.pool > 1:
                x = F.max_pool2d(x, spec.pool)
            activations.append(x)
        acc = self.layer_accumulators(x, len(self.config.layers) - 1)
        scores = acc + self.head_bias if self.config.is_float else self.head(acc)
        return (scores, activations) if return_activations else scores

    def clip_latent_weights(self) -> None:
        """Keep latent weights inside the representable range (BinaryConnect clipping)."""
        with torch.no_grad():
            for spec, w in zip(self.config.layers, self.weights, strict=True):
                if spec.precision == "binary":
                    w.clamp_(-1.0, 1.0)
                elif spec.precision == "fixed":
                    fmt = spec.weight_fmt
                    w.clamp_(fmt.code_min / 2 ** fmt.frac_bits, fmt.code_max / 2 ** fmt.frac_bits)
