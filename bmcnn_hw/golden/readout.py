"""The read-out of a tile read: TIA rails, ADC scale and rounding, read noise.

The ADC turns ``I+ - I-`` into a signed code with one step per ``lsb_units`` units of the nominal
unit current (``V_read (G_on - G_off)``, halved for the reference encoding); every read path
(physics, SPICE, the linear maps) goes through :func:`quantize`.
"""

from __future__ import annotations

import numpy as np

from ..config import ReadoutParams
from .chip import Chip, TileKey


def split_columns(i_phys: np.ndarray, encoding: str) -> tuple[np.ndarray, np.ndarray]:
    """Physical column currents (M, P) in layout order -> (i_plus, i_minus), each (M, C)."""
    if encoding == "reference":
        return i_phys[:, :-1], np.repeat(i_phys[:, -1:], i_phys.shape[1] - 1, axis=1)
    return i_phys[:, 0::2], i_phys[:, 1::2]


def tia_clip(i_plus: np.ndarray, i_minus: np.ndarray, readout: ReadoutParams) -> np.ndarray:
    """``I+ - I-`` as the ADC sees it: each TIA output clips at its rails (+-v_swing), i.e. each
    column current at +-``clip_current_a``, before the difference is digitised."""
    if not readout.v_swing_v:
        diff: np.ndarray = i_plus - i_minus
        return diff
    limit = readout.clip_current_a
    clipped: np.ndarray = np.clip(i_plus, -limit, limit) - np.clip(i_minus, -limit, limit)
    return clipped


def adc_scale(unit_current_a: float, readout: ReadoutParams) -> float:
    """ADC codes per ampere of ``I+ - I-``: the TIA output is ``-R_f I A/(1+A)`` and the ADC step
    is the ideal TIA's output for ``lsb_units`` unit currents, so A/(1+A) / (unit * lsb_units)."""
    return readout.tia_gain_factor / (unit_current_a * readout.lsb_units)


def adc_codes(i_diff: np.ndarray, unit_current_a: float, readout: ReadoutParams, bits: int,
              low: np.ndarray | None = None) -> np.ndarray:
    """Signed ADC codes of differential column currents: code = round(I * :func:`adc_scale`),
    clipped to ``bits`` signed bits or (``low`` given, one per column: windowed ADCs) to each
    column's window [low, low + 2**bits - 1]. Pass ``i_diff`` through :func:`tia_clip` first
    when the TIAs have rails. (The reads themselves go through :func:`quantize` directly, which
    also takes a sense layer's comparator offsets.)
    """
    return quantize(i_diff * adc_scale(unit_current_a, readout), bits, low)


def quantize(scaled: np.ndarray, bits: int, low: np.ndarray | None = None) -> np.ndarray:
    """The ADC's rounding of values already in codes (current x :func:`adc_scale`): round to
    nearest (ties to even), clip to ``bits`` signed bits or (``low`` given, one per column) to
    each column's window of 2**bits codes from ``low``. The one rule every read path uses;
    ``scaled`` (float) is overwritten. Pass currents through :func:`tia_clip` first when the TIAs
    have rails."""
    lo, hi = (low, low + (2 ** bits - 1)) if low is not None else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    np.clip(np.rint(scaled, out=scaled), lo, hi, out=scaled)
    return scaled.astype(code_type(bits))


def read_noise(chip: Chip, key: TileKey, volts: np.ndarray, used_cols: int,
               rng: np.random.Generator) -> np.ndarray:
    """Gaussian read noise on ``I+ - I-`` (M, C): each device's conductance varies by ``read_noise_rel``.

    The std of a column current is ``sigma * sqrt(sum_r V_r^2 G_r^2)`` (ideal-wire approximation).
    """
    r_phys, _ = chip.tiles[key].physical(volts.shape[1], used_cols)
    var_plus, var_minus = split_columns((volts ** 2) @ (1.0 / r_phys) ** 2, chip.encoding)
    noise: np.ndarray = chip.params.read_noise_rel * np.sqrt(var_plus + var_minus) * rng.standard_normal(var_plus.shape)
    return noise


def code_type(bits: int) -> type[np.signedinteger]:
    """The integer type of codes of ``bits`` signed bits (what :func:`quantize` gives)."""
    return np.int32 if bits < 32 else np.int64
