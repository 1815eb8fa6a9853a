"""SPICE (ngspice through PySpice) agrees with the crossbar physics model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bmcnn_hw.config import DeviceParams
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.golden.crossbar import run_crossbar
from bmcnn_hw.golden.integer import run_integer
from bmcnn_hw.golden.tile_reader import PhysicsReader
from bmcnn_hw.spice.netlist import write_netlists
from bmcnn_hw.spice.run import SpiceReader
from tests.helpers import needs, random_fc_model

pytestmark = [pytest.mark.ngspice, needs("ngspice")]
RTOL = 1e-9


def _compare_tile(tmp_path, model, chip, bits):
    write_netlists(model, chip, tmp_path / "netlists")
    layer = model.layers[0]
    spice = SpiceReader(model, chip, tmp_path / "netlists")
    physics = PhysicsReader(chip)
    for rt in range(layer.tiling.n_row_tiles):
        for ct in range(layer.tiling.n_col_tiles):
            r0, r1 = layer.tiling.row_range(rt, layer.rows)
            c0, c1 = layer.tiling.col_range(ct, layer.cols)
            volts = bits[:, r0:r1] * chip.params.v_read_v
            got = spice.read(0, rt, ct, volts, c1 - c0)
            want = physics.read(0, rt, ct, volts, c1 - c0)
            for g, w in zip((got.i_plus, got.i_minus), (want.i_plus, want.i_minus), strict=True):
                scale = np.maximum(np.abs(w), chip.params.v_read_v * chip.params.g_off_s)
                assert np.max(np.abs(g - w) / scale) <= RTOL


@settings(max_examples=8, deadline=None)
@given(rows=st.integers(1, 70), cols=st.integers(1, 40), seed=st.integers(0, 2**16),
       sigma=st.sampled_from([0.0, 0.1, 0.5]), distribution=st.sampled_from(["normal", "lognormal"]))
def test_random_tiles_agree(tmp_path_factory, rows, cols, seed, sigma, distribution):
    device = DeviceParams(sigma_on_rel=sigma, sigma_off_rel=sigma, distribution=distribution)
    model = random_fc_model(rows, cols, seed, tile_rows=32, tile_cols=16, device=device)
    chip = Chip(model, device, seed)
    bits = np.random.default_rng(seed).integers(0, 2, (4, rows)).astype(np.uint8)
    _compare_tile(tmp_path_factory.mktemp("tile"), model, chip, bits)


def test_full_128_tile_with_stuck_devices(tmp_path):
    device = DeviceParams(sigma_on_rel=0.2, sigma_off_rel=0.2, p_stuck_on=0.01, p_stuck_off=0.01)
    model = random_fc_model(128, 128, 1, device=device)
    chip = Chip(model, device, 3)
    bits = np.random.default_rng(0).integers(0, 2, (3, 128)).astype(np.uint8)
    _compare_tile(tmp_path, model, chip, bits)


@pytest.mark.slow
def test_real_model_tiles_and_image_through_spice(compiled, build_dir, mnist_test):
    chip = Chip(compiled)
    images = mnist_test.images[:1]
    reader = SpiceReader(compiled, chip, build_dir / "netlists")
    spice, spice_reads = run_crossbar(compiled, images, reader, record=True)
    _, physics_reads = run_crossbar(compiled, images, PhysicsReader(chip), record=True)
    for s, p in zip(spice_reads.reads, physics_reads.reads, strict=True):
        for got, want in ((s.i_plus, p.i_plus), (s.i_minus, p.i_minus)):
            assert np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-30)) <= RTOL
        assert np.array_equal(s.codes, p.codes)  # identical ADC codes
    golden = run_integer(compiled, images)
    for a, b in zip(spice.accumulators + spice.outputs, golden.accumulators + golden.outputs, strict=True):
        assert np.array_equal(a, b)
    # conv: characterised by superposition (25 rows + 3 checks); fc tiles: one solve per image each
    assert (0, 0, 0) in reader.responses
    assert reader.solves == 25 + 3 + 36 + 1


@settings(max_examples=6, deadline=None)
@given(rows=st.integers(1, 20), cols=st.integers(1, 10), seed=st.integers(0, 2**16),
       r_wire=st.sampled_from([0.5, 3.0]), r_source=st.sampled_from([0.0, 75.0]))
def test_random_tiles_with_wire_resistance_agree(tmp_path_factory, rows, cols, seed, r_wire, r_source):
    device = DeviceParams(sigma_on_rel=0.3, sigma_off_rel=0.3, r_wire_ohm=r_wire, r_source_ohm=r_source)
    model = random_fc_model(rows, cols, seed, tile_rows=32, tile_cols=16, device=device)
    chip = Chip(model, device, seed)
    bits = np.random.default_rng(seed).integers(0, 2, (3, rows)).astype(np.uint8)
    _compare_tile(tmp_path_factory.mktemp("wtile"), model, chip, bits)
