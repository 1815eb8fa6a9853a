"""Programming map export: one row per physical device, and the chip rebuilt from it."""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest

from bmcnn_hw.artefact import save_model
from bmcnn_hw.config import CrossbarGeometry, HardwareConfig
from bmcnn_hw.errors import ArtefactError, DataError
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.golden.crossbar import physics_predictions
from bmcnn_hw.programming import COLUMNS, header_path, load_programming_map, write_programming_map
from tests.helpers import needs, random_fc_model, run_cli


def _same_devices(a: Chip, b: Chip) -> bool:
    def same(x, y):
        return (x is None and y is None) or (x is not None and y is not None and np.array_equal(x, y))

    return a.tiles.keys() == b.tiles.keys() and all(
        same(a.tiles[k].r_plus, b.tiles[k].r_plus) and same(a.tiles[k].r_minus, b.tiles[k].r_minus)
        and same(a.tiles[k].r_ref, b.tiles[k].r_ref) and same(a.tiles[k].dvth_plus, b.tiles[k].dvth_plus)
        and same(a.tiles[k].dvth_minus, b.tiles[k].dvth_minus) for k in a.tiles)


@pytest.mark.slow
def test_map_of_a_sampled_chip_rebuilds_the_same_chip(compiled, build_dir, mnist_test, tmp_path):
    device = dataclasses.replace(compiled.hardware.device, sigma_on_rel=0.2, sigma_off_rel=0.3, p_stuck_on=0.01)
    chip = Chip(compiled, device, 11)
    header = write_programming_map(compiled, chip, build_dir, tmp_path / "map.csv")
    expected = sum(2 * layer.tiling.tile_rows * layer.tiling.tile_cols * layer.tiling.n_row_tiles
                   * layer.tiling.n_col_tiles for layer in compiled.layers)
    assert header["devices"] == expected and header["chip"]["seed"] == 11
    back = load_programming_map(compiled, build_dir, tmp_path / "map.csv")
    assert back.seed == 11 and back.params == device and _same_devices(chip, back)
    images = mnist_test.images[:50]
    assert np.array_equal(physics_predictions(compiled, chip, images), physics_predictions(compiled, back, images))


def test_rows_name_each_device_its_weight_and_target(compiled, build_dir, tmp_path):
    write_programming_map(compiled, Chip(compiled), build_dir, tmp_path / "map.csv")
    with open(tmp_path / "map.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        rows = [row for _, row in zip(range(300), reader, strict=False)]
    layer = compiled.layers[0]
    for row in rows:
        w = int(row["weight"])
        if int(row["weight_row"]) >= 0:
            assert w == layer.weight[int(row["weight_row"]), int(row["weight_col"])]
        on = (w > 0) if row["side"] == "G+" else (w < 0)
        assert row["state"] == ("ON" if on else "OFF")
        assert float(row["target_ohm"]) == (10e3 if on else 100e3) == float(row["sampled_ohm"])  # ideal chip
    # conv0 has 25 rows in a 128-row tile: its padding rows are devices too, OFF on both sides
    padding = [r for r in rows if int(r["weight_row"]) < 0]
    assert not padding or all(r["state"] == "OFF" for r in padding)


def test_reference_encoding_maps_the_reference_column(tmp_path):
    model = random_fc_model(40, 5, seed=3, tile_rows=32, tile_cols=4)
    model = dataclasses.replace(model, hardware=HardwareConfig(
        geometry=CrossbarGeometry(32, 4, encoding="reference"), device=model.hardware.device))
    from bmcnn_hw.compile.tile import tile

    model = tile(model)
    save_model(model, tmp_path / "b")
    chip = Chip(model, dataclasses.replace(model.hardware.device, sigma_on_rel=0.1), 2)
    header = write_programming_map(model, chip, tmp_path / "b", tmp_path / "map.csv")
    assert header["devices"] == 4 * 32 * (4 + 1)  # 2 x 2 tiles of 32 rows x (4 weight columns + reference)
    sides = [row[8] for row in csv.reader(open(tmp_path / "map.csv"))][1:]
    assert sides.count("ref") == 4 * 32
    assert _same_devices(chip, load_programming_map(model, tmp_path / "b", tmp_path / "map.csv"))


@needs("ngspice")
@pytest.mark.ngspice
def test_one_t_one_r_threshold_shifts_round_trip(tmp_path, nfet_table):
    from bmcnn_hw.presets import get_preset

    device = dataclasses.replace(get_preset("rram-1t1r-sky130"), sigma_vth_v=0.02, sigma_on_rel=0.1)
    model = random_fc_model(20, 3, seed=1, tile_rows=16, tile_cols=4, device=device)
    save_model(model, tmp_path / "b")
    chip = Chip(model, device, 4, transistor_table=nfet_table)
    write_programming_map(model, chip, tmp_path / "b", tmp_path / "map.csv")
    assert _same_devices(chip, load_programming_map(model, tmp_path / "b", tmp_path / "map.csv"))


@pytest.mark.slow
def test_an_edited_truncated_or_foreign_map_is_refused(compiled, build_dir, tmp_path):
    path = tmp_path / "map.csv"
    write_programming_map(compiled, Chip(compiled), build_dir, path)
    text = path.read_text()
    path.write_text(text.replace("100000.0", "99000.0", 1))
    with pytest.raises(DataError, match=r"SHA-256 differs from map\.json"):
        load_programming_map(compiled, build_dir, path)
    path.write_text(text)
    header = json.loads(header_path(path).read_text())
    header_path(path).write_text(json.dumps({**header, "manifest_sha256": "0" * 64}))
    with pytest.raises(ArtefactError, match="the map is for another build"):
        load_programming_map(compiled, build_dir, path)
    header_path(path).unlink()
    with pytest.raises(DataError, match=r"map\.json: missing"):
        load_programming_map(compiled, build_dir, path)


@pytest.mark.slow
def test_a_malformed_row_names_its_line(compiled, build_dir, tmp_path):
    path = tmp_path / "map.csv"
    write_programming_map(compiled, Chip(compiled), build_dir, path)
    lines = path.read_text().splitlines(keepends=True)
    fields = lines[3].split(",")
    fields[COLUMNS.index("sampled_ohm")] = "-5"
    lines[3] = ",".join(fields)
    path.write_text("".join(lines))
    header = json.loads(header_path(path).read_text())
    from bmcnn_hw.io_utils import sha256_file

    header_path(path).write_text(json.dumps({**header, "csv_sha256": sha256_file(path)}))
    with pytest.raises(DataError, match=r"map.csv:4: sampled_ohm must be a positive resistance"):
        load_programming_map(compiled, build_dir, path)


@pytest.mark.slow
def test_export_command(build_dir, tmp_path):
    code, out, err = run_cli("export", build_dir, "--programming", tmp_path / "map.csv", "--chip-seed", "3",
                             "--sigma-on", "0.1")
    assert code == 0, err
    assert "devices of 38 tiles (chip seed 3)" in out
    assert json.loads((tmp_path / "map.json").read_text())["chip"]["sigma_on_rel"] == 0.1
    code, out, err = run_cli("export", build_dir, "--programming", tmp_path / "map.csv", "--chip-seed", "4")
    assert code == 2 and "pass --force" in err  # an earlier map is kept ...
    assert json.loads((tmp_path / "map.json").read_text())["chip"]["seed"] == 3
    code, out, err = run_cli("export", build_dir, "--programming", tmp_path / "map.csv", "--chip-seed", "4", "--force")
    assert code == 0 and json.loads((tmp_path / "map.json").read_text())["chip"]["seed"] == 4  # ... unless asked
    code, out, err = run_cli("export", tmp_path / "nothing", "--programming", tmp_path / "m.csv")
    assert code == 2 and "manifest.json: missing" in err and not (tmp_path / "m.csv").exists()
