"""The cost-model TOML: shipped values with sources, and clear errors for bad files."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bmcnn_hw.errors import ConfigError
from bmcnn_hw.ppa.cost_model import default_cost_model_path, load_cost_model
from bmcnn_hw.ppa.schedule import layer_schedule
from tests.helpers import random_fc_model


def test_shipped_model_has_sources_and_the_survey_figures():
    cost = load_cost_model()
    assert all(len(s) > 40 for s in cost.sources().values())
    assert cost.adc.energy_per_conversion_j(6) == pytest.approx(104.8e-15 * 64)
    assert cost.adc.area_um2 == 51500.0 and "130-180 nm" in cost.adc.source
    # a five-transistor OTA at 1 GHz GBW into 0.25 pF, gm/I_D 15: 2 x 2 pi 1e9 0.25e-12 / 15 A at 1.8 V
    assert cost.tia.bias_power_w == pytest.approx(2 * 2 * math.pi * 1e9 * 0.25e-12 / 15 * 1.8)
    assert cost.array.segment_cap_f == pytest.approx(0.14 * 25.7784e-18 + 2 * 40.567e-18, rel=1e-3)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace("fom_walden_j = 104.8e-15", "fom_walden_j = -1.0"),
     r"\[adc\]: fom_walden_j must be a positive"),
    (lambda t: t.replace("area_um2 = 350.0\n", ""), r"\[tia\]: lacks area_um2; expected "),
    (lambda t: t.replace("gbw_hz = 1e9", "gbw_hz = 1e9\nbandwidth = 2"), r"\[tia\]: unknown key\(s\) bandwidth; "),
    (lambda t: t.replace("[array]", "[arrays]"), r"missing \[array\] table"),
    (lambda t: t.replace("gbw_hz = 1e9", 'gbw_hz = "1 GHz"'), r"\[tia\]: gbw_hz = '1 GHz' is not a number"),
    (lambda t: t + "\n[[", "not valid TOML"),
])
def test_bad_cost_model_names_file_and_field(tmp_path, edit, message):
    path = tmp_path / "cost.toml"
    path.write_text(edit(default_cost_model_path().read_text()))
    with pytest.raises(ConfigError, match=message) as info:
        load_cost_model(path)
    assert str(path) in str(info.value)


def test_a_cost_model_without_sources_is_refused(tmp_path):
    text = default_cost_model_path().read_text()
    path = tmp_path / "cost.toml"
    lines = [line if not line.startswith("source") or "Murmann" not in line else 'source = " "'
             for line in text.splitlines()]
    path.write_text("\n".join(lines))
    with pytest.raises(ConfigError, match=r"\[adc\]: source must name where the numbers come from"):
        load_cost_model(path)


def test_schedule_counts_of_a_tiled_fc_layer():
    model = random_fc_model(300, 20, seed=0, tile_rows=128, tile_cols=16)
    s = layer_schedule(model.layers[0], "differential")
    assert (s.row_tiles, s.col_tiles, s.reads, s.tile_reads) == (3, 2, 1, 6)
    assert s.conversions == s.beats == 3 * 20
    assert s.macs == 300 * 20
    assert s.tias == 6 * 32 and s.devices == 6 * 128 * 32
    assert layer_schedule(model.layers[0], "reference").tias == 6 * 17


def test_missing_tools_and_files_name_the_apt_line(tmp_path):
    from bmcnn_hw.errors import ToolNotFound
    from bmcnn_hw.ppa.tools import DEFAULT_LIBERTY, require_file, require_tool

    with pytest.raises(ToolNotFound, match="apt-get install yosys opensta qflow-tech-osu018"):
        require_tool("yosys-not-installed-here")
    with pytest.raises(ToolNotFound, match=r"Liberty file .*nope.lib not found$"):
        require_file(tmp_path / "nope.lib", "Liberty file")
    with pytest.raises(ToolNotFound, match="comes with `apt-get install yosys opensta qflow-tech-osu018`"):
        require_file(DEFAULT_LIBERTY.with_name("missing.lib"), "Liberty file")


def test_adcs_serve_used_columns_only():
    from bmcnn_hw.artefact import CompiledLayer
    from bmcnn_hw.compile.tile import tile_layer
    from bmcnn_hw.ppa.schedule import adc_count, conversions_per_read

    layer = CompiledLayer("fc", "fc", (300,), (200,), 1, 1, 1, np.ones((300, 200), np.int8), -300, 300,
                          tiling=tile_layer(300, 200, 128, 128), adc_bits=8)
    # 3 row tiles x (128 + 72 used columns of the two column tiles); 56 padding columns get none
    assert adc_count(layer, 1) == 3 * 200
    assert adc_count(layer, 16) == 3 * (8 + 5)
    assert conversions_per_read(layer, 16) == 16 and conversions_per_read(layer, 128) == 128
    # across tiles: 600 used columns of 6 tiles side by side, 256 per ADC: 3 ADCs, the last with 88
    assert adc_count(layer, 256) == 3 and conversions_per_read(layer, 256) == 256
    assert adc_count(layer, 768) == 1 and conversions_per_read(layer, 768) == 600
    narrow = CompiledLayer("fc2", "fc", (128,), (10,), 1, 1, 1, np.ones((128, 10), np.int8), -128, 128,
                           tiling=tile_layer(128, 10, 128, 10), adc_bits=8)  # a fitted 128 x 10 tile
    assert adc_count(narrow, 128) == 1 and conversions_per_read(narrow, 128) == 10
    assert adc_count(narrow, 4) == 3 and conversions_per_read(narrow, 4) == 4


def test_zero_detect_is_optional_until_a_build_skips_reads(tmp_path):
    text = default_cost_model_path().read_text()
    start = text.index("[zero_detect]")
    path = tmp_path / "cost.toml"
    path.write_text(text[:start] + text[text.index("[array]"):])
    model = load_cost_model(path)
    assert model.zero_detect is None and "zero_detect" not in model.sources()
    with pytest.raises(ConfigError, match=r"no \[zero_detect\] table, which a build compiled with --skip-zero-reads"):
        model.require_zero_detect()
    assert load_cost_model().require_zero_detect().energy_per_read_j(25) == pytest.approx(24 * 0.110e-12)
    path.write_text(text + "\n[extra]\nx = 1\n")
    with pytest.raises(ConfigError, match=r"unknown table\(s\) \['extra'\]"):
        load_cost_model(path)
