"""``bmcnn-hw explore``: a small grid end to end, Pareto flags, and bad grid files."""

from __future__ import annotations

import json

import pytest

from bmcnn_hw.build import build
from bmcnn_hw.errors import ConfigError
from bmcnn_hw.explore import (
    _accuracy,
    _calibration,
    design_points,
    distinguishing_labels,
    explore_markdown,
    load_grid,
    pareto_front,
    point_hardware,
    point_label,
)
from tests.helpers import REPO, needs, run_cli

GRID = """[axes]
tile = ["64x64", "128x128"]
adc_bits = [0]
[accuracy]
sigma = 0.1
chips = 2
images = 200
[ppa]
images = 2
digital = false
"""


@pytest.mark.ngspice
@pytest.mark.slow
@needs("ngspice")
def test_explore_small_grid_writes_table_and_pareto_plot(tiny_checkpoint, mnist_dir, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    out = tmp_path / "explore"
    code, stdout, err = run_cli("explore", tiny_checkpoint, "--grid", grid, "-o", out, "--workers", "2",
                                "--data-dir", mnist_dir)
    assert code == 0, err
    result = json.loads((out / "explore.json").read_text())
    assert [p["label"] for p in result["points"]] == ["64x64_adc0_ideal_differential",
                                                      "128x128_adc0_ideal_differential"]
    for point in result["points"]:
        assert 0.5 < point["accuracy"]["mean"] <= 1 and len(point["accuracy"]["chips"]) == 2
        assert point["energy_per_inference_j"] > 0 and point["area_mm2"] > 0
        assert (out / "points" / point["label"] / "ppa.json").is_file()
    assert any(p["pareto_energy_per_inference_j"] for p in result["points"])
    assert (out / "explore.png").stat().st_size > 10_000 and "| point |" in stdout
    # as after an interruption: the second point partial (no result.json, a half-written file)
    second = out / "points" / result["points"][1]["label"]
    (second / "result.json").unlink()
    (second / "half-written").write_text("x")
    code, _, err = run_cli("explore", tiny_checkpoint, "--grid", grid, "-o", out, "--data-dir", mnist_dir)
    assert code == 0, err
    assert "1 of 2 points finished by an earlier run" in err
    again = json.loads((out / "explore.json").read_text())
    assert again["points"][0] == result["points"][0]  # reused as recorded, not measured again
    assert again["points"][1]["seconds"] != result["points"][1]["seconds"]  # measured afresh ...
    assert again["points"][1]["accuracy"] == result["points"][1]["accuracy"]  # ... to the same figures
    assert not (second / "half-written").exists() and (second / "result.json").is_file()


def test_pareto_front_keeps_only_undominated_points():
    assert pareto_front([(0.9, 10.0), (0.95, 20.0), (0.9, 30.0), (0.8, 5.0), (0.95, 20.0)]) == \
        [True, True, False, True, True]


def test_grid_defaults_and_combinations(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text('[axes]\ntile = ["32x32", "64x64"]\nadc_bits = [0, 5]\n')
    grid = load_grid(path)
    assert len(design_points(grid)) == 4 and grid["accuracy"]["chips"] == 1 and grid["ppa"]["digital"] is True
    assert grid["accuracy"]["calib"] == 0  # untuned unless the grid asks
    assert design_points(grid)[1] == {"tile": "32x32", "fit_tiles": False, "adc_bits": 5, "adc_range": "rows",
                                      "device": "ideal", "encoding": "differential", "clock_gating": False,
                                      "columns_per_adc": 1, "skip_zero_reads": False, "sense_layers": "",
                                      "columns_per_comparator": 0, "rails": False, "hardwired_thresholds": False}


def test_every_point_of_a_grid_has_its_own_directory(tmp_path):
    """Labels name point directories: two points with one label would overwrite each other."""
    path = tmp_path / "g.toml"
    path.write_text('[axes]\ntile = ["32x32", "64x64"]\nadc_bits = [0, 5]\nadc_range = ["rows", "weights", "columns"]\n'
                    'encoding = ["differential", "reference"]\nclock_gating = [false, true]\n'
                    'columns_per_adc = [1, 16]\nskip_zero_reads = [false, true]\nsense_layers = ["", "auto"]\n'
                    'fit_tiles = [false, true]\n')
    points = design_points(load_grid(path))
    assert len(points) == 768 and len({point_label(p) for p in points}) == 768
    fitted = next(p for p in points if p["fit_tiles"])
    assert point_hardware(fitted).geometry.fit_tiles and point_label(fitted).startswith("32x32-fit_adc0_")
    skipping = next(p for p in points if p["skip_zero_reads"] and not p["sense_layers"])
    assert point_hardware(skipping).readout.skip_zero_reads and point_label(skipping).endswith("_skip0")
    auto = {**skipping, "skip_zero_reads": "auto"}
    assert point_hardware(auto).readout.skip_zero_reads == "auto" and point_label(auto).endswith("_skip0-auto")
    path.write_text('[axes]\nskip_zero_reads = [false, "auto", "fc1,fc2"]\n')
    assert load_grid(path)["axes"]["skip_zero_reads"] == [False, "auto", "fc1,fc2"]
    path.write_text('[axes]\nskip_zero_reads = [1]\n')
    with pytest.raises(ConfigError, match=r"\[axes\]: skip_zero_reads = \[1\] is not a list \(each item true or "
                                          r"false or a string\)$"):
        load_grid(path)
    sensing = next(p for p in points if p["sense_layers"])
    assert point_hardware(sensing).readout.sense_layers == "auto" and point_label(sensing).endswith("_sense-auto")
    railed = {**sensing, "columns_per_comparator": 8, "rails": True}
    readout = point_hardware(railed).readout
    assert readout.columns_per_comparator == 8 and readout.v_swing_v == 0.9 and point_label(railed).endswith(
        "_sense-auto_cpc8_rails")
    assert point_hardware(sensing).readout.v_swing_v == 0  # linear cells: no rails unless asked


@pytest.mark.parametrize(("text", "message"), [
    ("[axes]\n", r"\[axes\] must list at least one of tile, "),
    ('[axes]\ntile = []\n', r"\[axes\] must list at least one of .*, each with one value or more"),
    ("[accuracy]\nchips = 2\n", r"g\.toml: lacks axes"),
    ('[axes]\ntiles = ["64x64"]\n', r"\[axes\]: unknown key\(s\) tiles; expected some of "),
    ("[axes]\nadc_bits = [5.5]\n", r"\[axes\]: adc_bits = \[5\.5\] is not a list \(each item a whole number\)$"),
    ('[axes]\ndevice = ["unobtainium"]\n', "unknown device preset 'unobtainium'"),
    ('[axes]\ntile = ["64"]\n', "tile size must look like RxC"),
    ('[axes]\nadc_range = ["tile"]\n', r"\[axes\]: adc_range = \['tile'\] is not a list \(each "
                                         r"item one of 'rows', 'weights', 'columns'\)$"),
    ('[axes]\ntile = ["64x64"]\n[accuracy]\nchips = 0\n', r"\[accuracy\]: chips = 0 must be >= 1$"),
    ('[axes]\ntile = ["64x64"]\n[accuracy]\ncalib = -1\n', r"\[accuracy\]: calib = -1 must be >= 0 \(0: untuned\)$"),
    ('[axes]\ntile = ["64x64"]\n[ppa]\ndigital = "yes"\n', r"\[ppa\]: digital = 'yes' is not true or false$"),
])
def test_bad_grid_names_the_field(tmp_path, text, message):
    path = tmp_path / "g.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_grid(path)


def test_explore_bad_grid_is_one_line(checkpoint, tmp_path):
    path = tmp_path / "g.toml"
    path.write_text("[axes]\nadc_bits = [-1]\n")
    code, _, err = run_cli("explore", checkpoint, "--grid", path, "-o", tmp_path / "x")
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_a_tuning_grid_ranks_the_tuned_accuracy_and_keeps_the_untuned(checkpoint, mnist_train, mnist_test, tmp_path):
    """With ``[accuracy] calib`` every sampled chip is measured untuned and after guarded tuning;
    a reference-encoded chip at sigma 0.2 (a fixed reference column, so every device's spread
    shifts every column) is near chance untuned and recovered by tuning."""
    path = tmp_path / "g.toml"
    path.write_text('[axes]\ntile = ["128x128"]\nencoding = ["reference"]\n'
                    "[accuracy]\nsigma = 0.2\nchips = 2\nimages = 300\ncalib = 256\n")
    grid = load_grid(path)
    model = build(checkpoint, tmp_path / "b", point_hardware(design_points(grid)[0]))
    calib = _calibration(grid, mnist_train)
    assert len(calib[0]) == 256
    acc = _accuracy(model, grid, mnist_test.images, mnist_test.labels, calib)
    assert acc["tuned"] and len(acc["chips"]) == len(acc["untuned_chips"]) == 2
    assert acc["untuned_mean"] < 0.5 < 0.9 < acc["mean"], acc
    result = {"grid": grid, "points": [{"label": "p", "adc_bits": [6], "accuracy": acc, "energy_per_inference_j": 1e-9,
                                        "area_mm2": 1.0, "latency_s": 1e-6, "tops_per_w": 1.0,
                                        "pareto_energy_per_inference_j": True, "pareto_area_mm2": True}]}
    table = explore_markdown(result)
    assert "after guarded tuning on 256 calibration (training) images" in table
    assert f"{100 * acc['untuned_mean']:.2f} +- " in table
    with pytest.raises(ConfigError, match=r"\[accuracy\] calib = 256: the calibration \(training\) set holds 0 images"):
        _calibration(grid, None)


@pytest.mark.parametrize("name", ["explore_grid.toml", "explore_efficient.toml"])
def test_shipped_grids_load_and_every_point_is_a_valid_build(name):
    grid = load_grid(REPO / "flows" / name)
    for point in design_points(grid):
        point_hardware(point)
    if name == "explore_efficient.toml":
        assert grid["accuracy"]["calib"] == 2048


def test_plot_labels_keep_what_tells_points_apart():
    names, shared = distinguishing_labels(["512x128_adc0w_reference_cpa64", "512x128_adc0w_differential_cpa128"])
    assert names == ["reference cpa64", "differential cpa128"] and shared == "512x128 adc0w"
    assert distinguishing_labels(["64x64_adc0"]) == (["64x64 adc0"], "")
