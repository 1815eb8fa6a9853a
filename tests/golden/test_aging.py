"""Aged chips: deterministic, continuous per device, wear monotone, drift statistics as the model
states, VTEAM read disturb equal to integrating its ODE; the lifetime command and ``--age``."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from bmcnn_hw.config import DeviceParams
from bmcnn_hw.errors import ArtefactError, ConfigError
from bmcnn_hw.golden.aging import (
    TEN_YEARS_S,
    RetentionParams,
    aged_chip,
    check_conductance,
    format_duration,
    load_retention,
    parse_duration,
    parse_durations,
    vteam_state,
)
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.tune import calibrate, check_tuning_chip, load_tuning, save_tuning
from tests.helpers import REPO, needs, run_cli

SIGMA = DeviceParams(sigma_on_rel=0.1, sigma_off_rel=0.1)
WEAR = REPO / "flows" / "retention_wear.toml"


def _devices(chip: Chip) -> np.ndarray:
    return np.concatenate([np.concatenate([t.r_plus.ravel(), t.r_minus.ravel()]) for t in chip.tiles.values()])


def _on_mask(compiled, chip: Chip) -> np.ndarray:
    """True where a device is programmed ON (from the programmed chip: ON devices are < the mid resistance)."""
    return _devices(chip) < math.sqrt(chip.params.r_on_ohm * chip.params.r_off_ohm)


def test_same_seed_and_age_give_the_same_devices_and_age_0_is_the_programmed_chip(compiled):
    chip = Chip(compiled, SIGMA, 7)
    first, again = aged_chip(compiled, chip, 3.6e3), aged_chip(compiled, Chip(compiled, SIGMA, 7), 3.6e3)
    assert np.array_equal(_devices(first), _devices(again))
    assert np.array_equal(_devices(aged_chip(compiled, chip, 0.0)), _devices(chip))
    assert np.array_equal(_devices(aged_chip(compiled, chip, 1.0)), _devices(chip))  # t0 = 1 s
    assert not np.array_equal(_devices(first), _devices(aged_chip(compiled, Chip(compiled, SIGMA, 8), 3.6e3)))
    assert first.describe()["age"]["age_s"] == 3.6e3 and "age" not in chip.describe()


def test_each_device_drifts_continuously_in_time(compiled):
    """The same device drifts (never re-drawn): nearby ages give nearby resistances, everywhere."""
    chip = Chip(compiled, SIGMA, 1)
    ages = np.geomspace(2.0, TEN_YEARS_S, 12)
    previous = _devices(chip)
    for age in ages:
        now = _devices(aged_chip(compiled, chip, age))
        close = _devices(aged_chip(compiled, chip, age * (1 + 1e-6)))
        assert np.max(np.abs(close / now - 1)) < 1e-6  # continuous: a 1e-6 step in t moves R by < 1e-6
        assert np.corrcoef(np.log(now), np.log(previous))[0, 1] > 0.999  # the same devices, drifted
        previous = now


def test_drift_mean_and_spread_follow_the_model(compiled):
    """On an ideal chip, ON conductances at t have mean G_on + mu ln t and std s ln t."""
    chip = Chip(compiled, DeviceParams(), 0)
    params = RetentionParams()
    on = _on_mask(compiled, chip)
    for age in (3.6e3, TEN_YEARS_S):
        g = 1e6 / _devices(aged_chip(compiled, chip, age, params))
        log_t = math.log(age)
        assert g[on].mean() == pytest.approx(100 + params.drift_mean_us * log_t, abs=0.01)
        assert g[on].std() == pytest.approx(params.drift_sd_us * log_t, rel=0.01)
        assert g[~on].mean() == pytest.approx(10 + params.drift_mean_us * log_t, abs=0.01)


def test_wear_is_monotone_and_reaches_its_10_year_fraction(compiled):
    params = RetentionParams(fail_10y=0.02, fail_shape=0.5, fail_on=1.0)  # failures stuck ON
    chip = Chip(compiled, DeviceParams(), 2)
    off = ~_on_mask(compiled, chip)
    failed_before = np.zeros(off.sum(), dtype=bool)
    for age in (60.0, 86400.0, 3.15e7, TEN_YEARS_S):
        failed = _devices(aged_chip(compiled, chip, age, params))[off] < 20e3  # an OFF device now at R_on
        assert np.all(failed[failed_before])  # a failed device stays failed
        assert failed.mean() == pytest.approx(params.failed_fraction(age), abs=0.002)
        failed_before = failed
    assert params.failed_fraction(TEN_YEARS_S) == pytest.approx(0.02)


def test_read_disturb_equals_the_vteam_ode_and_is_zero_below_threshold(compiled):
    """Closed form vs a fine numerical integration of dx/dt = k_off (V/v_off - 1)^a_off (1 - x)."""
    params = RetentionParams(drift_mean_us=0.0, drift_sd_us=0.0)
    quiet = Chip(compiled, DeviceParams(v_read_v=0.2), 0)
    assert np.array_equal(_devices(aged_chip(compiled, quiet, 3.15e7, params, reads_per_s=1e6)), _devices(quiet))
    loud = Chip(compiled, DeviceParams(v_read_v=0.51), 0)
    age, reads = 100.0, 1e3
    aged = _devices(aged_chip(compiled, loud, age, params, reads_per_s=reads))
    on = _on_mask(compiled, loud)
    rate = params.k_off * (0.51 / params.v_off - 1) ** params.a_off
    x, steps = 0.0, 20000
    dt = age * reads * params.read_pulse_s / steps
    for _ in range(steps):
        x += dt * rate * (1 - x)
    expected = 10e3 + (100e3 - 10e3) * x
    assert aged[on].mean() == pytest.approx(expected, rel=1e-3)
    assert aged[on].mean() > 10e3 * 1.01  # the disturb is visible


@pytest.mark.ngspice
@needs("ngspice")
def test_read_disturb_closed_form_equals_the_vteam_subcircuit_in_ngspice():
    """The physics side's VTEAM state change = ngspice's transient of spice_models/vteam.lib."""
    from bmcnn_hw.spice.read_disturb import read_disturb

    params = RetentionParams()
    for v, seconds, x0 in ((0.51, 0.01, 0.0), (0.6, 1e-4, 0.2), (0.2, 1.0, 0.0)):
        spice = read_disturb(v, seconds, x0=x0, steps=2000)["state_final"]
        assert float(vteam_state(x0, v, seconds, params)) == pytest.approx(spice, abs=2e-3)


def test_times_and_retention_parameters_are_checked(tmp_path):
    assert parse_durations("1s,1h,1d,1mo,1y,10y") == [1.0, 3600.0, 86400.0, 30.4375 * 86400, 365.25 * 86400,
                                                       TEN_YEARS_S]
    assert format_duration(TEN_YEARS_S) == "10y" and format_duration(90.0) == "90s"
    with pytest.raises(ConfigError, match="'-1h' is negative"):
        parse_duration("-1h", "--age")
    with pytest.raises(ConfigError, match="'3 fortnights' is not a time"):
        parse_duration("3 fortnights", "--age")
    with pytest.raises(ConfigError, match="drives a conductance to or below zero"):
        check_conductance(RetentionParams(drift_mean_us=-2.0), 10e3, 100e3, [3600.0])
    with pytest.raises(ConfigError, match="fail_10y: a fraction"):
        RetentionParams(fail_10y=1.5)
    (tmp_path / "r.toml").write_text("[retention]\ndrift = 1\n")
    with pytest.raises(ConfigError, match=r"r\.toml: \[retention\]: unknown key\(s\) drift"):
        load_retention(tmp_path / "r.toml")
    (tmp_path / "ok.toml").write_text("[retention]\nfail_10y = 0.01\n")
    assert load_retention(tmp_path / "ok.toml").fail_10y == 0.01


def test_a_tuning_file_of_another_age_is_refused(compiled, mnist_train, tmp_path):
    chip = aged_chip(compiled, Chip(compiled, SIGMA, 3), TEN_YEARS_S)
    save_tuning(tmp_path / "t.json", compiled, calibrate(compiled, chip, mnist_train.images[:32]))
    loaded = load_tuning(tmp_path / "t.json", compiled)
    check_tuning_chip(tmp_path / "t.json", loaded, chip)
    with pytest.raises(ArtefactError, match=r"age 10y at 0 reads/s .* \(this chip: none \(as programmed\)\)"):
        check_tuning_chip(tmp_path / "t.json", loaded, Chip(compiled, SIGMA, 3))
    with pytest.raises(ArtefactError, match=r"age 10y .*\(this chip: 1y"):
        check_tuning_chip(tmp_path / "t.json", loaded, aged_chip(compiled, Chip(compiled, SIGMA, 3), TEN_YEARS_S / 10))


@pytest.mark.slow
def test_lifetime_command_writes_table_plot_and_counts_register_writes(build_dir, mnist_dir, tmp_path):
    code, out, err = run_cli("lifetime", build_dir, "--times", "0s,1d,10y", "--chips", "2", "--images", "300",
                             "--calib", "256", "--sigma-on", "0.3", "--sigma-off", "0.3", "--retention",
                             WEAR, "--data-dir", mnist_dir, "--out", tmp_path / "lt")
    assert code == 0, err
    result = json.loads((tmp_path / "lt" / "lifetime.json").read_text())
    assert [row["label"] for row in result["summary"]] == ["0s", "1d", "10y"]
    assert {p["seed"] for p in result["points"]} == {0, 1}
    first = result["summary"][0]
    assert first["register_writes_mean"] == 0  # at age 0 the re-tune is the t0 tuning (wear starts after 0)
    assert first["tuned_t0_mean"] == first["retuned_mean"]
    assert result["summary"][-1]["register_writes_mean"] > 0
    assert result["summary"][-1]["failed_fraction"] == pytest.approx(0.01)
    for name in ("lifetime.md", "lifetime.png", "lifetime.svg"):
        assert (tmp_path / "lt" / name).stat().st_size > 0
    assert "| 10y |" in out
    (tmp_path / "lt" / "points" / "chip_seed1.json").unlink()  # as if stopped before chip 1 was recorded
    code, _, err = run_cli("lifetime", build_dir, "--times", "0s,1d,10y", "--chips", "2", "--images", "300",
                           "--calib", "256", "--sigma-on", "0.3", "--sigma-off", "0.3", "--retention",
                           WEAR, "--data-dir", mnist_dir, "--out", tmp_path / "lt")
    assert code == 0 and "1 of 2 points finished by an earlier run" in err, err
    assert json.loads((tmp_path / "lt" / "lifetime.json").read_text()) == result  # resumed = uninterrupted
    code, _, err = run_cli("lifetime", build_dir, "--times", "1s,-2d", "--data-dir", mnist_dir, "--out", tmp_path / "x")
    assert code == 2 and "'-2d' is negative" in err and not (tmp_path / "x").exists()


@pytest.mark.slow
@pytest.mark.ngspice
@pytest.mark.verilator
@needs("ngspice")
@needs("verilator")
def test_cosim_of_an_aged_retuned_chip_has_zero_mismatches(build_dir, mnist_dir, tmp_path):
    """The issue's item 4: the chip at 10 years (with wear), re-tuned: SPICE + RTL = golden."""
    common = ["--chip-seed", "1", "--sigma-on", "0.1", "--sigma-off", "0.1", "--age", "10y", "--retention",
              WEAR, "--data-dir", mnist_dir]
    code, _, err = run_cli("tune", build_dir, *common, "--calib", "64", "--images", "200", "-o", tmp_path / "t.json")
    assert code == 0, err
    code, out, err = run_cli("cosim", build_dir, *common, "--images", "2", "--sim", "verilator", "--tuning",
                             tmp_path / "t.json", "--out", tmp_path / "cs")
    assert code == 0, err
    report = json.loads((tmp_path / "cs" / "cosim.json").read_text())
    assert report["ok"] and "mismatches: 0" in out


@pytest.mark.slow
def test_lifetime_on_a_dask_local_cluster_equals_the_process_pool(build_dir, mnist_train, mnist_test):
    """Same seeds, same ages: the Dask run gives the pool's numbers (determinism across schedulers)."""
    from distributed import LocalCluster

    from bmcnn_hw.artefact import load_model
    from bmcnn_hw.lifetime import run_lifetime

    device = dataclasses.replace(load_model(build_dir).hardware.device, sigma_on_rel=0.15, sigma_off_rel=0.15)
    common = {"device": device, "retention": RetentionParams(fail_10y=0.01), "reads_per_s": 10.0, "progress": False,
              "calib_labels": mnist_train.labels[:32]}
    test, calib, times = mnist_test.head(200), mnist_train.images[:32], [0.0, 86400.0, TEN_YEARS_S]
    local = run_lifetime(build_dir, test, calib, times, 2, workers=2, **common)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        remote = run_lifetime(build_dir, test, calib, times, 2, scheduler=cluster.scheduler_address, **common)
    assert remote["points"] == local["points"]
