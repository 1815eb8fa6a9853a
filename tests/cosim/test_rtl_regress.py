"""RTL regression at test-set scale (compiled Verilator harness fed through a pipe)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bmcnn_hw.cosim.payload import pack
from bmcnn_hw.cosim.rtl_check import layer_codes
from bmcnn_hw.cosim.rtl_regress import beat_payloads, payload_bits, rtl_regression
from bmcnn_hw.cosim.scenarios import full_layer_scenario
from bmcnn_hw.cosim.streamsim import StreamRun, build_harness
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.golden.crossbar import CrossbarAccumulator, run_crossbar
from bmcnn_hw.golden.integer import run_integer
from bmcnn_hw.golden.tile_reader import PhysicsReader
from bmcnn_hw.rtl.emit import top_name, write_rtl
from bmcnn_hw.rtl.layer import layer_stream_fields
from bmcnn_hw.rtl.simulators import simulator_path
from bmcnn_hw.tune import calibrate
from tests.helpers import gated

pytestmark = pytest.mark.verilator


@pytest.fixture(autouse=True)
def _verilator():
    import shutil

    simulator_path()
    if shutil.which("verilator") is None:
        pytest.skip("verilator not installed")


def test_vectorised_beats_are_the_testbench_order(compiled, mnist_test):
    """The packed beats equal the cocotb scenario's beats, packed one by one, for every layer."""
    images = mnist_test.images[:2]
    trace, recorded = run_crossbar(compiled, images, PhysicsReader(Chip(compiled)), record=True)
    accumulator = CrossbarAccumulator(compiled, PhysicsReader(Chip(compiled)), capture_codes=True)
    run_integer(compiled, images, accumulator)
    for i, layer in enumerate(compiled.layers):
        fields = layer_stream_fields(layer, top=True)
        scenario, _ = full_layer_scenario(layer, trace.outputs[i], layer_codes(recorded.reads, i), len(images))
        want = [pack(fields["i"], scenario["inputs"], s["beat"]) for s in scenario["steps"] if "beat" in s]
        got = beat_payloads(layer, accumulator.layer_codes(i), fields["i"])
        assert got.tolist() == want, layer.name


def _sampled(compiled, sigma=0.1, seed=5):
    device = dataclasses.replace(compiled.hardware.device, sigma_on_rel=sigma, sigma_off_rel=sigma)
    return Chip(compiled, device, seed)


@pytest.mark.slow
def test_a_wrong_tuning_register_is_caught_and_named(compiled, mnist_test, mnist_train, tmp_path):
    """Golden is tuned; the RTL gets fc1's offsets pushed far up (every fc1 activation saturates):
    the regression must fail in fc1, and only there."""
    chip = _sampled(compiled)
    tuning = calibrate(compiled, chip, mnist_train.images[:100]).offsets
    good = rtl_regression(compiled, chip, mnist_test.images[:4], tmp_path, tuning=tuning, progress=False)
    assert good["ok"], good
    wrong = [t.copy() for t in tuning]
    wrong[1] += 8000

    import bmcnn_hw.cosim.rtl_regress as regress

    writes = regress.tuning_writes
    try:  # the RTL receives the wrong offsets, golden keeps the right ones
        regress.tuning_writes = lambda layer, offsets: writes(layer, wrong[compiled.layers.index(layer)])
        bad = rtl_regression(compiled, chip, mnist_test.images[:4], tmp_path, tuning=tuning, progress=False)
    finally:
        regress.tuning_writes = writes
    fc1 = bad["layers"][1]
    assert not bad["ok"] and fc1["mismatches"] > 0 and "RTL bit" in fc1["first_mismatch"]
    assert bad["layers"][0]["mismatches"] == 0


@pytest.mark.slow
def test_clock_gated_rtl_of_a_tuned_chip_equals_golden(compiled, mnist_test, mnist_train, tmp_path):
    """Clock-gated peripheries (compile --clock-gating) on a sampled chip: the tuning writes pass
    the configuration gate and every activation and prediction of 200 images equals golden."""
    model = gated(compiled)
    chip = _sampled(model)
    tuning = calibrate(model, chip, mnist_train.images[:100]).offsets
    assert any(np.any(t) for t in tuning)  # the gate has writes to let through
    report = rtl_regression(model, chip, mnist_test.images[:200], tmp_path, tuning=tuning, progress=False)
    assert report["ok"] and report["predictions_checked"] == 200, report


@pytest.mark.slow
def test_the_harness_reports_the_error_register(compiled, tmp_path):
    """A beat with an out-of-range channel that also closes an image of one class: the harness
    reads both sticky bits at the end (channel, and group from the argmax)."""
    layer = compiled.layers[2]  # 10 classes: channel 12 is out of range
    fields = layer_stream_fields(layer, top=True)
    write_rtl(compiled, tmp_path / "rtl")
    in_bits, out_bits = payload_bits(fields["i"]), payload_bits(fields["o"])
    binary = build_harness(tmp_path / "rtl" / f"{top_name(layer)}.v", top_name(layer), in_bits, out_bits,
                           tmp_path / "harness")
    assert build_harness(tmp_path / "rtl" / f"{top_name(layer)}.v", top_name(layer), in_bits, out_bits,
                         tmp_path / "harness") == binary  # cached
    run = StreamRun(binary, in_bits, out_bits, tmp_path / "out.bin")
    run.send(np.asarray([pack(fields["i"], ["code", "plane", "channel", "first", "last", "group_last"],
                              [1, 0, 12, 1, 1, 1])], dtype=np.uint32))
    result = run.finish()
    assert result.beats == 1 and result.error == (1 << 0) | (1 << 3)


@pytest.mark.slow  # the full test set or a large grid: the full tier only
def test_every_beat_of_1000_test_images_through_the_rtl_of_a_tuned_chip(compiled, mnist_test, mnist_train,
                                                                         tmp_path):
    """1,000 test images (14,745,600 conv0 beats), every layer, every activation and prediction =
    golden. The whole test set is the documented `rtl-regress` run (docs/guide/rtl.md); here it
    took 382 s of the full tier for the same code path."""
    chip = _sampled(compiled, sigma=0.15, seed=7)
    tuning = calibrate(compiled, chip, mnist_train.images[:500]).offsets
    images = mnist_test.images[:1000]
    report = rtl_regression(compiled, chip, images, tmp_path, tuning=tuning, progress=False)
    assert report["ok"], report
    assert report["predictions_checked"] == len(images) == 1000
    conv0 = report["layers"][0]
    assert conv0["beats"] == 1000 * 24 * 24 * 32 * 8 and conv0["outputs"] == 1000 * 12 * 12 * 32
    assert report["layers"][-1]["outputs"] == 1000


def test_rtl_regress_command_writes_its_report(build_dir, mnist_dir, tmp_path):
    import json

    from tests.helpers import run_cli

    code, out, err = run_cli("rtl-regress", build_dir, "--images", "3", "--chip-seed", "2", "--sigma-on", "0.1",
                             "--sigma-off", "0.1", "--calibrate", "50", "--data-dir", mnist_dir, "--out", tmp_path)
    assert code == 0, err + out
    report = json.loads((tmp_path / "rtl_regress.json").read_text())
    assert report["ok"] and report["images"] == 3 and report["tuned"] and report["chip"]["seed"] == 2
    assert "Every activation and prediction = golden." in (tmp_path / "rtl_regress.md").read_text()


@pytest.mark.slow
def test_hybrid_build_regression_checks_its_mac_layers(hybrid_build, mnist_dir, tmp_path):
    """A bmcnn-hybrid build on a sampled, tuned chip: the digital layers' MAC engines take the
    physics run's activations, the crossbar layers' peripheries its ADC codes; all = golden."""
    import json

    from bmcnn_hw.artefact import load_model
    from bmcnn_hw.rtl.mac import layer_cycles
    from tests.helpers import run_cli

    code, out, err = run_cli("rtl-regress", hybrid_build, "--images", "20", "--chip-seed", "3", "--sigma-on", "0.1",
                             "--sigma-off", "0.1", "--calibrate", "50", "--data-dir", mnist_dir, "--out", tmp_path)
    assert code == 0, err + out
    report = json.loads((tmp_path / "rtl_regress.json").read_text())
    assert report["ok"] and report["images"] == 20 and report["tuned"]
    conv0, fc4 = report["layers"][0], report["layers"][-1]
    assert conv0["beats"] == 20 * 144 * 4 * 25 and conv0["outputs"] == 20 * 144 * 32
    assert fc4["beats"] == 20 * 512 and fc4["outputs"] == 20
    model = load_model(hybrid_build)
    # One batch (of up to 100 images) goes to one harness: 20 images' cycles plus its reset, drain and read
    assert conv0["cycles"] == 20 * layer_cycles(model.layers[0]) + 12
