"""SPICE + RTL co-simulation on real MNIST images: zero mismatches, tuned RTL = tuned golden."""

from __future__ import annotations

import json

import pytest

from tests.helpers import needs, run_cli

pytestmark = [pytest.mark.ngspice, pytest.mark.icarus, pytest.mark.slow, needs("ngspice"), needs("iverilog")]


def test_cosim_ideal_chip_has_zero_mismatches(build_dir, mnist_dir, tmp_path):
    """The cocotb path (Python drives every beat on Icarus)."""
    code, out, err = run_cli("cosim", build_dir, "--images", "1", "--sim", "icarus", "--data-dir", mnist_dir,
                             "--out", tmp_path)
    assert code == 0, err + out
    report = json.loads((tmp_path / "cosim.json").read_text())
    assert report["mismatches"] == 0 and report["ok"] and report["simulator"] == "icarus"
    assert [r["layer"] for r in report["layers"]] == ["conv0", "fc1", "fc2"]
    assert all(r["rtl_equals_golden"] and r["adc_codes_identical"] for r in report["layers"])
    assert report["layers"][0]["outputs"] == 32 * 12 * 12  # every pooled activation of the image


def test_cosim_of_a_clock_gated_build_has_zero_mismatches(checkpoint, mnist_dir, tmp_path):
    """SPICE tiles + clock-gated RTL (compile --arch clock-gated), every interface against golden."""
    build = tmp_path / "gated"
    code, _, err = run_cli("compile", checkpoint, "-o", build, "--arch", "clock-gated")
    assert code == 0, err
    code, out, err = run_cli("cosim", build, "--images", "1", "--sim", "icarus", "--data-dir", mnist_dir,
                             "--out", tmp_path / "cosim")
    assert code == 0, err + out
    report = json.loads((tmp_path / "cosim" / "cosim.json").read_text())
    assert report["mismatches"] == 0 and report["ok"]
    assert all(r["rtl_equals_golden"] and r["adc_codes_identical"] for r in report["layers"])


@pytest.mark.verilator
def test_tuned_sampled_chip_rtl_equals_tuned_golden(build_dir, mnist_dir, tmp_path):
    """The compiled-harness path (Verilator), two images, tuning registers loaded."""
    tuning = tmp_path / "tuning.json"
    code, out, err = run_cli("tune", build_dir, "--chip-seed", "5", "--sigma-on", "0.15", "--sigma-off", "0.15",
                             "--calib", "64", "--limit", "200", "--data-dir", mnist_dir, "-o", tuning)
    assert code == 0, err
    assert "after tuning" in out
    code, out, err = run_cli("cosim", build_dir, "--images", "2", "--chip-seed", "5", "--sigma-on", "0.15",
                             "--sigma-off", "0.15", "--tuning", tuning, "--sim", "verilator", "--data-dir", mnist_dir,
                             "--out", tmp_path / "cs")
    assert code == 0, err + out
    report = json.loads((tmp_path / "cs" / "cosim.json").read_text())
    assert report["tuned"] and report["mismatches"] == 0 and report["chip"]["seed"] == 5
    assert report["simulator"] == "verilator" and report["layers"][0]["outputs"] == 2 * 32 * 12 * 12
    assert all(r["rtl_equals_golden"] for r in report["layers"])
    assert "seed=5" in next((tmp_path / "cs" / "build" / "netlists").glob("fc1_r0_c0.sub")).read_text()


@pytest.mark.verilator
def test_hybrid_build_cosim_has_zero_mismatches(hybrid_build, mnist_dir, tmp_path):
    """bmcnn-hybrid: SPICE for its binary layers, the MAC engine RTL for its fixed-point ones."""
    code, out, err = run_cli("cosim", hybrid_build, "--images", "1", "--sim", "verilator", "--data-dir", mnist_dir,
                             "--out", tmp_path)
    assert code == 0, err + out
    report = json.loads((tmp_path / "cosim.json").read_text())
    assert report["mismatches"] == 0 and report["ok"]
    assert [(r["layer"], r["digital"]) for r in report["layers"]] == [
        ("conv0", True), ("conv1", False), ("conv2", False), ("fc3", False), ("fc4", True)]
    assert all(r["rtl_equals_golden"] for r in report["layers"])
    assert report["layers"][0]["outputs"] == 32 * 12 * 12
    assert "digital MAC (no ADC)" in (tmp_path / "cosim.md").read_text()
