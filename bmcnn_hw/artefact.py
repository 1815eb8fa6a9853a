"""The CompiledModel: the one artefact that every back end executes.

On disk a build directory holds ``manifest.json`` (schema name and version, the
model, hardware and per-layer metadata, the SHA-256 of every file) and
``arrays.npz`` (int8 +-1 weights in crossbar order, integer thresholds, flips,
fixed-point score parameters).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import math
import zipfile
import zlib
from collections.abc import Container
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import HardwareConfig
from .errors import ArtefactError, BmcnnError, ConfigError
from .io_utils import sha256_file, write_atomic_bytes, write_json_atomic

SCHEMA = "bmcnn-hw/compiled-model"
SCHEMA_VERSION = 1
PIXEL_BITS = 8
"""Width of the dataset's pixels (MNIST: uint8)."""


def pixel_shift(input_bits: int) -> int:
    """Right shift that turns a ``PIXEL_BITS``-bit pixel into the first layer's input: a model with
    ``input_bits`` < 8 sees the pixel's ``input_bits`` most significant bits (1 bit: pixel >= 128)."""
    return max(0, PIXEL_BITS - input_bits)


@dataclass(frozen=True)
class Tiling:
    """How a layer's (rows x cols) weight matrix is cut into crossbar tiles."""

    tile_rows: int
    tile_cols: int
    n_row_tiles: int
    n_col_tiles: int
    pad_rows: int
    """Unused rows in the last row tile (devices left at G_off on both sides)."""
    pad_cols: int
    """Unused weight columns in the last column tile."""

    def row_range(self, rt: int, rows: int) -> tuple[int, int]:
        """Weight-matrix rows [start, stop) held by row tile ``rt``."""
        return rt * self.tile_rows, min((rt + 1) * self.tile_rows, rows)

    def col_range(self, ct: int, cols: int) -> tuple[int, int]:
        """Weight-matrix columns [start, stop) held by column tile ``ct``."""
        return ct * self.tile_cols, min((ct + 1) * self.tile_cols, cols)


def tile_sign_counts(weight: np.ndarray, tile_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(row tiles, cols) counts of +1 and of -1 weights of each column in each row tile of
    ``weight`` (rows, cols); padding rows carry no weight and count nothing."""
    blocks = [weight[start:start + tile_rows] for start in range(0, weight.shape[0], tile_rows)]
    plus = np.stack([(b > 0).sum(axis=0, dtype=np.int64) for b in blocks])
    minus = np.stack([(b < 0).sum(axis=0, dtype=np.int64) for b in blocks])
    return plus, minus


@dataclass(frozen=True)
class CompiledLayer:
    """One memristive layer in crossbar form.

    ``weight`` is (rows, cols) int8 in {-1, +1}; for conv, rows are in im2col order
    (c_in, ky, kx) and cols are output channels. Hidden layers have ``theta``/``flip``
    (``a = (acc >= theta) XOR flip``); the output layer has ``score_scale``/``score_bias``
    (``score = acc * S + B``, fixed point with ``score_frac_bits`` fraction bits).
    """

    name: str
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    kernel: int
    pool: int
    input_bits: int
    weight: np.ndarray
    acc_min: int
    acc_max: int
    theta: np.ndarray | None = None
    flip: np.ndarray | None = None
    score_scale: np.ndarray | None = None
    score_bias: np.ndarray | None = None
    tiling: Tiling | None = None
    adc_bits: int = 0
    bipolar: bool = False
    """Rows are driven at {-V, +V}: ADC codes are 2 dot - colsum, corrected digitally."""
    adc_window: bool = False
    """Each column's ADC covers its own window of 2**adc_bits codes from :attr:`adc_low` and
    gives the code's ``adc_bits`` low bits (two's complement); the periphery restores the code
    from them and the window (code 0 stays 0, so an idle read toggles nothing)."""
    digital: bool = False
    """A fixed-point layer computed by a digital MAC (no crossbar, no tiling, no ADC)."""
    weight_bits: int = 1
    """Width of the signed weight codes of a digital layer (1: binary +-1)."""
    mac_lanes: int = 0
    """MAC units of a digital layer's engine, each on its own output channel (divides ``cols``;
    0 for crossbar layers)."""
    clock_gating: bool = False
    """The periphery's configuration registers (theta, flip, tune_offset) sit behind a clock
    gate that opens only for reset and register writes, instead of being clocked every beat."""
    hardwired_thresholds: bool = False
    """A hidden layer's ``theta`` and ``flip`` are constants in its periphery's logic (read-only
    registers holding this layer's values) instead of rewritable flip-flops."""
    input_shift: int = 0
    """Right shift of the network's 8-bit pixels before this layer reads them: on the first layer
    of a model of fewer than 8 input bits (:func:`pixel_shift`), so it sees the pixels' top
    ``input_bits`` bits; 0 everywhere else (and in builds made before it existed)."""
    sense: bool = False
    """Read out by sense amplifiers (``ReadoutParams.sense_layers``): per column a comparator
    decides ``code + tune_offset >= theta`` against a reference set from the periphery's
    registers, and the periphery receives that decision, one beat per output, instead of an ADC
    code. ``adc_bits`` is then the width of the comparator's reference DAC."""

    @property
    def rows(self) -> int:
        """Crossbar rows (fan-in)."""
        return int(self.weight.shape[0])

    @property
    def cols(self) -> int:
        """Weight columns (outputs per position)."""
        return int(self.weight.shape[1])

    @property
    def conv_hw(self) -> tuple[int, int]:
        """(H, W) of a conv layer's output positions before pooling (valid convolution)."""
        return self.in_shape[1] - self.kernel + 1, self.in_shape[2] - self.kernel + 1

    @property
    def reads_per_image(self) -> int:
        """Reads of a crossbar layer per image: one per output position (a conv layer's
        positions before pooling) and input bit plane."""
        positions = math.prod(self.conv_hw) if self.kind == "conv" else 1
        return positions * self.input_bits

    @property
    def is_output(self) -> bool:
        """True for the score layer."""
        return self.score_scale is not None

    @functools.cached_property
    def adc_low(self) -> np.ndarray:
        """(cols,) lowest code of each column's ADC window (:attr:`adc_window`), shared by its row
        tiles. A column with at most p +1 and n -1 weights in any of its tiles reads [-n, p] with
        inputs in {0, 1}; the window of 2**adc_bits codes holds that with the slack split evenly."""
        assert self.tiling is not None  # memristive layers are tiled
        plus, minus = (counts.max(axis=0) for counts in tile_sign_counts(self.weight, self.tiling.tile_rows))
        low: np.ndarray = -minus - (2 ** self.adc_bits - (plus + minus + 1)) // 2
        return low

    @property
    def code_peak(self) -> int:
        """Largest |code| a beat adds: 2**(adc_bits-1), or for windowed ADCs the farthest end of a
        column's window from 0."""
        if not self.adc_window:
            peak: int = 2 ** max(self.adc_bits - 1, 0)
            return peak
        return int(max(-self.adc_low.min(), (self.adc_low + 2 ** self.adc_bits - 1).max()))

    @property
    def acc_bound(self) -> int:
        """Largest |value| the accumulator can ever hold.

        Covers the exact range [acc_min, acc_max + 1] (thresholds included) and any
        sequence of ADC codes, even clipped ones from a chip with variation: at most
        :attr:`code_peak` per read, shifted by up to input_bits-1, over all row tiles.
        """
        if self.digital:
            return max(-self.acc_min, self.acc_max + 1)
        adc_peak: int = self.code_peak * (2 ** self.input_bits - 1)
        n_row_tiles = self.tiling.n_row_tiles if self.tiling else 1
        bound = max(-self.acc_min, self.acc_max + 1, adc_peak * n_row_tiles)
        # Bipolar: the running sum holds codes plus column-sum offsets (2 dot) before halving.
        return 2 * bound if self.bipolar else bound

    @property
    def acc_width(self) -> int:
        """Bits of a signed accumulator that holds +-``acc_bound`` (never overflows)."""
        return int(self.acc_bound).bit_length() + 1


@dataclass(frozen=True)
class CompiledModel:
    """A BMCNN compiled for crossbars: layers plus the hardware it was compiled for."""

    layers: tuple[CompiledLayer, ...]
    """The :class:`CompiledLayer` of every layer, in order."""
    hardware: HardwareConfig
    model_config: dict[str, Any]
    score_frac_bits: int
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def tile_count(self) -> int:
        """Crossbar tiles of the whole model (digital layers have none)."""
        count = 0
        for layer in self.layers:
            if not layer.digital:
                assert layer.tiling is not None  # memristive layers are tiled
                count += layer.tiling.n_row_tiles * layer.tiling.n_col_tiles
        return count

    @property
    def memristive_layers(self) -> list[int]:
        """Indices of the layers that run on crossbars (the others are digital)."""
        return [i for i, layer in enumerate(self.layers) if not layer.digital]

    def require_all_memristive(self, what: str, missing: str) -> None:
        """Raise ConfigError when a layer is digital (``what`` names the unsupported step,
        ``missing`` what it lacks for digital layers)."""
        digital = [layer.name for layer in self.layers if layer.digital]
        if digital:
            raise ConfigError(f"{what}: layer(s) {', '.join(digital)} are digital fixed-point layers, for which "
                              f"{missing}; use a model whose layers are all binary")

    def skips_zero_reads(self, layer: CompiledLayer) -> bool:
        """Whether ``layer`` has zero detectors (:attr:`~bmcnn_hw.config.ReadoutParams.skip_zero_reads`)."""
        return self.hardware.readout.skips_zero_reads(layer.name, layer.reads_per_image)

    def zero_detect_layers(self) -> list[str]:
        """Names of the crossbar layers with zero detectors (none: the build performs every read)."""
        return [la.name for la in self.layers if not la.digital and self.skips_zero_reads(la)]

    def replace_layer(self, index: int, **changes: Any) -> CompiledModel:
        """A copy with layer ``index`` changed."""
        layers = list(self.layers)
        layers[index] = dataclasses.replace(layers[index], **changes)
        return dataclasses.replace(self, layers=tuple(layers))


_ARRAY_FIELDS = ("weight", "theta", "flip", "score_scale", "score_bias")


def _layer_meta(layer: CompiledLayer) -> dict[str, Any]:
    meta = {f.name: getattr(layer, f.name) for f in dataclasses.fields(layer) if f.name not in _ARRAY_FIELDS}
    meta["in_shape"], meta["out_shape"] = list(layer.in_shape), list(layer.out_shape)
    meta["tiling"] = dataclasses.asdict(layer.tiling) if layer.tiling else None
    meta["rows"], meta["cols"], meta["acc_width"] = layer.rows, layer.cols, layer.acc_width
    return meta


def save_model(model: CompiledModel, build_dir: Path, extra_files: dict[str, str] | None = None) -> Path:
    """Write ``arrays.npz`` then ``manifest.json`` (last, so a half-written build never loads).

    Args:
        extra_files: relative path -> SHA-256 of further files of the build to list.
    """
    build_dir = Path(build_dir)
    arrays: dict[str, Any] = {}  # arrays; Any as savez_compressed's **kwds share a name space with allow_pickle
    for i, layer in enumerate(model.layers):
        for name in _ARRAY_FIELDS:
            value = getattr(layer, name)
            if value is not None:
                arrays[f"layer{i}.{name}"] = value
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_atomic_bytes(build_dir / "arrays.npz", buffer.getvalue())
    files = {"arrays.npz": sha256_file(build_dir / "arrays.npz"), **(extra_files or {})}
    manifest = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "model": model.model_config,
        "hardware": model.hardware.to_dict(),
        "score_frac_bits": model.score_frac_bits,
        "provenance": model.provenance,
        "layers": [_layer_meta(layer) for layer in model.layers],
        "files": dict(sorted(files.items())),
    }
    write_json_atomic(build_dir / "manifest.json", manifest)
    return build_dir / "manifest.json"


def record_files(build_dir: Path, files: dict[str, str]) -> None:
    """List rewritten build files (relative path -> SHA-256) in ``manifest.json``."""
    manifest = _read_manifest(Path(build_dir))
    manifest["files"] = dict(sorted({**manifest.get("files", {}), **files}.items()))
    write_json_atomic(Path(build_dir) / "manifest.json", manifest)


def _read_manifest(build_dir: Path) -> dict[str, Any]:
    path = build_dir / "manifest.json"
    if not path.is_file():
        raise ArtefactError(f"{path}: missing (is {build_dir} a build directory from `bmcnn-hw compile`?)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtefactError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        raise ArtefactError(f"{path}: field 'schema' must be {SCHEMA!r}")
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise ArtefactError(f"{path}: schema_version {manifest.get('schema_version')!r} is not supported "
                            f"(this bmcnn-hw reads version {SCHEMA_VERSION}); recompile the checkpoint")
    return manifest


def verify_files(build_dir: Path, manifest: dict[str, Any], names: Container[str] | None = None) -> None:
    """Check the SHA-256 of the listed build files.

    Raises:
        ArtefactError: naming the first file that is missing or changed.
    """
    for rel, digest in manifest.get("files", {}).items():
        if names is not None and rel not in names:
            continue
        path = build_dir / rel
        if not path.is_file():
            raise ArtefactError(f"{path}: listed in manifest.json but missing")
        if sha256_file(path) != digest:
            raise ArtefactError(f"{path}: SHA-256 differs from manifest.json (file changed or corrupt)")


def verify_netlists(build_dir: Path) -> None:
    """Check that every netlist of a build is the one compile wrote (before ngspice reads them).

    Raises:
        ArtefactError: naming the first netlist that is missing or was edited since.
    """
    _verify_under(build_dir, "netlists/")


def verify_rtl(build_dir: Path) -> None:
    """Check that every Verilog file and register map of a build is the one compile wrote
    (before synthesis reads them).

    Raises:
        ArtefactError: naming the first file that is missing or was edited since.
    """
    _verify_under(build_dir, "rtl/")


def _verify_under(build_dir: Path, prefix: str) -> None:
    manifest = _read_manifest(Path(build_dir))
    names = {rel for rel in manifest.get("files", {}) if rel.startswith(prefix)}
    verify_files(Path(build_dir), manifest, names=names)


def _check_input_shift(build_dir: Path, index: int, shift: Any) -> None:
    """A first layer shifts 8-bit pixels right by 0..7; no other layer shifts its input."""
    legal = range(PIXEL_BITS) if index == 0 else range(1)
    if isinstance(shift, bool) or not isinstance(shift, int) or shift not in legal:
        raise ArtefactError(f"{build_dir / 'manifest.json'}: layers[{index}].input_shift = {shift!r}; expected an "
                            f"integer in [0, {legal.stop - 1}]")


def _check_sense(build_dir: Path, index: int, meta: dict[str, Any], is_output: bool) -> None:
    """A sense layer is a hidden crossbar layer with binary inputs in one row tile."""
    sense = meta.get("sense", False)
    if not isinstance(sense, bool):
        raise ArtefactError(f"{build_dir / 'manifest.json'}: layers[{index}].sense = {sense!r}; expected true or false")
    tiling = meta.get("tiling") or {}
    if sense and (is_output or meta.get("digital") or meta.get("input_bits") != 1 or tiling.get("n_row_tiles") != 1):
        raise ArtefactError(f"{build_dir / 'manifest.json'}: layers[{index}] is marked sense but is not a hidden "
                            "crossbar layer with 1-bit inputs in one row tile")


def _check_weight(build_dir: Path, index: int, weight: np.ndarray | None, meta: dict[str, Any]) -> None:
    where = f"{build_dir / 'arrays.npz'}: layer{index}.weight"
    if weight is None or weight.ndim != 2:
        raise ArtefactError(f"{where} missing or not a matrix")
    if meta.get("digital"):
        bound = 2 ** (int(meta.get("weight_bits", 1)) - 1)
        if weight.dtype.kind != "i" or weight.min(initial=0) < -bound or weight.max(initial=0) >= bound:
            raise ArtefactError(f"{where} must hold signed {meta.get('weight_bits')}-bit integer codes")
    elif weight.dtype != np.int8 or not np.isin(weight, (-1, 1)).all():
        raise ArtefactError(f"{where} must be int8 with values -1 or +1")


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of a build's ``arrays.npz`` (no pickled objects)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ArtefactError(f"{path}: not a readable NumPy .npz archive ({type(exc).__name__}: {exc})") from None


def load_model(build_dir: Path) -> CompiledModel:
    """Load and verify a build directory.

    Raises:
        ArtefactError: for a missing/corrupt manifest or arrays file, a schema
            mismatch, or a hash mismatch.
    """
    build_dir = Path(build_dir)
    manifest = _read_manifest(build_dir)
    verify_files(build_dir, manifest, names={"arrays.npz"})
    arrays = _read_arrays(build_dir / "arrays.npz")
    try:
        layers = []
        for i, meta in enumerate(manifest["layers"]):
            meta = dict(meta)
            for derived in ("rows", "cols", "acc_width"):
                meta.pop(derived)
            tiling = meta.pop("tiling")
            fields: dict[str, Any] = {name: arrays.get(f"layer{i}.{name}") for name in _ARRAY_FIELDS}
            _check_weight(build_dir, i, fields["weight"], meta)
            _check_input_shift(build_dir, i, meta.get("input_shift", 0))
            _check_sense(build_dir, i, {**meta, "tiling": tiling}, fields["theta"] is None)
            meta["in_shape"], meta["out_shape"] = tuple(meta["in_shape"]), tuple(meta["out_shape"])
            layers.append(CompiledLayer(**meta, **fields, tiling=Tiling(**tiling) if tiling else None))
        hardware = HardwareConfig.from_dict(manifest["hardware"], where=str(build_dir / "manifest.json"))
        return CompiledModel(tuple(layers), hardware, manifest["model"], manifest["score_frac_bits"],
                             manifest.get("provenance", {}))
    except BmcnnError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtefactError(f"{build_dir / 'manifest.json'}: malformed layer description ({exc})") from None
