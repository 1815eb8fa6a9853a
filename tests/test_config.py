"""Config dataclasses and presets: validation and round trips."""

from __future__ import annotations

import json
import re

import pytest

from bmcnn_hw.config import (
    CrossbarGeometry,
    DeviceParams,
    HardwareConfig,
    ReadoutParams,
)
from bmcnn_hw.errors import ConfigError
from bmcnn_hw.presets import PRESETS, get_preset


def test_round_trip_through_json():
    hw = HardwareConfig(DeviceParams(sigma_on_rel=0.1, distribution="lognormal"), CrossbarGeometry(64, 32),
                        ReadoutParams(adc_bits=7))
    assert HardwareConfig.from_dict(json.loads(json.dumps(hw.to_dict()))) == hw


@pytest.mark.parametrize("kwargs, message", [
    ({"r_on_ohm": 0}, "r_on_ohm must be a positive number"),
    ({"r_on_ohm": 2e5}, "r_off_ohm .* must be greater than r_on_ohm"),
    ({"sigma_on_rel": -0.1}, "sigma_on_rel must be a non-negative number"),
    ({"distribution": "uniform"}, "distribution must be one of normal, lognormal"),
    ({"p_stuck_on": 1.5}, "p_stuck_on must be a probability"),
    ({"v_read_v": float("nan")}, "v_read_v must be a positive number"),
])
def test_device_params_reject_bad_values(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DeviceParams(**kwargs)


@pytest.mark.parametrize("text", ["0x128", "128", "ax4", "12x-3", ""])
def test_tile_size_parse_errors(text):
    with pytest.raises(ConfigError, match="tile"):
        CrossbarGeometry.parse(text)


def test_unknown_field_and_preset():
    with pytest.raises(ConfigError, match=r"^DeviceParams: unknown key\(s\) r_onn; expected some of access_l_um, "):
        DeviceParams.from_dict({"r_onn": 1})
    with pytest.raises(ConfigError, match=r"^d.toml: r_on_ohm = '10k' is not a number$"):
        DeviceParams.from_dict({"r_on_ohm": "10k"}, where="d.toml")
    with pytest.raises(ConfigError, match=r"^\[device\]: cell = 'memristor' is not one of 'linear', 'sinh', '1t1r'$"):
        DeviceParams.from_dict({"cell": "memristor"}, where="[device]")
    with pytest.raises(ConfigError, match="unknown device preset 'nope'"):
        get_preset("nope")


def test_presets_are_valid_and_cited():
    """Every preset survives validation (a round trip through from_dict) and cites a dated
    source or a versioned PDK release, except the ideal one, which says it is not fitted."""
    for name, (params, source) in PRESETS.items():
        assert DeviceParams.from_dict(params.to_dict()) == params == get_preset(name), name
        cited = re.search(r"\b(19|20)\d\d\b|wheel \d+\.\d+\.\d+", source)
        assert cited or (name == "ideal" and "Not fitted" in source), name
    assert get_preset("rram-1t1r-sky130").cell == "1t1r" and get_preset("rram-sinh").cell == "sinh"
    assert get_preset("rram-1t1r-sky130-hr").r_on_ohm == 10 * get_preset("rram-1t1r-sky130").r_on_ohm


def test_adc_bits_derivation_is_exact_for_tile_rows():
    readout = ReadoutParams()
    assert readout.resolved_bits(128) == 9  # codes -128..128 need 9 signed bits
    assert readout.resolved_bits(25) == 6
    assert ReadoutParams(adc_bits=5).resolved_bits(128) == 5
