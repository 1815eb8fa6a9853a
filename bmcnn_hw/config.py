"""Frozen configuration dataclasses. Units are part of every field name.

Every dataclass round-trips through plain dicts (JSON/TOML) with ``to_dict`` /
``from_dict``; ``from_dict`` rejects unknown fields and wrong types with a
``ConfigError`` naming the field.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Literal, get_args

from .errors import ConfigError
from .tables import check_table, from_table

CellType = Literal["linear", "sinh", "1t1r"]
"""Memristor cell: linear resistor, sinh (nonlinear RRAM I-V), or 1T1R (RRAM + sky130 access transistor)."""
Corner = Literal["tt", "ss", "ff"]
"""sky130 process corner."""
Encoding = Literal["differential", "reference"]
"""Weight encoding: two devices per weight, or one device and a shared reference column."""
InputMode = Literal["unipolar", "bipolar"]
"""Row voltages of a binary input: {0, V_read} or {-V_read, +V_read}."""
Distribution = Literal["normal", "lognormal"]
"""Device-to-device distribution of R."""
SpiceMode = Literal["auto", "superposition", "per-vector"]
SpiceEngine = Literal["auto", "ngspice", "vacask"]
"""``--engine``: a SPICE engine, or ``auto`` (:func:`bmcnn_hw.spice.engines.resolve_engine`)."""
TransientEngine = Literal["auto", "ngspice", "vacask", "linear"]
"""``ppa --engine``: the SPICE engines, or bmcnn-hw's own fixed-step solver of linear-cell tiles
(:mod:`bmcnn_hw.ppa.linear_transient`)."""
"""How :class:`~bmcnn_hw.spice.run.SpiceReader` has ngspice solve a tile's reads (see its docstring)."""


def _check_positive(name: str, value, *, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = "a non-negative" if allow_zero else "a positive"
        raise ConfigError(f"{name} must be {bound} number, not {value!r}")


class _DictMixin:
    """JSON/TOML round-trip for flat frozen dataclasses."""

    def to_dict(self) -> dict:
        """Return the fields as a plain dict."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]  # every subclass is a dataclass

    @classmethod
    def from_dict(cls, data: dict, *, where: str = ""):
        """Build from a dict, naming ``where`` (file or section) in errors.

        Raises:
            ConfigError: on unknown fields, values of the wrong type or invalid values
                (:func:`bmcnn_hw.tables.from_table`).
        """
        return from_table(cls, data, where or cls.__name__)


@dataclass(frozen=True)
class DeviceParams(_DictMixin):
    """Electrical model of the memristors of a crossbar and their read circuit."""

    r_on_ohm: float = 10e3
    """Nominal low-resistance (ON, SET) state."""
    r_off_ohm: float = 100e3
    """Nominal high-resistance (OFF, RESET) state."""
    sigma_on_rel: float = 0.0
    """Relative standard deviation of R_on from device to device (0.1 = 10 %)."""
    sigma_off_rel: float = 0.0
    """Relative standard deviation of R_off from device to device."""
    distribution: Distribution = "normal"
    """Device-to-device distribution of R: "normal" or "lognormal" (same mean and relative sigma)."""
    p_stuck_on: float = 0.0
    """Probability that a device is stuck in the ON state."""
    p_stuck_off: float = 0.0
    """Probability that a device is stuck in the OFF state."""
    v_read_v: float = 0.2
    """Read voltage applied to an active row."""
    read_noise_rel: float = 0.0
    """Relative std of each device's conductance at each read (cycle-to-cycle read noise)."""
    r_wire_ohm: float = 0.0
    """Resistance of one wire segment between adjacent cells, on rows and columns (0 = ideal wires)."""
    r_source_ohm: float = 0.0
    """Output resistance of each row driver (0 = ideal source)."""
    cell: CellType = "linear"
    """Cell model: "linear" (two-state resistor), "sinh" (filamentary RRAM read I-V,
    I = I_s sinh(V / V_0) with I(V_read) = V_read / R) or "1t1r" (a linear resistive device in
    series with a sky130 nMOS access transistor)."""
    sinh_v0_v: float = 0.25
    """V_0 of the sinh read model (V); smaller is more nonlinear. Used when cell = "sinh"."""
    access_w_um: float = 1.0
    """Width of the 1T1R access transistor (um)."""
    access_l_um: float = 0.15
    """Length of the 1T1R access transistor (um; sky130 nfet_01v8 minimum 0.15)."""
    v_wordline_v: float = 1.8
    """Gate (word-line) voltage of the 1T1R access transistors during a read (V)."""
    corner: Corner = "tt"
    """sky130 process corner of the access transistors: "tt", "ss" or "ff"."""
    sigma_vth_v: float = 0.0
    """Std of the access transistor's threshold voltage from cell to cell (V; 1T1R only)."""

    def __post_init__(self):
        _check_positive("r_on_ohm", self.r_on_ohm)
        _check_positive("r_off_ohm", self.r_off_ohm)
        if not self.r_off_ohm > self.r_on_ohm:
            raise ConfigError(f"r_off_ohm ({self.r_off_ohm!r}) must be greater than r_on_ohm ({self.r_on_ohm!r})")
        _check_positive("sigma_on_rel", self.sigma_on_rel, allow_zero=True)
        _check_positive("sigma_off_rel", self.sigma_off_rel, allow_zero=True)
        if self.distribution not in DISTRIBUTIONS:
            raise ConfigError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}, not {self.distribution!r}")
        for name in ("p_stuck_on", "p_stuck_off"):
            value = getattr(self, name)
            _check_positive(name, value, allow_zero=True)
            if value > 1:
                raise ConfigError(f"{name} must be a probability in [0, 1], not {value!r}")
        if self.p_stuck_on + self.p_stuck_off > 1:
            raise ConfigError("p_stuck_on + p_stuck_off must not exceed 1")
        _check_positive("v_read_v", self.v_read_v)
        for name in ("read_noise_rel", "r_wire_ohm", "r_source_ohm"):
            _check_positive(name, getattr(self, name), allow_zero=True)
        self._check_cell()

    def _check_cell(self) -> None:
        if self.cell not in CELL_TYPES:
            raise ConfigError(f"cell must be one of {', '.join(CELL_TYPES)}, not {self.cell!r}")
        _check_positive("sinh_v0_v", self.sinh_v0_v)
        _check_positive("access_w_um", self.access_w_um)
        _check_positive("sigma_vth_v", self.sigma_vth_v, allow_zero=True)
        if not (isinstance(self.access_l_um, (int, float)) and self.access_l_um >= 0.15):
            raise ConfigError("access_l_um must be >= 0.15 (sky130 nfet_01v8 minimum length), "
                              f"not {self.access_l_um!r}")
        wl = self.v_wordline_v
        if not (isinstance(wl, (int, float)) and 0.5 <= wl <= 1.95):
            raise ConfigError(f"v_wordline_v must be in [0.5, 1.95] V (sky130 nfet_01v8 is a 1.8 V device), not {wl!r}")
        if self.corner not in CORNERS:
            raise ConfigError(f"corner must be one of {', '.join(CORNERS)}, not {self.corner!r}")

    @property
    def is_linear_cell(self) -> bool:
        """True for the two-state resistor, whose tiles are linear circuits."""
        return self.cell == "linear"

    @property
    def g_on_s(self) -> float:
        """Nominal ON conductance."""
        return 1.0 / self.r_on_ohm

    @property
    def g_off_s(self) -> float:
        """Nominal OFF conductance."""
        return 1.0 / self.r_off_ohm

    @property
    def unit_current_a(self) -> float:
        """Column current of one unit of dot product, V_read * (G_on - G_off), for two-terminal cells
        (linear, sinh); ``Chip.unit_current_a`` gives it for every cell type, 1T1R included."""
        return self.v_read_v * (self.g_on_s - self.g_off_s)

    @property
    def is_ideal(self) -> bool:
        """True when every device sits exactly at its nominal resistance."""
        return not (self.sigma_on_rel or self.sigma_off_rel or self.p_stuck_on or self.p_stuck_off
                    or (self.cell == "1t1r" and self.sigma_vth_v))

    @property
    def has_parasitics(self) -> bool:
        """True when wire or driver resistance must be solved by nodal analysis."""
        return self.r_wire_ohm > 0 or self.r_source_ohm > 0


CELL_TYPES: tuple[CellType, ...] = get_args(CellType)
CORNERS: tuple[Corner, ...] = get_args(Corner)
ENCODINGS: tuple[Encoding, ...] = get_args(Encoding)
INPUT_MODES: tuple[InputMode, ...] = get_args(InputMode)
DISTRIBUTIONS: tuple[Distribution, ...] = get_args(Distribution)
SPICE_MODES: tuple[SpiceMode, ...] = get_args(SpiceMode)
ENGINE_CHOICES: tuple[SpiceEngine, ...] = get_args(SpiceEngine)
TRANSIENT_ENGINE_CHOICES: tuple[TransientEngine, ...] = get_args(TransientEngine)


@dataclass(frozen=True)
class CrossbarGeometry(_DictMixin):
    """Size of one crossbar tile (in weights) and how weights and inputs are encoded."""

    tile_rows: int = 128
    """Word lines (inputs) per tile."""
    tile_cols: int = 128
    """Weight columns per tile."""
    encoding: Encoding = "differential"
    """"differential": two devices per weight (G+, G-), output I+ - I-; "reference": one device
    per weight and one shared reference column at G_ref = (G_on + G_off) / 2, output I - I_ref."""
    input_mode: InputMode = "unipolar"
    """Binary inputs drive rows at "unipolar" {0, V_read} or "bipolar" {-V_read, +V_read}."""
    fit_tiles: bool = False
    """A layer smaller than a tile gets a tile of its own size (rows and columns no larger than
    the layer's) instead of a padded full tile: fewer devices, TIAs and array area, the same
    reads and codes. False: every tile is tile_rows x tile_cols (earlier releases)."""

    def __post_init__(self):
        if not isinstance(self.fit_tiles, bool):
            raise ConfigError(f"fit_tiles must be true or false, not {self.fit_tiles!r}")
        for name in ("tile_rows", "tile_cols"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, not {value!r}")
        if self.encoding not in ENCODINGS:
            raise ConfigError(f"encoding must be one of {', '.join(ENCODINGS)}, not {self.encoding!r}")
        if self.input_mode not in INPUT_MODES:
            raise ConfigError(f"input_mode must be one of {', '.join(INPUT_MODES)}, not {self.input_mode!r}")

    @property
    def unit_scale(self) -> float:
        """Output current of one unit of dot product, in units of V_read * (G_on - G_off)."""
        return 1.0 if self.encoding == "differential" else 0.5

    def layer_tile(self, rows: int, cols: int) -> tuple[int, int]:
        """The tile shape of a ``rows x cols`` layer: the geometry's, or with ``fit_tiles`` no
        larger than the layer."""
        if not self.fit_tiles:
            return self.tile_rows, self.tile_cols
        return min(self.tile_rows, rows), min(self.tile_cols, cols)

    @classmethod
    def parse(cls, text: str, **fields) -> CrossbarGeometry:
        """Parse ``"RxC"`` (e.g. ``"128x128"``); ``fields`` sets the other fields.

        Raises:
            ConfigError: when the text is not two positive integers joined by 'x'.
        """
        parts = str(text).lower().split("x")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ConfigError(f"tile size must look like RxC with positive integers (e.g. 128x128), not {text!r}")
        return cls(int(parts[0]), int(parts[1]), **fields)


def _names_well_formed(text: object) -> bool:
    """``text`` is empty or comma-separated identifiers (layer names, or ``auto``)."""
    return isinstance(text, str) and (text == "" or all(n.strip().isidentifier() for n in text.split(",")))


def _layer_names(text: str) -> list[str]:
    """The comma-separated names in ``text``, stripped."""
    return [n.strip() for n in text.split(",") if n.strip()]


AdcRange = Literal["rows", "weights", "columns"]
"""What a derived ADC width covers (:attr:`ReadoutParams.adc_range`)."""
ADC_RANGES: tuple[str, ...] = get_args(AdcRange)
"""The values of :data:`AdcRange`."""


@dataclass(frozen=True)
class ReadoutParams(_DictMixin):
    """TIA + ADC that turn a differential column current into a signed code."""

    adc_bits: int = 0
    """ADC resolution in bits; 0 derives the smallest exact width (see ``adc_range``)."""
    adc_range: str = "rows"
    """What a derived width (``adc_bits`` 0) covers: ``rows``, every code a tile's rows could
    produce (+-rows); ``weights``, every code this layer's own weights can produce (per layer, the
    smallest signed width that never clips on an ideal chip); ``columns``, each column's own range
    [-n, p] (at most n -1 and p +1 weights in any of its tiles) in an ADC window of its own: the
    ADC gives the low bits of the code, and the periphery restores the code from them and the
    window (unipolar inputs only)."""
    lsb_units: float = 1.0
    """ADC step in units of dot product (1.0: one code per unit, exact for an ideal chip)."""
    tia_rf_ohm: float = 10e3
    """TIA feedback resistor; the TIA output voltage is -R_f * I."""
    tia_gain: float = 0.0
    """Open-loop gain A of the TIA op-amp; 0 = ideal (infinite). A finite gain puts R_f / (1 + A)
    at the column end and scales the output by A / (1 + A)."""
    t_read_s: float = 10e-9
    """Duration of one read (row drivers on), for read energy = sum(V * I) * t_read."""
    v_swing_v: float = 0.0
    """Output swing of each TIA about its virtual ground (V): the output clips at +-v_swing_v
    (a 1.8 V supply with mid-rail virtual ground gives 0.9 V). 0 = no rails (ideal TIA)."""
    columns_per_adc: int = 1
    """Weight columns that share one ADC through a column multiplexer, converted one after
    another after each read (the TIA outputs hold meanwhile): a divisor of the tile's columns
    (ADCs within a tile), or a multiple of them (one ADC across that many tiles of a layer side
    by side, e.g. 256 on 128-column tiles: a 227 um wide ADC then fits under its columns).
    Costed by ``ppa`` (ADC count and conversion time); codes reach the periphery in the same
    order."""
    skip_zero_reads: bool | str = False
    """A tile read whose input rows are all 0 is not performed: a zero detector (an OR of the
    tile's row inputs) keeps its TIAs unbiased and its ADCs idle and the code register at 0,
    the code every executor gives such a read (no row driven: no current). The read keeps its
    time slot and its beats, so timing and the RTL are unchanged. Unipolar inputs only. True:
    every crossbar layer has detectors; ``auto``: the layers read more than once per image (a
    conv layer's windows, or the bit planes of multi-bit inputs), where all-zero reads happen (a
    binary fc layer reads its whole input once, and a row tile of it is rarely all zero); or
    comma-separated layer names; False: none."""
    sense_layers: str = ""
    """Layers read out by sense amplifiers instead of ADCs: comma-separated layer names, ``auto``
    (every layer that qualifies) or empty (none). A sense layer's comparators decide each
    activation in the analog domain, comparing a column's ``I+ - I-`` with a reference of
    ``theta - tune_offset - 1/2`` unit currents set through the periphery's registers (a
    reference DAC per comparator), so the layer has no ADC and no accumulator. Qualifies: a
    hidden crossbar layer with binary unipolar inputs whose columns fit one row tile."""
    comparator_offset_v: float = 0.0
    """Std of a sense comparator's input-referred offset (V at the TIA output), sampled once per
    column of each chip; 0 = ideal comparators."""
    columns_per_comparator: int = 0
    """Weight columns of a sense layer's tile that share one comparator (and its reference DAC)
    through a column multiplexer, deciding one after another after each read; must divide the
    tile's columns. 0 = ``columns_per_adc``. Costed by ``ppa`` (comparator count and decision
    time); the periphery takes the read's decisions as one word either way."""

    def __post_init__(self):
        if not isinstance(self.adc_bits, int) or isinstance(self.adc_bits, bool) or not 0 <= self.adc_bits <= 32:
            raise ConfigError(f"adc_bits must be an integer in [0, 32] (0 = derive), not {self.adc_bits!r}")
        if self.adc_range not in ADC_RANGES:
            raise ConfigError(f"adc_range must be one of {', '.join(ADC_RANGES)}, not {self.adc_range!r}")
        if self.adc_range == "columns" and self.adc_bits:
            raise ConfigError("adc_range columns sizes the ADC windows itself: leave adc_bits at 0")
        _check_positive("lsb_units", self.lsb_units)
        _check_positive("tia_rf_ohm", self.tia_rf_ohm)
        _check_positive("t_read_s", self.t_read_s)
        _check_positive("tia_gain", self.tia_gain, allow_zero=True)
        _check_positive("v_swing_v", self.v_swing_v, allow_zero=True)
        if not isinstance(self.columns_per_adc, int) or isinstance(self.columns_per_adc, bool) \
                or self.columns_per_adc < 1:
            raise ConfigError(f"columns_per_adc must be a positive integer, not {self.columns_per_adc!r}")
        if not isinstance(self.columns_per_comparator, int) or isinstance(self.columns_per_comparator, bool) \
                or self.columns_per_comparator < 0:
            raise ConfigError("columns_per_comparator must be a whole number (0 = columns_per_adc), not "
                              f"{self.columns_per_comparator!r}")
        self._check_skip()
        self._check_sense()
        if self.v_swing_v and self.tia_gain:
            raise ConfigError("v_swing_v (TIA rails) needs an ideal TIA (tia_gain = 0): a clipped finite-gain "
                              "op-amp loses its virtual ground, which the models do not follow")

    def _check_skip(self) -> None:
        value = self.skip_zero_reads
        if not isinstance(value, bool) and not (_names_well_formed(value) and value.strip()):
            raise ConfigError(f"skip_zero_reads must be true, false, `auto` or layer names separated by commas, "
                              f"not {value!r}")

    def skip_names(self) -> list[str]:
        """The layers ``skip_zero_reads`` names (none when it is true, false or ``auto``)."""
        value = self.skip_zero_reads
        return [] if isinstance(value, bool) or value.strip() == "auto" else _layer_names(value)

    def skips_zero_reads(self, name: str, reads_per_image: int) -> bool:
        """Whether layer ``name``, read ``reads_per_image`` times per image, has zero detectors."""
        value = self.skip_zero_reads
        if isinstance(value, bool):
            return value
        return reads_per_image > 1 if value.strip() == "auto" else name in self.skip_names()

    def _check_sense(self) -> None:
        names = self.sense_layers
        if not _names_well_formed(names):
            raise ConfigError(f"sense_layers must be layer names separated by commas, `auto` or empty, not {names!r}")
        _check_positive("comparator_offset_v", self.comparator_offset_v, allow_zero=True)

    def sense_names(self, eligible: list[str]) -> list[str]:
        """The layers ``sense_layers`` names, given the model's ``eligible`` ones (``auto``: all)."""
        if self.sense_layers.strip() == "auto":
            return list(eligible)
        return _layer_names(self.sense_layers)

    @property
    def clip_current_a(self) -> float:
        """Largest column current the TIA passes unclipped, v_swing / R_f (inf without rails)."""
        return self.v_swing_v / self.tia_rf_ohm if self.v_swing_v else math.inf

    @property
    def tia_input_ohm(self) -> float:
        """Input resistance of the TIA, R_f / (1 + A) (0 for an ideal TIA)."""
        return self.tia_rf_ohm / (1.0 + self.tia_gain) if self.tia_gain else 0.0

    @property
    def tia_gain_factor(self) -> float:
        """Closed-loop gain error A / (1 + A) of the TIA output (1 for an ideal TIA)."""
        return self.tia_gain / (1.0 + self.tia_gain) if self.tia_gain else 1.0

    def resolved_bits(self, tile_rows: int) -> int:
        """ADC bits actually used: ``adc_bits`` or the exact width for ``tile_rows`` binary inputs.

        Codes span [-rows, rows] in both input modes (bipolar codes are 2*dot - colsum).
        """
        return self.adc_bits or rows_code_bits(tile_rows)


def rows_code_bits(rows: int) -> int:
    """Signed bits of every code ``rows`` binary inputs can give, [-rows, rows] (at least 2)."""
    return max(2, math.ceil(math.log2(rows + 1)) + 1)


@dataclass(frozen=True)
class DigitalParams(_DictMixin):
    """The digital MAC engines of fixed-point layers."""

    mac_lanes: int = 0
    """Multiply-accumulate units per digital layer, each on its own output channel; must divide
    the output channels of every digital layer. 0 = one per output channel (fastest)."""
    clock_gating: bool = False
    """Clock-gate every periphery's configuration registers (thresholds, flips, tuning offsets):
    their clock runs only in reset and on a register write, not on every beat."""
    hardwired_thresholds: bool = False
    """Every hidden layer's thresholds and flips (the trained network's folded batch norm) are
    constants in the periphery's logic, read-only registers, instead of flip-flops the host may
    rewrite; ``tune_offset`` stays the per-chip register the tuning method writes. Same results
    for the network it was compiled from; smaller (no storage, write decode or read
    multiplexer for them)."""

    def __post_init__(self):
        if not isinstance(self.mac_lanes, int) or isinstance(self.mac_lanes, bool) or self.mac_lanes < 0:
            raise ConfigError(f"mac_lanes must be a non-negative integer (0 = one per output channel), "
                              f"not {self.mac_lanes!r}")
        for name in ("clock_gating", "hardwired_thresholds"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, not {getattr(self, name)!r}")


def check_converter_share(name: str, share: int, cols: int) -> None:
    """Columns per converter (``name``) must divide a tile's ``cols`` columns or be a multiple of
    them (one converter across tiles side by side); 0 means unset.

    Raises:
        ConfigError: naming ``name``, the value and the legal ones.
    """
    if share and cols % share and share % cols:
        legal = ", ".join(str(d) for d in range(1, cols + 1) if cols % d == 0)
        raise ConfigError(f"{name} {share} neither divides the {cols} columns of a tile nor is a multiple of them; "
                          f"choose one of {legal}, or {2 * cols}, {3 * cols}, ... (one converter across tiles)")


HARDWARE_SECTIONS = ("device", "geometry", "readout", "digital")
"""The sections of a hardware config."""


@dataclass(frozen=True)
class HardwareConfig(_DictMixin):
    """Everything the compiler needs besides the trained network."""

    device: DeviceParams = field(default_factory=DeviceParams)
    geometry: CrossbarGeometry = field(default_factory=CrossbarGeometry)
    readout: ReadoutParams = field(default_factory=ReadoutParams)
    digital: DigitalParams = field(default_factory=DigitalParams)

    def __post_init__(self):
        if self.readout.adc_range == "columns" and self.geometry.input_mode == "bipolar":
            raise ConfigError("adc_range columns needs unipolar inputs (a bipolar column spans +-rows whatever its "
                              "weights); choose adc_range rows or weights")
        if self.readout.skip_zero_reads and self.geometry.input_mode == "bipolar":
            raise ConfigError("skip_zero_reads needs unipolar inputs (a bipolar input 0 drives its row at -V_read, "
                              "so no read is all zero); choose input_mode unipolar or leave skip_zero_reads off")
        for name in ("columns_per_adc", "columns_per_comparator"):
            check_converter_share(name, getattr(self.readout, name), self.geometry.tile_cols)

    def to_dict(self) -> dict:
        """Return nested plain dicts."""
        return {name: getattr(self, name).to_dict() for name in HARDWARE_SECTIONS}

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "") -> HardwareConfig:
        """Build from nested dicts (missing sections take defaults)."""
        check_table(data, dict.fromkeys(HARDWARE_SECTIONS, dict), where or "hardware config")
        return cls(
            device=DeviceParams.from_dict(data.get("device", {}), where=f"{where}[device]"),
            geometry=CrossbarGeometry.from_dict(data.get("geometry", {}), where=f"{where}[geometry]"),
            readout=ReadoutParams.from_dict(data.get("readout", {}), where=f"{where}[readout]"),
            digital=DigitalParams.from_dict(data.get("digital", {}), where=f"{where}[digital]"),
        )
