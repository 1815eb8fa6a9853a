"""Cell models and the nonlinear nodal solve: closed forms, the linear limit, ideal chips exact."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bmcnn_hw.config import CrossbarGeometry, DeviceParams, ReadoutParams
from bmcnn_hw.errors import ConfigError
from bmcnn_hw.golden.cells import LinearCell, SinhCell, cell_model
from bmcnn_hw.golden.chip import Chip, check_cell_geometry, sample_dvth
from bmcnn_hw.golden.crossbar import run_crossbar
from bmcnn_hw.golden.integer import run_integer
from bmcnn_hw.golden.readout import adc_codes, tia_clip
from bmcnn_hw.golden.tile_nonlinear import NonlinearTile
from bmcnn_hw.golden.tile_physics import tile_response
from bmcnn_hw.golden.tile_reader import PhysicsReader
from bmcnn_hw.presets import get_preset


def test_sinh_cell_carries_v_read_over_r_and_is_odd():
    params = DeviceParams(cell="sinh", sinh_v0_v=0.1, v_read_v=0.3)
    cell = SinhCell(params)
    r = np.array([1e4, 3e4, 2e5])
    assert np.allclose(cell.current(0.3, r), 0.3 / r, rtol=1e-14)
    assert np.allclose(cell.current(-0.3, r), -0.3 / r, rtol=1e-14)
    v = 0.05
    assert np.allclose(cell.current(v, r), 0.3 / (r * np.sinh(3.0)) * np.sinh(v / 0.1), rtol=1e-14)
    # superlinear: half the read voltage carries less than half the read current
    assert (cell.current(0.15, r) < 0.5 * cell.current(0.3, r)).all()


@pytest.mark.parametrize("bad, message", [
    ({"cell": "memristor"}, "cell must be one of linear, sinh, 1t1r"),
    ({"cell": "sinh", "sinh_v0_v": 0.0}, "sinh_v0_v must be a positive number"),
    ({"corner": "fs"}, "corner must be one of tt, ss, ff"),
    ({"v_wordline_v": 3.3}, "v_wordline_v must be in [0.5, 1.95] V"),
    ({"access_l_um": 0.1}, "access_l_um must be >= 0.15"),
    ({"sigma_vth_v": -0.01}, "sigma_vth_v must be a non-negative number"),
])
def test_bad_cell_parameters_are_one_clear_error(bad, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        DeviceParams(**bad)


def test_1t1r_refuses_bipolar_inputs_and_reference_encoding():
    params = DeviceParams(cell="1t1r")
    with pytest.raises(ConfigError, match="input_mode 'unipolar'"):
        check_cell_geometry(params, CrossbarGeometry(input_mode="bipolar"))
    with pytest.raises(ConfigError, match="'differential' encoding"):
        check_cell_geometry(params, CrossbarGeometry(encoding="reference"))


def test_rails_need_an_ideal_tia_and_clip_each_column():
    with pytest.raises(ConfigError, match="needs an ideal TIA"):
        ReadoutParams(v_swing_v=0.9, tia_gain=100.0)
    readout = ReadoutParams(v_swing_v=0.9, tia_rf_ohm=1e4)
    assert readout.clip_current_a == pytest.approx(9e-5)
    got = tia_clip(np.array([1e-4, 2e-5]), np.array([5e-5, 1e-4]), readout)
    assert got.tolist() == pytest.approx([9e-5 - 5e-5, 2e-5 - 9e-5])
    assert adc_codes(got, 1e-5, readout, 8).tolist() == [4, -7]


def test_vth_samples_are_seeded_truncated_normals():
    params = DeviceParams(cell="1t1r", sigma_vth_v=0.01)
    a = sample_dvth((400, 400), params, np.random.default_rng(3))
    assert np.array_equal(a, sample_dvth((400, 400), params, np.random.default_rng(3)))
    assert abs(a.std() / 0.01 - 1) < 0.01 and abs(a.mean()) < 1e-4 and np.abs(a).max() <= 0.06
    assert sample_dvth((2, 2), DeviceParams(), np.random.default_rng(0)) is None


@pytest.mark.parametrize("r_wire, r_source, r_tia", [(1.5, 0.0, 0.0), (0.0, 40.0, 0.0), (2.0, 30.0, 5.0),
                                                      (0.0, 0.0, 3.0)])
def test_nonlinear_solve_of_linear_cells_equals_the_linear_response(r_wire, r_source, r_tia):
    rng = np.random.default_rng(0)
    r = rng.choice([1e4, 1e5], size=(12, 10)) * (1 + 0.2 * rng.standard_normal((12, 10)))
    volts = rng.integers(0, 2, (7, 12)) * 0.2
    tile = NonlinearTile(LinearCell(DeviceParams()), r, None, r_wire, r_source, r_tia)
    cols, drivers = tile.read(volts)
    resp = tile_response(r, r_wire, r_source, r_tia)
    for got, want in ((cols, volts @ resp.transfer), (drivers, volts @ resp.admittance)):
        assert np.max(np.abs(got - want)) <= 1e-11 * np.max(np.abs(want))


def test_sinh_tile_obeys_kirchhoff_and_sags_more_than_linear():
    """Strong wires: KCL holds for the solved currents; the superlinear cells lose more
    current to the IR drop than linear ones of the same read resistance."""
    rng = np.random.default_rng(1)
    r = rng.choice([1e4, 1e5], size=(16, 8))
    volts = np.full((1, 16), 0.2)
    params = DeviceParams(cell="sinh", sinh_v0_v=0.1)
    cols_sinh, drivers_sinh = NonlinearTile(SinhCell(params), r, None, 5.0, 0.0, 0.0).read(volts)
    cols_lin, _ = NonlinearTile(LinearCell(params), r, None, 5.0, 0.0, 0.0).read(volts)
    assert np.isclose(cols_sinh.sum(), drivers_sinh.sum(), rtol=1e-12)  # what goes in comes out
    assert (cols_sinh < cols_lin).all()


@pytest.mark.parametrize("preset", ["rram-sinh", "rram-1t1r-sky130"])
def test_ideal_chip_of_every_cell_type_equals_the_integer_model(preset, compiled, mnist_test, request):
    """Ideal wires and devices: the ADC unit is the nominal cell's I_on - I_off, so every cell
    type reproduces the integer network bit for bit."""
    params = dataclasses.replace(get_preset(preset), r_wire_ohm=0.0, sigma_vth_v=0.0)
    table = request.getfixturevalue("nfet_table") if params.cell == "1t1r" else None
    chip = Chip(compiled, params, 0, transistor_table=table)
    images = mnist_test.images[:50]
    physics, _ = run_crossbar(compiled, images, PhysicsReader(chip))
    golden = run_integer(compiled, images)
    for a, b in zip(physics.accumulators + physics.outputs, golden.accumulators + golden.outputs, strict=True):
        assert np.array_equal(a, b)


def test_cell_model_needs_a_table_for_1t1r():
    from bmcnn_hw.errors import SimulationError

    with pytest.raises(SimulationError, match="transistor table"):
        cell_model(DeviceParams(cell="1t1r"))


def test_bit_planes_read_together_equal_plane_by_plane(compiled, mnist_test):
    """The slow path reads each distinct input row once over all bit planes; same accumulators
    and energy as reading plane by plane (sinh cells behind driver resistance: nonlinear reads)."""
    from bmcnn_hw.golden.crossbar import CrossbarAccumulator
    from bmcnn_hw.golden.layers import layer_rows

    params = DeviceParams(cell="sinh", sinh_v0_v=0.1, r_source_ohm=30.0, sigma_on_rel=0.2, sigma_off_rel=0.2)
    chip = Chip(compiled, params, 1)
    layer = compiled.layers[0]
    rows = layer_rows(layer, mnist_test.images[:2, None].astype(np.int64))
    reader = PhysicsReader(chip)
    together = CrossbarAccumulator(compiled, reader)
    assert together._planes_shareable(0, layer, rows.shape[0] * rows.shape[1])
    apart = CrossbarAccumulator(compiled, reader)
    apart._planes_shareable = lambda *_: False
    assert np.array_equal(together(0, layer, rows), apart(0, layer, rows))
    assert together.energy_j[0] == pytest.approx(apart.energy_j[0], rel=1e-12)
