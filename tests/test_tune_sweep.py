"""Tuning without reprogramming, and the variation sweep, on real MNIST."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bmcnn_hw.config import DeviceParams
from bmcnn_hw.errors import ArtefactError
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.golden.crossbar import physics_predictions
from bmcnn_hw.golden.integer import run_integer
from bmcnn_hw.golden.layers import layer_output
from bmcnn_hw.sweep import run_sweep, write_sweep
from bmcnn_hw.tune import calibrate, check_tuning_chip, load_tuning, save_tuning
from tests.helpers import run_cli


def _accuracy(model, chip, test, offsets=None):
    preds = physics_predictions(model, chip, test.images, offsets)
    return (preds == test.labels).mean()


def test_ideal_chip_needs_no_correction(compiled, mnist_train):
    tuning = calibrate(compiled, Chip(compiled), mnist_train.images[:64])
    assert all((np.asarray(o) == 0).all() for o in tuning.offsets)


def test_tuning_recovers_accuracy_under_variation(compiled, mnist_train, mnist_test):
    test = mnist_test.head(1000)
    device = DeviceParams(sigma_on_rel=0.3, sigma_off_rel=0.3)
    gains = []
    for seed in (0, 1):
        chip = Chip(compiled, device, seed)
        tuning = calibrate(compiled, chip, mnist_train.images[:256])  # training images only
        gains.append(_accuracy(compiled, chip, test, tuning.offsets) - _accuracy(compiled, chip, test))
    assert np.mean(gains) > 0.02, gains


def test_tuning_file_round_trip_and_register_writes(compiled, mnist_train, tmp_path):
    chip = Chip(compiled, DeviceParams(sigma_on_rel=0.2, sigma_off_rel=0.2), 3)
    tuning = calibrate(compiled, chip, mnist_train.images[:64])
    save_tuning(tmp_path / "t.json", compiled, tuning)
    again = load_tuning(tmp_path / "t.json", compiled)
    for a, b in zip(tuning.offsets, again.offsets, strict=True):
        assert np.array_equal(a, b)
    data = json.loads((tmp_path / "t.json").read_text())
    writes = data["register_writes"]["periphery_fc1"]
    assert writes and all(addr >= 0x300 for addr, _ in writes)
    assert data["chip"]["seed"] == 3
    (tmp_path / "bad.json").write_text('{"schema": "other"}')
    with pytest.raises(ArtefactError, match=r"bad\.json"):
        load_tuning(tmp_path / "bad.json", compiled)
    data["tune_offset"] = {"conv0": [0] * 32, "conv1": [0] * 64}  # another model's layers
    (tmp_path / "other.json").write_text(json.dumps(data))
    with pytest.raises(ArtefactError, match=r"tune_offset has layers \['conv0', 'conv1'\], this build has "
                                            r"\['conv0', 'fc1', 'fc2'\]: a tuning file of another build"):
        load_tuning(tmp_path / "other.json", compiled)


def test_a_tuning_file_of_another_chip_is_refused(compiled, build_dir, mnist_dir, mnist_train, tmp_path):
    """Corrections fit one chip's devices: another seed or spread is named, field by field."""
    chip = Chip(compiled, DeviceParams(sigma_on_rel=0.2, sigma_off_rel=0.2), 3)
    tuning = calibrate(compiled, chip, mnist_train.images[:32])
    save_tuning(tmp_path / "t.json", compiled, tuning)
    loaded = load_tuning(tmp_path / "t.json", compiled)
    check_tuning_chip(tmp_path / "t.json", loaded, chip)  # its own chip: accepted
    with pytest.raises(ArtefactError, match=r"t\.json: fitted on another chip: seed 3 \(this chip: 4\)"):
        check_tuning_chip(tmp_path / "t.json", loaded, Chip(compiled, chip.params, 4))
    other = Chip(compiled, DeviceParams(sigma_on_rel=0.1, sigma_off_rel=0.2), 3)
    with pytest.raises(ArtefactError, match=r"sigma_on_rel 0\.2 \(this chip: 0\.1\)"):
        check_tuning_chip(tmp_path / "t.json", loaded, other)
    code, _, err = run_cli("cosim", build_dir, "--chip-seed", "5", "--sigma-on", "0.2", "--sigma-off", "0.2",
                           "--tuning", tmp_path / "t.json", "--data-dir", mnist_dir, "--out", tmp_path / "cs")
    assert code == 2 and "fitted on another chip: seed 3 (this chip: 5)" in err
    assert not (tmp_path / "cs").exists()  # refused before the chip's netlists are written


def test_tuning_offsets_add_to_the_accumulator_before_the_output_stage(compiled, mnist_test):
    """The golden model adds a layer's corrections to its accumulator (where the RTL's tune_offset
    register acts; ``test_cosim`` checks the RTL with tuning loaded) and derives the scores from
    the corrected sums."""
    offsets = [None, None, np.arange(compiled.layers[2].cols, dtype=np.int64) - 4]
    plain, tuned = run_integer(compiled, mnist_test.images[:20]), run_integer(compiled, mnist_test.images[:20],
                                                                               tuning=offsets)
    assert np.array_equal(tuned.accumulators[2], plain.accumulators[2] + offsets[2])
    assert np.array_equal(tuned.outputs[2], layer_output(compiled.layers[2], plain.accumulators[2] + offsets[2]))
    assert np.array_equal(tuned.accumulators[1], plain.accumulators[1])


@pytest.mark.slow
def test_sweep_is_reproducible_and_writes_table_and_plot(build_dir, mnist_train, mnist_test, tmp_path):
    test = mnist_test.head(150)
    calib = mnist_train.images[:64]
    a = run_sweep(build_dir, test, calib, [0.0, 0.3], 2, workers=2, progress=False, spice_spot=1)
    b = run_sweep(build_dir, test, calib, [0.0, 0.3], 2, workers=1, progress=False)
    spots = [p for p in a["points"] if "spice_images" in p]
    assert len(spots) == 2 and all(p["spice_codes_identical"] and p["spice_max_rel_error"] < 1e-6 for p in spots)
    assert [p["plain"] for p in a["points"]] == [p["plain"] for p in b["points"]]  # same seeds, same result
    assert a["summary"][0]["plain_std"] == 0 and a["summary"][0]["plain_mean"] > 0.85
    assert a["summary"][1]["plain_mean"] < a["summary"][0]["plain_mean"]
    paths = write_sweep(a, tmp_path)
    assert {p.suffix for p in paths} == {".json", ".md", ".png", ".svg"}
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert "| 0.30 |" in (tmp_path / "sweep.md").read_text()


@pytest.mark.slow
def test_sweep_on_a_dask_local_cluster_matches_the_pool_and_survives_a_crash(build_dir, mnist_train, mnist_test,
                                                                             tmp_path, monkeypatch):
    from distributed import LocalCluster

    test, calib = mnist_test.head(200), mnist_train.images[:32]
    local = run_sweep(build_dir, test, calib, [0.0, 0.2], 2, workers=2, progress=False)
    monkeypatch.setenv("BMCNN_HW_CRASH_ONCE", str(tmp_path / "crashed"))  # one worker dies on its first task
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        remote = run_sweep(build_dir, test, calib, [0.0, 0.2], 2, scheduler=cluster.scheduler_address, progress=False)
    assert (tmp_path / "crashed").exists()  # the crash happened and its task was retried
    assert remote["points"] == local["points"]
