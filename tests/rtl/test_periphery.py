"""Layer periphery RTL: construction checks and cocotb testbenches against the golden model."""

from __future__ import annotations

import json
import os

import pytest

from bmcnn_hw.cosim.rtl_check import check_rtl
from bmcnn_hw.cosim.runner import run_periphery_tb
from bmcnn_hw.errors import ConfigError, MismatchError
from bmcnn_hw.rtl.emit import emit_layer
from bmcnn_hw.rtl.periphery import LayerPeriphery
from tests.conftest import needs


@pytest.mark.parametrize("kwargs, message", [
    ({"channels": 0}, "channels must be a positive integer"),
    ({"adc_bits": 0}, "adc_bits must be a positive integer"),
    ({"acc_width": 4}, "cannot hold the accumulator bound"),
    ({"thetas": [1 << 20, 0], "flips": [0, 0]}, "threshold 1048576 out of range"),
    ({"thetas": [1], "flips": [0]}, "need 2 thresholds"),
    ({"thetas": [1, 2], "flips": [0, 2]}, "flips must be 0 or 1"),
])
def test_bad_parameters_raise_one_sentence(kwargs, message):
    args = dict(channels=2, adc_bits=6, planes=8, acc_width=16)
    args.update(kwargs)
    with pytest.raises(ConfigError, match=message):
        LayerPeriphery(**args)


def test_emitted_verilog_is_readable(compiled):
    text = emit_layer(compiled.layers[0])
    assert "module periphery_conv0(" in text
    for port in ("in_code", "in_plane", "out_acc", "out_act", "clk", "rst"):
        assert port in text


@pytest.mark.icarus
@needs("iverilog")
def test_every_layer_matches_golden_on_icarus(compiled, mnist_test, tmp_path):
    checks = check_rtl(compiled, mnist_test.images[:3], tmp_path, sim="icarus", per_layer=300, seed=4)
    assert [c.layer for c in checks] == ["conv0", "fc1", "fc2"]
    assert all(c.passed for c in checks), [c.message for c in checks]


@pytest.mark.icarus
@needs("iverilog")
def test_a_wrong_golden_value_is_reported(compiled, mnist_test, tmp_path):
    check_rtl(compiled, mnist_test.images[:1], tmp_path, sim="icarus", per_layer=20)
    sim_dir = tmp_path / "sim" / "icarus_periphery_fc1"
    vectors = json.loads((sim_dir / "vectors.json").read_text())
    vectors["expected"][5][1] += 1
    with pytest.raises(MismatchError, match="output 5: RTL"):
        run_periphery_tb(tmp_path / "rtl" / "periphery_fc1.v", "periphery_fc1", vectors, tmp_path / "again")


@pytest.mark.verilator
def test_every_layer_matches_golden_on_verilator(compiled, mnist_test, tmp_path):
    from bmcnn_hw.cosim.runner import simulator_path
    import shutil

    simulator_path()
    if shutil.which("verilator") is None:
        pytest.skip("verilator not installed")
    checks = check_rtl(compiled, mnist_test.images[:2], tmp_path, sim="verilator", per_layer=200)
    assert all(c.passed for c in checks), [c.message for c in checks]
