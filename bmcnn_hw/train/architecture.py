"""Model architectures as data: fixed-point formats, layer specs, the model config.

A model is a list of layers; each layer has a ``precision``:

* ``binary``: weights in {-1, +1}, mapped onto memristor crossbars;
* ``fixed``: signed k-bit fixed-point weights (``weight_format`` ``Qm.n``), computed by
  a digital MAC (no crossbar);
* ``float``: a floating-point baseline (not compilable to hardware).

Fixed-point formats are written ``Qm.n`` (signed two's complement: m integer bits
including the sign bit, n fraction bits, m + n bits in all) or ``UQm.n`` (unsigned).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Literal, get_args

from ..errors import ConfigError
from ..tables import check_table, from_table, schema_of

Precision = Literal["binary", "fixed", "float"]
"""binary (memristive crossbar), fixed (digital k-bit MAC) or float (baseline only)."""
LayerKind = Literal["conv", "fc"]
"""conv (square kernel, stride 1, no padding) or fc."""
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
LAYER_KINDS: tuple[LayerKind, ...] = get_args(LayerKind)
TRAIN_RECIPE = {"epochs": int, "batch_size": int, "lr": float, "augment_shift": int}
"""The keys of a model file's ``[train]`` table and their types."""
TRAIN_RECIPE_KEYS = tuple(TRAIN_RECIPE)


@dataclass(frozen=True)
class FixedFormat:
    """A fixed-point number format: integer codes c with value ``c / 2**frac_bits``."""

    signed: bool
    int_bits: int
    frac_bits: int

    @classmethod
    def parse(cls, text: str, where: str = "format") -> FixedFormat:
        """Parse ``Qm.n`` / ``UQm.n``.

        Raises:
            ConfigError: naming ``where`` when the text is not such a format or has no bits.
        """
        match = re.fullmatch(r"(U?)Q(\d+)\.(\d+)", str(text))
        if not match:
            raise ConfigError(f"{where}: {text!r} is not a fixed-point format like 'Q1.7' or 'UQ0.8'")
        fmt = cls(match.group(1) == "", int(match.group(2)), int(match.group(3)))
        if not 1 <= fmt.bits <= 32 or (fmt.signed and fmt.int_bits < 1):
            raise ConfigError(f"{where}: {text!r} needs 1 to 32 bits (and a sign bit when signed)")
        return fmt

    @property
    def bits(self) -> int:
        """Total width in bits."""
        return self.int_bits + self.frac_bits

    @property
    def code_min(self) -> int:
        """Smallest integer code."""
        return -(2 ** (self.bits - 1)) if self.signed else 0

    @property
    def code_max(self) -> int:
        """Largest integer code."""
        return 2 ** (self.bits - 1) - 1 if self.signed else 2 ** self.bits - 1

    def __str__(self) -> str:
        return f"{'' if self.signed else 'U'}Q{self.int_bits}.{self.frac_bits}"


@dataclass(frozen=True)
class LayerSpec:
    """One layer: ``kind`` "conv" (square kernel, stride 1, no padding) or "fc"."""

    kind: LayerKind
    out: int
    """Output channels (conv) or features (fc)."""
    kernel: int = 0
    """Conv kernel size (ignored for fc)."""
    pool: int = 1
    """Max-pool window and stride after the activation (1 = none)."""
    precision: Precision = "binary"
    """binary (memristive crossbar), fixed (digital k-bit MAC) or float (baseline only)."""
    weight_format: str = ""
    """Fixed-point format of the weights of a ``fixed`` layer, e.g. "Q1.7"."""

    def __post_init__(self):
        if self.kind not in LAYER_KINDS:
            raise ConfigError(f"layer kind must be one of {', '.join(LAYER_KINDS)}, not {self.kind!r}")
        if not isinstance(self.out, int) or self.out < 1:
            raise ConfigError(f"layer out must be a positive integer, not {self.out!r}")
        if self.kind == "conv" and (not isinstance(self.kernel, int) or self.kernel < 1):
            raise ConfigError(f"conv kernel must be a positive integer, not {self.kernel!r}")
        if not isinstance(self.pool, int) or self.pool < 1:
            raise ConfigError(f"pool must be a positive integer, not {self.pool!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if self.precision == "fixed":
            fmt = FixedFormat.parse(self.weight_format, "weight_format")
            if not fmt.signed or fmt.bits > 16:
                raise ConfigError(f"weight_format {self.weight_format!r}: weights need a signed format of <= 16 bits")
        elif self.weight_format:
            raise ConfigError(f"weight_format is only for precision = 'fixed' layers, not {self.precision!r}")

    @property
    def weight_fmt(self) -> FixedFormat | None:
        """The parsed weight format of a fixed layer (None otherwise)."""
        return FixedFormat.parse(self.weight_format) if self.precision == "fixed" else None

    @property
    def weight_code_bound(self) -> int:
        """Largest |integer weight| the layer can hold (1 for binary)."""
        fmt = self.weight_fmt
        return max(-fmt.code_min, fmt.code_max) if fmt else 1


@dataclass(frozen=True)
class ModelConfig:
    """A BMCNN: input format, the layers (the last gives class scores), number formats."""

    name: str = "bmcnn-compact"
    input_shape: tuple = (1, 28, 28)
    input_bits: int = 8
    """Unsigned input width of the first layer: the input format is UQ0.<input_bits> (value
    p / 2**bits). Below 8, the first layer sees each 8-bit pixel's top ``input_bits`` bits
    (1: a binary image, pixel >= 128), read in as many bit planes."""
    layers: tuple = (
        LayerSpec("conv", 32, kernel=5, pool=2),
        LayerSpec("fc", 128),
        LayerSpec("fc", 10),
    )
    score_format: str = "Q8.10"
    """Format of the output layer's per-class scale S and bias B (scores: acc * S + B)."""
    accumulator_bits: int = 24
    """Signed width every integer accumulator must fit (also keeps float32 training exact)."""
    bn_eps: float = 1e-5
    description: str = ""
    train: dict = field(default_factory=dict)
    """The training recipe this model ships with (``[train]`` table): defaults of
    ``bmcnn-hw train`` for epochs, batch_size, lr and augment_shift."""

    def __post_init__(self):
        if not self.layers:
            raise ConfigError("model needs at least one layer")
        if not 1 <= self.input_bits <= 16:
            raise ConfigError(f"input_bits must be in [1, 16], not {self.input_bits!r}")
        if self.layers[-1].pool != 1 or self.layers[-1].kind != "fc":
            raise ConfigError("the last layer must be an fc layer without pooling (it gives class scores)")
        precisions = {spec.precision for spec in self.layers}
        if "float" in precisions and precisions != {"float"}:
            raise ConfigError("precision: a float baseline must have every layer float (mixing is not supported)")
        FixedFormat.parse(self.score_format, "score_format")
        check_table(self.train, TRAIN_RECIPE, "[train]")
        if not 8 <= self.accumulator_bits <= 48:
            raise ConfigError(f"accumulator_bits must be in [8, 48], not {self.accumulator_bits!r}")
        self.shapes()  # raises on sizes that do not fit
        self._check_accumulators()

    @property
    def is_float(self) -> bool:
        """True for the floating-point baseline (not compilable)."""
        return self.layers[0].precision == "float"

    @property
    def score_frac_bits(self) -> int:
        """Fraction bits of the output layer's fixed-point scale and bias."""
        return FixedFormat.parse(self.score_format).frac_bits

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
                _, h, w = shape
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
        """Weights per output (crossbar rows for binary layers) of every layer."""
        fans = []
        for spec, shape in zip(self.layers, self.shapes()[:-1], strict=True):
            fans.append(shape[0] * spec.kernel ** 2 if spec.kind == "conv" else math.prod(shape))
        return fans

    def input_code_max(self, index: int) -> int:
        """Largest input value of layer ``index``: pixels for the first, bits after."""
        return 2 ** self.input_bits - 1 if index == 0 else 1

    def accumulator_peak(self, index: int) -> int:
        """Largest |integer accumulator| of layer ``index`` over every input."""
        return self.fan_ins()[index] * self.input_code_max(index) * self.layers[index].weight_code_bound

    def _check_accumulators(self) -> None:
        if self.is_float:
            return
        limit = 2 ** (self.accumulator_bits - 1) - 1
        for i, spec in enumerate(self.layers):
            peak = self.accumulator_peak(i)
            if peak > limit:
                field = f"layers[{i}].weight_format {spec.weight_format!r}" if spec.weight_format else f"layers[{i}]"
                raise ConfigError(f"{field}: accumulator reaches +-{peak}, over the {self.accumulator_bits}-bit "
                                  f"accumulator (accumulator_bits); use fewer weight bits or a wider accumulator")

    def parameter_count(self) -> int:
        """Trainable weights (not counting batch-norm and score parameters)."""
        return sum(fan * spec.out for fan, spec in zip(self.fan_ins(), self.layers, strict=True))

    def crossbar_tiles(self, tile_rows: int = 128, tile_cols: int = 128) -> list[int]:
        """Crossbar tiles per layer (0 for digital and float layers)."""
        return [math.ceil(fan / tile_rows) * math.ceil(spec.out / tile_cols) if spec.precision == "binary" else 0
                for fan, spec in zip(self.fan_ins(), self.layers, strict=True)]

    def to_dict(self) -> dict:
        """Plain-dict form (JSON)."""
        d = dataclasses.asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d

    @classmethod
    def from_dict(cls, data: dict, where: str = "model config") -> ModelConfig:
        """Build from the plain-dict form (also a parsed TOML model file).

        Raises:
            ConfigError: naming ``where`` on unknown fields or invalid sizes and formats.
        """
        schema = schema_of(cls) | {"score_frac_bits": int}  # checkpoints written before score_format existed
        data = check_table(data, schema, where, required=("layers",))
        if "score_frac_bits" in data:
            data["score_format"] = f"Q8.{data.pop('score_frac_bits')}"
        layers = tuple(from_table(LayerSpec, spec, f"{where}: layers[{k}]")
                       for k, spec in enumerate(data.pop("layers")))
        shape = tuple(data.pop("input_shape", (1, 28, 28)))
        try:
            return cls(layers=layers, input_shape=shape, **data)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
