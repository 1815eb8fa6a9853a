"""Tiles fitted to small layers (``compile --fit-tiles``) and the ngspice port limit of a tile."""

from __future__ import annotations

import dataclasses
import re

import pytest

from bmcnn_hw.artefact import load_model
from bmcnn_hw.compile.tile import NGSPICE_MAX_PORTS, tile
from bmcnn_hw.config import CrossbarGeometry
from bmcnn_hw.errors import ConfigError
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.golden.crossbar import run_crossbar
from bmcnn_hw.golden.integer import run_integer
from bmcnn_hw.golden.tile_reader import PhysicsReader
from bmcnn_hw.ppa.schedule import layer_schedule
from tests.helpers import hidden_fc_model, run_cli


def retiled(model, **geometry):
    """``model`` tiled again with its geometry's fields replaced by ``geometry``."""
    hardware = dataclasses.replace(model.hardware, geometry=dataclasses.replace(model.hardware.geometry, **geometry))
    return tile(dataclasses.replace(model, hardware=hardware))


def test_a_fitted_tile_is_no_larger_than_its_layer():
    geometry = CrossbarGeometry(512, 128, fit_tiles=True)
    assert geometry.layer_tile(25, 32) == (25, 32)       # smaller both ways: the layer's own size
    assert geometry.layer_tile(4608, 128) == (512, 128)  # larger: the geometry's tiles
    assert geometry.layer_tile(128, 10) == (128, 10)
    assert CrossbarGeometry(512, 128).layer_tile(25, 32) == (512, 128)  # off: every tile full size


def test_fit_tiles_must_be_a_bool():
    with pytest.raises(ConfigError, match="fit_tiles must be true or false"):
        CrossbarGeometry(fit_tiles="yes")  # type: ignore[arg-type]


def test_fitting_drops_the_padding_devices_and_tias_only():
    """The 48 x 8 hidden layer and its 8 x 2 output layer on 64 x 16 tiles: fitted, the same reads,
    conversions and beats on fewer devices and TIAs."""
    padded = retiled(hidden_fc_model(48, 8, input_bits=1, tile_rows=64, seed=2), tile_cols=16)
    fitted = retiled(padded, fit_tiles=True)
    assert [(ly.tiling.tile_rows, ly.tiling.tile_cols) for ly in fitted.layers] == [(48, 8), (8, 2)]
    assert all(ly.tiling.pad_rows == ly.tiling.pad_cols == 0 for ly in fitted.layers)
    for before, after in zip(padded.layers, fitted.layers, strict=True):
        a, b = layer_schedule(before, "reference"), layer_schedule(after, "reference")
        assert (a.reads, a.conversions, a.beats, a.macs) == (b.reads, b.conversions, b.beats, b.macs)
        assert b.devices == after.rows * (after.cols + 1) < a.devices
        assert b.tias == after.cols + 1 < a.tias


def test_a_fitted_build_stays_golden_on_real_images(tmp_path, checkpoint, mnist_test):
    code, out, err = run_cli("compile", checkpoint, "-o", tmp_path / "b", "--tile", "512x128", "--fit-tiles",
                             "--encoding", "reference")
    assert code == 0, err
    model = load_model(tmp_path / "b")
    assert model.hardware.geometry.fit_tiles
    for layer in model.layers:
        if not layer.digital:
            assert layer.tiling.tile_rows == min(512, layer.rows) and layer.tiling.tile_cols == min(128, layer.cols)
            assert f"tiles of {layer.tiling.tile_rows}x{layer.tiling.tile_cols}" in out
    images = mnist_test.images[:50]
    physics, _ = run_crossbar(model, images, PhysicsReader(Chip(model)))
    assert physics.same_as(run_integer(model, images))
    first = next(ly for ly in model.layers if not ly.digital)
    netlist = (tmp_path / "b" / "netlists" / f"{first.name}_r0_c0.sub").read_text()
    ports = re.search(r"^\.subckt \S+ (.*)$", netlist, re.M).group(1).split()
    assert len(ports) == min(first.rows, 512) + min(first.cols, 128) + 1  # rows, weight columns, reference


def test_a_tile_ngspice_cannot_load_is_refused_at_compile(tmp_path, checkpoint):
    """A hidden layer of the test network has more rows than 1024 + 2 x 128 ports allow."""
    code, _, err = run_cli("compile", checkpoint, "-o", tmp_path / "b", "--tile", "2048x128")
    assert code == 2
    assert re.fullmatch(rf"bmcnn-hw: error: \w+: a 2048x128 tile is a netlist subcircuit of \d+ ports \(\d+ rows \+ "
                        rf"256 differential columns\); ngspice accepts at most {NGSPICE_MAX_PORTS}: choose --tile "
                        rf"with rows \+ physical columns <= {NGSPICE_MAX_PORTS}\n", err), err
    assert not (tmp_path / "b").exists()


def test_the_port_limit_counts_used_rows_and_physical_columns():
    model = hidden_fc_model(40, 8, input_bits=1, tile_rows=64, seed=0)
    assert retiled(model, tile_rows=NGSPICE_MAX_PORTS, tile_cols=8)  # 40 used rows + 16 columns: fine
    wide = hidden_fc_model(NGSPICE_MAX_PORTS - 8, 4, input_bits=1, tile_rows=2048, seed=0)
    assert wide.layers[0].tiling.tile_rows == 2048  # 996 used rows + 8 differential columns: the limit
    with pytest.raises(ConfigError, match=r"fc0: .* 1006 ports \(996 rows \+ 10 differential columns\)"):
        hidden_fc_model(NGSPICE_MAX_PORTS - 8, 5, input_bits=1, tile_rows=2048, seed=0)
