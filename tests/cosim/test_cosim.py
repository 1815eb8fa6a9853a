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


def test_cosim_of_a_clock_gated_build_has_zero_mismatches(tiny_checkpoint, mnist_dir, tmp_path):
    """SPICE tiles + clock-gated RTL (compile --arch clock-gated), every interface against golden
    (the small network: the compact one's cosim is test_cosim_ideal_chip_has_zero_mismatches)."""
    build = tmp_path / "gated"
    code, _, err = run_cli("compile", tiny_checkpoint, "-o", build, "--arch", "clock-gated")
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
                             "--calib", "64", "--images", "200", "--data-dir", mnist_dir, "-o", tuning)
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


@pytest.fixture(scope="module")
def sense_build(tmp_path_factory, mnist_train, mnist_test):
    """``bmcnn-compact-1bit`` trained for one epoch on 2,000 images, compiled with ``--arch
    efficient`` (conv0 read out by sense amplifiers, one decision word per read)."""
    from bmcnn_hw.train.checkpoint import save_checkpoint
    from bmcnn_hw.train.loop import TrainParams, train
    from bmcnn_hw.train.registry import resolve_model

    params = TrainParams(epochs=1, seed=3, limit=2000, val_size=0)
    model, metrics = train(resolve_model("bmcnn-compact-1bit"), mnist_train, mnist_test.head(200), params,
                           progress=False)
    root = tmp_path_factory.mktemp("sense")
    save_checkpoint(root / "ckpt", model, params.to_dict(), metrics, plot=False)
    code, out, err = run_cli("compile", root / "ckpt", "-o", root / "build", "--arch", "efficient")
    assert code == 0, err
    assert "conv0" in out and "sense amplifiers" in out
    return root / "build"


@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.verilator)])
def test_cosim_of_a_sense_read_out_build_has_zero_mismatches(sense_build, sim, mnist_dir, tmp_path):
    """SPICE column currents -> comparator decisions -> the sense conv0's word beats, on the cocotb
    (Icarus) and compiled-harness (Verilator) paths: every activation bit equals golden and the
    RTL gives one word per pooled position."""
    code, out, err = run_cli("cosim", sense_build, "--images", "1", "--sim", sim, "--data-dir", mnist_dir,
                             "--out", tmp_path)
    assert code == 0, err + out
    report = json.loads((tmp_path / "cosim.json").read_text())
    assert report["mismatches"] == 0 and report["ok"]
    conv0 = report["layers"][0]
    assert conv0["outputs"] == 32 * 12 * 12 and conv0["rtl_outputs"] == 12 * 12 and conv0["rtl_equals_golden"]
    assert all(r["rtl_equals_golden"] for r in report["layers"])
