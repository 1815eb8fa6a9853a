"""The analog cost model (ADC, TIA, interconnect): a TOML file, every figure with its source."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from ..config import _check_positive
from ..errors import ConfigError
from ..io_utils import read_toml
from ..tables import check_table, schema_of


@dataclass(frozen=True)
class AdcModel:
    """ADC energy, area and conversion rate."""

    fom_walden_j: float
    """Walden figure of merit: energy per conversion step (J); E_conv = FoM * 2^bits."""
    area_um2: float
    sample_rate_hz: float
    source: str

    def energy_per_conversion_j(self, bits: int) -> float:
        """Energy of one conversion at ``bits`` effective bits."""
        return self.fom_walden_j * 2.0 ** bits

    def energy_per_decision_j(self, bits: int) -> float:
        """A sense amplifier's decision against a ``bits``-bit reference, costed as one bit cycle of
        this SAR at that resolution (its comparator and DAC): E_conv / bits."""
        return self.energy_per_conversion_j(bits) / bits

    def decision_time_s(self, bits: int) -> float:
        """Time of one sense decision: one of the SAR's ``bits`` bit cycles, 1 / (sample rate * bits)."""
        return 1.0 / (self.sample_rate_hz * bits)


@dataclass(frozen=True)
class TiaModel:
    """Column readout amplifier: its op-amp (the SPICE macro-model's GBW and gain), the bias that
    GBW costs, and its area."""

    area_um2: float
    gbw_hz: float
    open_loop_gain: float
    supply_v: float
    load_cap_f: float
    """Capacitance the op-amp's input stage drives at its unity-gain frequency (F)."""
    gm_over_id_per_v: float
    """Transconductance efficiency of the input pair (1/V; moderate inversion ~10-20)."""
    supply_branches: float
    """Bias currents drawn from the supply per input-pair branch current (2: a five-transistor
    OTA; about 4: a folded cascode)."""
    source: str

    @property
    def bias_power_w(self) -> float:
        """Supply power of one biased op-amp: branches x (2 pi GBW C_L / (gm/I_D)) x V_supply
        (GBW = gm / (2 pi C_L) of a single-stage OTA)."""
        gm = 2.0 * math.pi * self.gbw_hz * self.load_cap_f
        return self.supply_branches * gm / self.gm_over_id_per_v * self.supply_v


@dataclass(frozen=True)
class ArrayModel:
    """Crossbar interconnect: cell pitch, wire capacitance, driver rise time."""

    cell_pitch_um: float
    wire_cap_f_per_um: float
    driver_rise_s: float
    source: str

    @property
    def segment_cap_f(self) -> float:
        """Capacitance of one wire segment between adjacent cells (F)."""
        return self.cell_pitch_um * self.wire_cap_f_per_um


@dataclass(frozen=True)
class ZeroDetectModel:
    """The zero detector of a build that skips all-zero reads: an OR tree over a row tile's inputs."""

    energy_per_gate_read_j: float
    """Energy of one two-input OR gate per read (a rise and a fall at its load)."""
    area_per_gate_um2: float
    source: str

    def energy_per_read_j(self, rows: int) -> float:
        """Energy of one row tile's detector (``rows - 1`` gates) per read."""
        return max(rows - 1, 0) * self.energy_per_gate_read_j


@dataclass(frozen=True)
class CostModel:
    """The sections of a cost-model TOML file."""

    adc: AdcModel
    tia: TiaModel
    array: ArrayModel
    path: str
    zero_detect: ZeroDetectModel | None = None
    """Optional ``[zero_detect]``: needed only for builds that skip all-zero reads."""

    def sources(self) -> dict[str, str]:
        """Section -> source sentence."""
        found = {"adc": self.adc.source, "tia": self.tia.source, "array": self.array.source}
        return found | ({"zero_detect": self.zero_detect.source} if self.zero_detect else {})

    def require_zero_detect(self) -> ZeroDetectModel:
        """The ``[zero_detect]`` section.

        Raises:
            ConfigError: the file has none (naming it and the section's fields).
        """
        if self.zero_detect is None:
            raise ConfigError(f"{self.path}: no [zero_detect] table, which a build compiled with --skip-zero-reads "
                              f"needs; expected {[f.name for f in fields(ZeroDetectModel)]}")
        return self.zero_detect


def default_cost_model_path() -> Path:
    """The shipped cost model (package data)."""
    return Path(str(resources.files("bmcnn_hw.ppa") / "cost_model.toml"))


_T = TypeVar("_T", AdcModel, TiaModel, ArrayModel, ZeroDetectModel)


def _section(data: dict[str, Any], name: str, cls: type[_T], path: Path) -> _T:
    """Section ``[name]`` as ``cls``: every field given (:func:`bmcnn_hw.tables.check_table`), the
    numbers positive, the source a sentence."""
    if name not in data:
        raise ConfigError(f"{path}: missing [{name}] table")
    where = f"{path}: [{name}]"
    schema = schema_of(cls)
    table = check_table(data[name], schema, where, required=list(schema))
    for key, value in table.items():
        if key == "source":
            if not value.strip():
                raise ConfigError(f"{where}: source must name where the numbers come from")
            continue
        try:
            _check_positive(key, value)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    values: dict[str, Any] = {k: (float(v) if k != "source" else v) for k, v in table.items()}
    return cls(**values)


def load_cost_model(path: Path | None = None) -> CostModel:
    """The cost model in ``path`` (default: the shipped one).

    Raises:
        ConfigError: unreadable TOML, a missing or unknown field, a non-positive number, no source.
    """
    path = Path(path) if path is not None else default_cost_model_path()
    data = read_toml(path, "cost-model file")
    required = (_section(data, "adc", AdcModel, path), _section(data, "tia", TiaModel, path),
                _section(data, "array", ArrayModel, path))
    unknown = sorted(set(data) - {"adc", "tia", "array", "zero_detect"})
    if unknown:
        raise ConfigError(f"{path}: unknown table(s) {unknown}; expected [adc], [tia], [array] and optionally "
                          "[zero_detect]")
    zero_detect = _section(data, "zero_detect", ZeroDetectModel, path) if "zero_detect" in data else None
    return CostModel(*required, str(path), zero_detect)
