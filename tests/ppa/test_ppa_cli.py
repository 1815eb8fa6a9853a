"""``bmcnn-hw ppa`` end to end on a real build, and its bad inputs."""

from __future__ import annotations

import json

import pytest

from bmcnn_hw.ppa.cost_model import load_cost_model
from bmcnn_hw.ppa.records import COMPONENTS
from bmcnn_hw.ppa.tools import DEFAULT_LIBERTY
from tests.helpers import needs, run_cli

TOOLS = [needs("yosys"), needs("sta"), needs("iverilog"), needs("ngspice"),
         pytest.mark.skipif(not DEFAULT_LIBERTY.is_file(), reason="qflow-tech-osu018 not installed")]


def _require_tools() -> None:
    """Skip unless Yosys, OpenSTA, Icarus, ngspice and the OSU cells are all installed."""
    for mark in TOOLS:
        if mark.args[0]:
            pytest.skip(mark.kwargs["reason"])


@pytest.mark.ngspice
@pytest.mark.icarus
@pytest.mark.slow
def test_ppa_writes_the_breakdown_with_sources(tiny_build, mnist_dir, tmp_path):
    _require_tools()
    out = tmp_path / "ppa"
    code, stdout, err = run_cli("ppa", tiny_build, "-o", out, "--images", "2", "--activity-beats", "1500",
                                "--data-dir", mnist_dir)
    assert code == 0, err
    assert "TOPS/W" in stdout and "energy per inference" in stdout
    report = json.loads((out / "ppa.json").read_text())
    assert (out / "ppa.md").is_file() and (out / "ppa.png").stat().st_size > 10_000
    totals = report["totals"]
    assert totals["energy_per_inference_j"] == pytest.approx(sum(totals["energy_j"].values()))
    assert totals["tops_per_w"] == pytest.approx(totals["ops_per_inference"] / totals["energy_per_inference_j"] / 1e12)
    assert set(totals["energy_j"]) == set(COMPONENTS)
    for name, layer in report["layers"].items():
        d = layer["digital"]
        assert d["gate_level_outputs_checked"] > 0, name
        assert layer["area_um2"]["digital"] == d["area_um2"] > 0
        assert layer["transient"]["read_time_s"] > 0
        assert all(v >= 0 for v in layer["energy_j"].values())
    assert report["clock_mhz"] <= min(la["digital"]["fmax_mhz"] for la in report["layers"].values())
    assert all(report["sources"][k] for k in report["sources"])
    conv0, bias_w = report["layers"]["conv0"], load_cost_model().tia.bias_power_w
    used_columns = conv0["schedule"]["row_tiles"] * 2 * 8  # 8 channels, differential: two TIAs per weight column
    assert conv0["energy_j"]["tia_bias"] == pytest.approx(
        bias_w * conv0["transient"]["read_time_s"] * conv0["schedule"]["reads"] * used_columns)
    assert any("--columns-per-adc >= 114" in w for w in report["warnings"])  # a ~227 um ADC on 2 um columns
    assert not list(tmp_path.glob(".ppa.*")), "the staging directory was left behind"


@pytest.mark.parametrize(("args", "message"), [
    (["--liberty", "/usr/share/x.lib"], "--liberty and --cell-models go together"),
    (["--cost-model", "{tmp}/missing.toml"], "missing.toml: cost-model file not found"),
    (["-o", "{tmp}/afile"], "afile: exists and is not a PPA output directory"),
    (["--clock-mhz", "-3"], "argument --clock-mhz: must be a number > 0"),
    (["--columns-per-adc", "0"], "argument --columns-per-adc: must be a whole number >= 1"),
])
def test_ppa_bad_input_is_one_line(build_dir, tmp_path, args, message):
    (tmp_path / "afile").write_text("keep me")
    code, _, err = run_cli("ppa", build_dir, *[a.format(tmp=tmp_path) for a in args])
    assert code == 2
    assert message in err and "Traceback" not in err
    assert (tmp_path / "afile").read_text() == "keep me"


@pytest.mark.slow
def test_ppa_refuses_a_clock_the_design_cannot_meet(tiny_build, mnist_dir, tmp_path):
    _require_tools()
    code, _, err = run_cli("ppa", tiny_build, "-o", tmp_path / "p", "--images", "1", "--clock-mhz", "5000",
                           "--data-dir", mnist_dir)
    assert code == 2 and "fails timing (slack -" in err and "Traceback" not in err
    assert not (tmp_path / "p").exists()


def test_ppa_refuses_verilog_edited_after_compile(build_dir, tmp_path):
    import shutil

    copy = tmp_path / "build"
    shutil.copytree(build_dir, copy)
    verilog = copy / "rtl" / "layer_fc2.v"
    verilog.write_text(verilog.read_text().replace("module layer_fc2", "module layer_fc2 ", 1))
    code, _, err = run_cli("ppa", copy, "-o", tmp_path / "p", "--images", "1")
    assert code == 2 and "layer_fc2.v: SHA-256 differs from manifest.json" in err
    assert not (tmp_path / "p").exists()


@pytest.mark.slow
def test_ppa_refuses_rtl_of_an_older_interface_until_it_is_regenerated(build_dir, tmp_path):
    """A build compiled by an older bmcnn-hw (register map id 0xB3C00001): one line naming the
    file and the command; `bmcnn-hw rtl BUILD` rewrites the RTL and lists it in the manifest."""
    import json
    import shutil

    from bmcnn_hw.artefact import record_files
    from bmcnn_hw.io_utils import sha256_file

    copy = tmp_path / "build"
    shutil.copytree(build_dir, copy)
    regmap = copy / "rtl" / "regmap_conv0.json"
    doc = json.loads(regmap.read_text())
    doc["registers"][0]["reset"] = [0xB3C00001]
    regmap.write_text(json.dumps(doc))
    record_files(copy, {"rtl/regmap_conv0.json": sha256_file(regmap)})  # as an old compile would have
    code, _, err = run_cli("ppa", copy, "-o", tmp_path / "p", "--images", "1")
    assert code == 2 and "regmap_conv0.json: RTL interface version 1 from an older bmcnn-hw" in err
    assert f"bmcnn-hw rtl {copy}" in err and not (tmp_path / "p").exists()
    code, _, err = run_cli("rtl", copy)
    assert code == 0, err
    from bmcnn_hw.artefact import load_model
    from bmcnn_hw.ppa.flow import verify_build_rtl

    verify_build_rtl(copy, load_model(copy))  # regenerated and listed: accepted


TINY_HYBRID = """
name = "tiny-hybrid"
description = "fixed conv3x3x4/pool2, binary fc32, fixed fc10 (PPA test)"
input_shape = [1, 28, 28]
input_bits = 8
score_format = "Q8.10"

[[layers]]
kind = "conv"
out = 4
kernel = 3
pool = 2
precision = "fixed"
weight_format = "Q1.3"

[[layers]]
kind = "fc"
out = 32

[[layers]]
kind = "fc"
out = 10
precision = "fixed"
weight_format = "Q1.3"
"""


@pytest.fixture(scope="module")
def tiny_hybrid_build(tmp_path_factory, mnist_dir):
    """A small hybrid model (digital first and last layers), trained on 300 images and compiled."""
    root = tmp_path_factory.mktemp("tiny-hybrid")
    (root / "tiny.toml").write_text(TINY_HYBRID)
    code, _, err = run_cli("train", "--model", root / "tiny.toml", "--epochs", "1", "--train-images", "300",
                           "--val-size", "0", "--out", root / "ckpt", "--data-dir", mnist_dir)
    assert code == 0, err
    code, _, err = run_cli("compile", root / "ckpt", "-o", root / "build", "--tile", "64x64", "--mac-lanes", "2")
    assert code == 0, err
    return root / "build"


@pytest.mark.ngspice
@pytest.mark.icarus
@pytest.mark.slow
def test_ppa_of_a_hybrid_build_costs_its_mac_engines(tiny_hybrid_build, mnist_dir, tmp_path):
    """Digital layers: gates only (synthesis, gate-level activity checked against golden, STA),
    busy for the engine's cycles; crossbar layers as before."""
    _require_tools()
    from bmcnn_hw.artefact import load_model
    from bmcnn_hw.rtl.mac import layer_cycles

    out = tmp_path / "ppa"
    code, stdout, err = run_cli("ppa", tiny_hybrid_build, "-o", out, "--images", "2", "--activity-beats", "600",
                                "--data-dir", mnist_dir)
    assert code == 0, err
    report = json.loads((out / "ppa.json").read_text())
    model = load_model(tiny_hybrid_build)
    period_s = 1e-6 / report["clock_mhz"]
    for layer in (model.layers[0], model.layers[2]):
        record = report["layers"][layer.name]
        assert record["transient"] is None and record["schedule"]["reads"] == 0
        assert record["schedule"]["beats"] == layer_cycles(layer)
        assert record["digital_time_s"] == pytest.approx(layer_cycles(layer) * period_s)
        assert record["digital"]["gate_level_outputs_checked"] > 0
        assert {k for k, v in record["energy_j"].items() if v} == {"digital"}
        assert {k for k, v in record["area_um2"].items() if v} == {"digital"}
    assert report["layers"]["fc1"]["transient"]["read_time_s"] > 0
    totals = report["totals"]
    assert totals["energy_per_inference_j"] == pytest.approx(sum(totals["energy_j"].values()))
    assert totals["ops_per_inference"] == 2 * (26 * 26 * 9 * 4 + 676 * 32 + 32 * 10)  # fixed, binary, fixed MACs
    assert "energy per inference" in stdout
    code, _, err = run_cli("ppa", tiny_hybrid_build, "-o", tmp_path / "n", "--no-digital")
    assert code == 2 and "layer(s) conv0, fc2 are digital" in err
