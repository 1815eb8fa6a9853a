"""A chip at age t: retention drift, read disturb and wear of its devices after programming.

Every device keeps the resistance ``R0`` it was programmed to (:class:`~bmcnn_hw.golden.chip.Chip`,
t = 0) and then ages deterministically, each device along its own trajectory:

* **retention drift** (conductance relaxation, log-time): for ``t > t0``,
  ``G(t) = G0 + (mu + s * z_d) * ln(t / t0)`` with one standard normal ``z_d`` per device. The
  mean conductance moves by ``mu`` per unit of ln t and the spread broadens by ``s`` per unit
  of ln t: the form and the defaults (mu = -0.089 uS, s = 0.042 uS, t in seconds, the same
  for every conductance level) are IBM aihwkit's ``ReRamCMONoiseModel`` (Falcone et al.,
  HfOx/CMO RRAM), whose sigma(t) = 0.042 ln t + 0.412 uS we take from t0 on (the 0.412 uS at
  t0 is the chip's own programming spread, sampled by ``Chip``). The same device keeps its
  ``z_d`` at every age, so its trajectory is continuous in t.
* **read disturb** (VTEAM, the model of ``spice_models/vteam.lib``): every read applies
  ``V_read`` for ``read_pulse_s``. Above the threshold ``v_off`` the state x (0 = ON, 1 = OFF)
  moves as ``dx/dt = k_off (V/v_off - 1)^a_off (1 - x)``, integrated in closed form over the
  accumulated stress time ``reads_per_s * t * read_pulse_s`` (below ``v_on`` symmetrically
  towards ON). Between the thresholds (the read regime: 0.2 V < 0.5 V by default) nothing
  moves, exactly as in the subcircuit.
* **wear**: each device has a failure time drawn from a Weibull distribution of shape
  ``fail_shape`` scaled so that ``fail_10y`` of the devices have failed at 10 years; from then
  on it is stuck (ON with probability ``fail_on``, else OFF) and stays stuck at every later
  age. Weibull retention-time statistics are the form HfOx retention studies use (Zhang et
  al., IRPS 2011); no published failure fraction was found for the default, so it is 0
  (no wear) unless given.

The per-device draws come from the stream ``default_rng([seed, layer, rt, ct, 2])`` (the chip's
resistances use ``[seed, layer, rt, ct]``), so aging never changes the t = 0 chip of a seed, and
the aged devices feed the physics executor and the netlists alike (one Chip).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..artefact import CompiledModel
from ..errors import ConfigError
from ..tables import from_table
from .chip import MIN_R_FRACTION, Chip, TileDevices, TileKey

AGING_STREAM = 2
"""Last entry of the per-tile seed sequence of the aging draws."""

_UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0, "mo": 30.4375 * 86400.0,
          "y": 365.25 * 86400.0}


def parse_duration(text: str, where: str = "time") -> float:
    """Seconds of ``text`` like ``1s``, ``30min``, ``1h``, ``1d``, ``2w``, ``1mo``, ``10y``, ``1e4`` (s).

    Raises:
        ConfigError: naming ``where`` for an unparsable or negative time.
    """
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-z]*)\s*", str(text))
    if not match or match.group(2) not in ("", *_UNITS):
        if re.fullmatch(r"\s*-.*", str(text)):
            raise ConfigError(f"{where}: {text!r} is negative; an age is a time since programming (>= 0)")
        raise ConfigError(f"{where}: {text!r} is not a time like 1s, 30min, 1h, 1d, 2w, 1mo, 10y or 1e4 "
                          f"(units: {', '.join(_UNITS)})")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def parse_durations(text: str, where: str = "--times") -> list[float]:
    """A comma-separated list of times (:func:`parse_duration`), in seconds, in the given order."""
    parts = [p for p in str(text).split(",") if p.strip()]
    if not parts:
        raise ConfigError(f"{where}: give at least one time, e.g. 1s,1d,1y")
    return [parse_duration(p, where) for p in parts]


def format_duration(seconds: float) -> str:
    """A short label for ``seconds``: the largest unit it is a whole multiple of (1y, 1mo, 1h, ...)."""
    for unit in ("y", "mo", "w", "d", "h", "min"):
        count = seconds / _UNITS[unit]
        if count >= 1 and math.isclose(count, round(count), rel_tol=1e-9):
            return f"{round(count)}{unit}"
    return f"{seconds:g}s"


TEN_YEARS_S = 10 * 365.25 * 86400.0


@dataclass(frozen=True)
class RetentionParams:
    """Parameters of aging (the module doc gives the model and the sources of the defaults)."""

    t0_s: float = 1.0
    """Reference time after programming from which drift is counted (s)."""
    drift_mean_us: float = -0.08900206
    """Mean conductance change per unit of ln(t / t0), in uS (aihwkit ReRamCMONoiseModel)."""
    drift_sd_us: float = 0.04201137
    """Growth of the device-to-device conductance spread per unit of ln(t / t0), in uS (same source)."""
    fail_10y: float = 0.0
    """Fraction of devices failed (stuck) 10 years after programming (0 = no wear)."""
    fail_shape: float = 0.5
    """Weibull shape of the failure time (< 1: early failures dominate)."""
    fail_on: float = 0.5
    """Fraction of failed devices stuck ON (the rest stuck OFF)."""
    read_pulse_s: float = 10e-9
    """Duration of one read pulse (s)."""
    v_on: float = -0.5
    """VTEAM threshold towards ON (V, < 0; spice_models/vteam.lib)."""
    v_off: float = 0.5
    """VTEAM threshold towards OFF (V, > 0)."""
    k_on: float = -1e7
    """VTEAM rate towards ON (1/s, < 0)."""
    k_off: float = 1e7
    """VTEAM rate towards OFF (1/s, > 0)."""
    a_on: float = 3.0
    """VTEAM exponent towards ON."""
    a_off: float = 3.0
    """VTEAM exponent towards OFF."""

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise ConfigError(f"retention.{item.name}: must be a finite number, not {value!r}")
        for name in ("t0_s", "fail_shape", "read_pulse_s", "v_off", "k_off", "a_on", "a_off"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"retention.{name}: must be > 0, not {getattr(self, name)!r}")
        if self.drift_sd_us < 0:
            raise ConfigError(f"retention.drift_sd_us: a spread must be >= 0, not {self.drift_sd_us!r}")
        for name in ("fail_on", "fail_10y"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"retention.{name}: a fraction in [0, 1], not {getattr(self, name)!r}")
        if self.fail_10y == 1:
            raise ConfigError("retention.fail_10y: 1 would fail every device at once; give a fraction below 1")
        if self.v_on >= 0 or self.k_on >= 0:
            raise ConfigError("retention.v_on and retention.k_on: must be < 0 (VTEAM drives towards ON below v_on)")

    def to_dict(self) -> dict[str, float]:
        """Plain-dict form (JSON)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "retention") -> RetentionParams:
        """Build from a table (e.g. a TOML ``[retention]``); unknown keys and values that are not
        numbers are refused by name (:func:`bmcnn_hw.tables.from_table`)."""
        return from_table(cls, data, where)

    def failed_fraction(self, age_s: float) -> float:
        """Expected fraction of failed devices at ``age_s`` (the Weibull CDF)."""
        if self.fail_10y == 0:
            return 0.0
        return float(1.0 - (1.0 - self.fail_10y) ** ((max(age_s, 0.0) / TEN_YEARS_S) ** self.fail_shape))

    def log_age(self, age_s: float) -> float:
        """ln(t / t0), 0 up to t0."""
        return math.log(max(age_s, self.t0_s) / self.t0_s)

    def nominal_conductance(self, g0_s: float, age_s: float) -> float:
        """Mean conductance (S) at ``age_s`` of devices programmed to ``g0_s``."""
        return g0_s + self.drift_mean_us * 1e-6 * self.log_age(age_s)


def load_retention(path: Any) -> RetentionParams:
    """Retention parameters from a TOML file: a ``[retention]`` table (or top-level keys).

    Raises:
        ConfigError: naming the file when it is missing, not TOML, or has unknown or bad keys.
    """
    from pathlib import Path

    from ..io_utils import read_toml

    path = Path(path)
    data = read_toml(path, "retention file")
    return RetentionParams.from_dict(data.get("retention", data), f"{path}: [retention]")


def check_conductance(params: RetentionParams, r_on_ohm: float, r_off_ohm: float, ages_s: list[float]) -> None:
    """Refuse parameters under which the mean conductance of either state leaves (0, inf) or the
    ON state falls to the OFF state's conductance at one of ``ages_s``.

    Raises:
        ConfigError: naming the age and both conductances.
    """
    for age in ages_s:
        g_on = params.nominal_conductance(1.0 / r_on_ohm, age)
        g_off = params.nominal_conductance(1.0 / r_off_ohm, age)
        if not (g_off > 0 and g_on > g_off):
            raise ConfigError(f"retention: at age {format_duration(age)} the mean conductance is {g_on * 1e6:.4g} uS "
                              f"(ON) and {g_off * 1e6:.4g} uS (OFF); drift_mean_us {params.drift_mean_us} drives a "
                              "conductance to or below zero (or ON to OFF): not physical for these devices")


def vteam_state(x0: np.ndarray | float, v: float, stress_s: float, params: RetentionParams) -> np.ndarray:
    """VTEAM state (0 = ON, 1 = OFF) after ``stress_s`` seconds at ``v`` from ``x0``: the closed form of
    ``dx/dt = k_off (v/v_off - 1)^a_off (1 - x)`` above v_off, ``k_on (v/v_on - 1)^a_on x`` below v_on,
    0 between (the equations of ``spice_models/vteam.lib``)."""
    x = np.asarray(x0, dtype=np.float64)
    if stress_s <= 0 or params.v_on <= v <= params.v_off:
        return x
    if v > params.v_off:
        rate = params.k_off * (v / params.v_off - 1.0) ** params.a_off
        return np.asarray(1.0 - (1.0 - x) * math.exp(-rate * stress_s))
    rate = params.k_on * (v / params.v_on - 1.0) ** params.a_on  # < 0
    return np.asarray(x * math.exp(rate * stress_s))


def _disturbed(r: np.ndarray, params: RetentionParams, r_on: float, r_off: float, v_read: float,
               stress_s: float) -> np.ndarray:
    """Resistances after ``stress_s`` seconds of reads at ``v_read``; the state x = (R - R_on) / (R_off - R_on)."""
    if stress_s <= 0 or params.v_on <= v_read <= params.v_off:
        return r
    x = np.clip((r - r_on) / (r_off - r_on), 0.0, 1.0)
    return np.asarray(r + (r_off - r_on) * (vteam_state(x, v_read, stress_s, params) - x))


def _age_devices(r0: np.ndarray, params: RetentionParams, rng: np.random.Generator, age_s: float,
                 disturb: tuple[float, float, float, float]) -> np.ndarray:
    """One device array at ``age_s``; the draws (z, failure time, stuck state) do not depend on age.

    Conductances are floored at 1 % of the OFF conductance (R at most 100 R_off).
    """
    z = rng.standard_normal(r0.shape)
    u_fail = rng.random(r0.shape)
    u_state = rng.random(r0.shape)
    r_on, r_off, v_read, stress = disturb
    log_t = params.log_age(age_s)
    r = r0.copy()
    if log_t > 0:  # up to t0 the programmed resistances stand, bit for bit
        shift = (params.drift_mean_us + params.drift_sd_us * z) * 1e-6 * log_t
        # G = 1/r0 + shift, written so that a zero shift leaves r0 exact; G >= 1 % of G_off
        r = r0 / np.maximum(1.0 + r0 * shift, MIN_R_FRACTION * r0 / r_off)
    r = _disturbed(r, params, r_on, r_off, v_read, stress)
    if params.fail_10y > 0:
        # Weibull failure times with F(10 y) = fail_10y: u <= F(t) <=> failed by t
        failed = u_fail <= params.failed_fraction(age_s)
        r = np.where(failed, np.where(u_state < params.fail_on, r_on, r_off), r)
    floored: np.ndarray = np.maximum(r, MIN_R_FRACTION * r_on)
    return floored


def aged_chip(model: CompiledModel, chip: Chip, age_s: float, params: RetentionParams | None = None,
              reads_per_s: float = 0.0) -> Chip:
    """``chip`` at ``age_s`` seconds after programming (see the module doc); age 0 is ``chip`` itself.

    Raises:
        ConfigError: a negative age or read rate, or parameters that cross the states.
    """
    params = params or RetentionParams()
    if age_s < 0 or not math.isfinite(age_s):
        raise ConfigError(f"age: {age_s!r} s is negative; an age is a time since programming (>= 0)")
    if reads_per_s < 0 or not math.isfinite(reads_per_s):
        raise ConfigError(f"reads per second: {reads_per_s!r} must be >= 0")
    device = chip.params
    check_conductance(params, device.r_on_ohm, device.r_off_ohm, [age_s])
    disturb = (device.r_on_ohm, device.r_off_ohm, device.v_read_v, reads_per_s * age_s * params.read_pulse_s)
    tiles: dict[TileKey, TileDevices] = {}
    for (i, rt, ct), tile in chip.tiles.items():
        rng = np.random.default_rng([chip.seed, i, rt, ct, AGING_STREAM])
        r_plus = _age_devices(tile.r_plus, params, rng, age_s, disturb)
        r_minus = None if tile.r_minus is None else _age_devices(tile.r_minus, params, rng, age_s, disturb)
        tiles[(i, rt, ct)] = dataclasses.replace(tile, r_plus=r_plus, r_minus=r_minus)
    aged = Chip(model, device, chip.seed, transistor_table=chip.transistor_table, devices=tiles)
    aged.age = {"age_s": float(age_s), "reads_per_s": float(reads_per_s), "retention": params.to_dict()}
    return aged
