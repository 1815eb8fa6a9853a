"""The BMCNN model family, described as data (``ModelConfig``) and built as a torch module.

Hardware semantics every layer follows (and the golden model reproduces):

* binary weights w in {-1, +1}; activations in {0, 1} (rows driven at 0 or V_read);
* the first layer takes unsigned ``input_bits``-bit pixels p (fixed point Q0.8: value
  p / 256; the integer accumulator is in units of that LSB);
* hidden layers: ``a = step(BN(acc))``, evaluated in float64 in eval mode so that the
  compiler can fold it into an exact integer threshold;
* the output layer: integer scores ``acc * S + B`` with fixed-point S, B
  (``score_frac_bits`` fraction bits), trained with a rounding STE.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .binarize import binarize, quantize_fixed, step


@dataclass(frozen=True)
class LayerSpec:
    """One memristive layer: ``kind`` is "conv" (square kernel, stride 1, no padding) or "fc"."""

    kind: str
    out: int
    """Output channels (conv) or features (fc)."""
    kernel: int = 0
    """Conv kernel size (ignored for fc)."""
    pool: int = 1
    """Max-pool window and stride after the activation (1 = none)."""

    def __post_init__(self):
        if self.kind not in ("conv", "fc"):
            raise ConfigError(f"layer kind must be 'conv' or 'fc', not {self.kind!r}")
        if not isinstance(self.out, int) or self.out < 1:
            raise ConfigError(f"layer out must be a positive integer, not {self.out!r}")
        if self.kind == "conv" and (not isinstance(self.kernel, int) or self.kernel < 1):
            raise ConfigError(f"conv kernel must be a positive integer, not {self.kernel!r}")
        if not isinstance(self.pool, int) or self.pool < 1:
            raise ConfigError(f"pool must be a positive integer, not {self.pool!r}")


@dataclass(frozen=True)
class ModelConfig:
    """A BMCNN: input format and the list of memristive layers (the last gives class scores)."""

    name: str = "bmcnn-compact"
    input_shape: tuple = (1, 28, 28)
    input_bits: int = 8
    layers: tuple = (
        LayerSpec("conv", 32, kernel=5, pool=2),
        LayerSpec("fc", 128),
        LayerSpec("fc", 10),
    )
    score_frac_bits: int = 10
    """Fraction bits of the output layer's fixed-point scale and bias."""
    bn_eps: float = 1e-5

    def __post_init__(self):
        if not self.layers:
            raise ConfigError("model needs at least one layer")
        if not 1 <= self.input_bits <= 16:
            raise ConfigError(f"input_bits must be in [1, 16], not {self.input_bits!r}")
        if self.layers[-1].pool != 1 or self.layers[-1].kind != "fc":
            raise ConfigError("the last layer must be an fc layer without pooling (it gives class scores)")
        self.shapes()  # raises on sizes that do not fit

    def shapes(self) -> list[tuple]:
        """Input shape of every layer, then the output shape (C, H, W) or (F,).

        Raises:
            ConfigError: when a kernel does not fit or a pool does not divide its input.
        """
        shape = tuple(self.input_shape)
        shapes = [shape]
        for i, spec in enumerate(self.layers):
            if spec.kind == "conv":
                if len(shape) != 3:
                    raise ConfigError(f"layers[{i}]: conv after fc is not supported")
                c, h, w = shape
                h, w = h - spec.kernel + 1, w - spec.kernel + 1
                if h < 1 or w < 1:
                    raise ConfigError(f"layers[{i}]: kernel {spec.kernel} larger than input {shape[1:]}")
                if h % spec.pool or w % spec.pool:
                    raise ConfigError(f"layers[{i}]: pool {spec.pool} does not divide conv output {h}x{w}")
                shape = (spec.out, h // spec.pool, w // spec.pool)
            else:
                if spec.pool != 1:
                    raise ConfigError(f"layers[{i}]: pooling after fc is not supported")
                shape = (spec.out,)
            shapes.append(shape)
        return shapes

    def fan_ins(self) -> list[int]:
        """Crossbar rows (weights per output) of every layer."""
        fans = []
        for spec, shape in zip(self.layers, self.shapes()):
            fans.append(shape[0] * spec.kernel ** 2 if spec.kind == "conv" else math.prod(shape))
        return fans

    def to_dict(self) -> dict:
        """Plain-dict form (JSON)."""
        d = dataclasses.asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        """Build from the plain-dict form.

        Raises:
            ConfigError: on unknown fields or invalid sizes.
        """
        try:
            data = dict(data)
            layers = tuple(LayerSpec(**spec) for spec in data.pop("layers"))
            shape = tuple(data.pop("input_shape", (1, 28, 28)))
            return cls(layers=layers, input_shape=shape, **data)
        except (TypeError, KeyError) as exc:
            raise ConfigError(f"model config: {exc}") from None


class ThresholdBN(nn.Module):
    """Batch norm followed by the {0,1} step; eval mode computes BN in float64.

    Eval formula (the compiler folds exactly this function):
    ``y = (acc - running_mean) * (weight / sqrt(running_var + eps)) + bias``.
    """

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
        return (acc.double() - self.running_mean.view(shape)) * scale.view(shape) + self.bias.detach().double().view(shape)

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

    The float returned is ``score / 2**frac_bits``, computed in float64 (exact).
    """

    def __init__(self, classes: int, frac_bits: int, fan_in: int):
        super().__init__()
        self.frac_bits = frac_bits
        self.scale = nn.Parameter(torch.full((classes,), 1.0 / math.sqrt(fan_in)))
        self.bias = nn.Parameter(torch.zeros(classes))

    def integer_params(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(S, B) as int64 tensors."""
        s = quantize_fixed(self.scale.detach(), self.frac_bits).to(torch.int64)
        b = quantize_fixed(self.bias.detach(), self.frac_bits).to(torch.int64)
        return s, b

    def forward(self, acc: torch.Tensor) -> torch.Tensor:
        s = quantize_fixed(self.scale, self.frac_bits)
        b = quantize_fixed(self.bias, self.frac_bits)
        if self.training:
            return (acc * s + b) / 2 ** self.frac_bits
        return (acc.double() * s.double() + b.double()) / 2 ** self.frac_bits


class BMCNN(nn.Module):
    """Binary conv/fc layers with {0,1} activations, built from a :class:`ModelConfig`."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        shapes = config.shapes()
        self.weights = nn.ParameterList()
        self.norms = nn.ModuleList()
        for spec, shape, fan_in in zip(config.layers, shapes, config.fan_ins()):
            if spec.kind == "conv":
                w = torch.empty(spec.out, shape[0], spec.kernel, spec.kernel)
            else:
                w = torch.empty(spec.out, fan_in)
            nn.init.uniform_(w, -0.1, 0.1)
            self.weights.append(nn.Parameter(w))
        for spec in config.layers[:-1]:
            self.norms.append(ThresholdBN(spec.out, config.bn_eps))
        self.head = ScoreHead(config.layers[-1].out, config.score_frac_bits, config.fan_ins()[-1])

    def binary_weights(self) -> list[torch.Tensor]:
        """Each layer's weights in {-1, +1} (conv: (out, in, k, k); fc: (out, in))."""
        return [binarize(w.detach()) for w in self.weights]

    def layer_accumulators(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """Integer-valued accumulator of layer ``i`` for its input ``x``."""
        spec = self.config.layers[i]
        w = binarize(self.weights[i])
        if spec.kind == "conv":
            return F.conv2d(x, w)
        return F.linear(x.flatten(1), w)

    def forward(self, x: torch.Tensor, return_activations: bool = False):
        """Scores for uint8-valued pixels ``x`` (N, C, H, W) as float; optionally every layer's bits."""
        x = x.float()
        activations = []
        for i, spec in enumerate(self.config.layers[:-1]):
            x = self.norms[i](self.layer_accumulators(x, i))
            if spec.pool > 1:
                x = F.max_pool2d(x, spec.pool)
            activations.append(x)
        scores = self.head(self.layer_accumulators(x, len(self.config.layers) - 1))
        return (scores, activations) if return_activations else scores

    def clip_latent_weights(self) -> None:
        """Keep latent weights in [-1, 1] (BinaryConnect)."""
        with torch.no_grad():
            for w in self.weights:
                w.clamp_(-1.0, 1.0)
