"""Nodal tile model: limits, reciprocity, IR drop, energy, finite-gain TIA."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bmcnn_hw.compile.tile import tile
from bmcnn_hw.config import CrossbarGeometry, DeviceParams, HardwareConfig
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.golden.crossbar import run_crossbar
from bmcnn_hw.golden.integer import run_integer
from bmcnn_hw.golden.tile_physics import tile_response
from bmcnn_hw.golden.tile_reader import PhysicsReader


def _tile(seed=0, rows=12, cols=10):
    return np.random.default_rng(seed).choice([1e4, 1e5], size=(rows, cols))


def test_vanishing_wire_resistance_approaches_the_ideal_tile():
    r = _tile()
    ideal = tile_response(r)
    nearly = tile_response(r, r_wire_ohm=1e-3)  # IR drop ~ 1e-3 ohm * 20 cells * 1e-4 S ~ 2e-6
    assert np.allclose(nearly.transfer, ideal.transfer, rtol=1e-4, atol=0)
    assert np.allclose(nearly.admittance, ideal.admittance, rtol=1e-4, atol=1e-4 * ideal.admittance.max())


def test_source_resistance_closed_form_matches_nodal():
    r = _tile(1)
    closed = tile_response(r, r_source_ohm=200.0)
    nodal = tile_response(r, r_wire_ohm=1e-3, r_source_ohm=200.0)  # IR drop ~ 1e-3 * 12 * 1e-4 S
    assert np.allclose(closed.transfer, nodal.transfer, rtol=1e-4, atol=0)


def test_reciprocity_and_ir_drop():
    r = _tile(2, 20, 16)
    resp = tile_response(r, r_wire_ohm=5.0, r_source_ohm=30.0)
    assert np.allclose(resp.admittance, resp.admittance.T, rtol=1e-9, atol=1e-18)
    ideal = tile_response(r)
    assert (resp.transfer < ideal.transfer).all()  # every path loses voltage along the wires
    volts = np.full(20, 0.2)
    power = volts @ resp.admittance @ volts
    assert 0 < power < volts @ ideal.admittance @ volts


@pytest.mark.parametrize("r_source", [0.0, 40.0])
def test_adjoint_transfer_equals_one_solve_per_row(r_source):
    """A tile with fewer columns than rows gets its transfer from one solve per column (the
    nodal matrix is symmetric); it must equal the solve per row, and its admittance (computed on
    first use) the row solve's. A mutant that drops the symmetric coupling term or the source
    conductance in ``transfer_adjoint`` fails here."""
    from bmcnn_hw.golden.tile_physics import _NodalCircuit

    r = _tile(4, 30, 7) * (1 + 0.1 * np.random.default_rng(5).standard_normal((30, 7)))
    resp = tile_response(r, r_wire_ohm=2.0, r_source_ohm=r_source, r_tia_in_ohm=15.0)
    transfer, admittance = _NodalCircuit(1 / r, 2.0, r_source, 15.0).solve_rows()
    assert np.allclose(resp.transfer, transfer, rtol=1e-12, atol=0)
    assert np.array_equal(resp.admittance, admittance)
    assert not resp.transfer.flags.writeable and not resp.admittance.flags.writeable


@pytest.mark.parametrize("r_source", [0.0, 40.0])
def test_a_few_reads_solve_their_driver_currents_without_the_admittance(r_source):
    """Energy of a few reads (a SPICE check of two images) comes from one solve per distinct read,
    equal to ``volts @ admittance``; once the reads solved reach half the rows the admittance is
    computed and serves the rest. A mutant that drops the coupling's sign or the source
    conductance in ``driver_currents`` fails here."""
    from bmcnn_hw.golden.tile_physics import _NodalCircuit

    r = _tile(6, 40, 9) * (1 + 0.1 * np.random.default_rng(7).standard_normal((40, 9)))
    admittance = _NodalCircuit(1 / r, 2.0, r_source, 15.0).solve_rows()[1]
    resp = tile_response(r, r_wire_ohm=2.0, r_source_ohm=r_source, r_tia_in_ohm=15.0 + 1e-9)  # not memoised
    volts = 0.2 * np.random.default_rng(8).integers(0, 2, (12, 40))
    volts[6:] = volts[:6]  # repeated reads are solved once
    few = resp.driver_currents(volts)
    assert callable(resp._admittance) and resp.solved_reads == 6
    assert np.allclose(few, volts @ admittance, rtol=1e-10, atol=1e-12 * np.abs(few).max())
    more = 0.2 * np.random.default_rng(9).integers(0, 2, (20, 40))
    assert np.allclose(resp.driver_currents(more), more @ admittance, rtol=1e-10, atol=1e-12 * np.abs(few).max())
    assert not callable(resp._admittance) and resp.solved_reads == 6  # 6 + 20 >= 40 / 2: the admittance now


@pytest.mark.parametrize("v_swing", [0.0, 0.05])
def test_accuracy_runs_read_the_linear_map_without_the_admittance(v_swing, monkeypatch):
    """Reads that count no energy (evaluate, tuning) take their codes from the tile's transfer,
    rails clipping each column as the reader's own read does, and never pay a wired tile's
    admittance (one solve per row); the codes equal the per-read path's (``record``) bit for bit."""
    from bmcnn_hw.golden import tile_physics
    from tests.helpers import random_fc_model

    monkeypatch.setattr(tile_physics, "_NODAL_MEMO", type(tile_physics._NODAL_MEMO)())  # no earlier test's tiles
    inputs = np.random.default_rng(1).integers(0, 2, (100, 1, 1, 200))
    model = random_fc_model(200, 6, 2, tile_rows=200, tile_cols=6, device=DeviceParams(r_wire_ohm=5.0))
    readout = dataclasses.replace(model.hardware.readout, v_swing_v=v_swing)
    model = dataclasses.replace(model, hardware=dataclasses.replace(model.hardware, readout=readout))
    reader = PhysicsReader(Chip(model))
    fast, acc = run_crossbar(model, inputs, reader, count_energy=False)
    assert acc.energy_j == [0.0] and all(callable(r._admittance) for r in reader._responses.values())
    per_read, counted = run_crossbar(model, inputs, PhysicsReader(Chip(model)), record=True)
    assert np.array_equal(fast.accumulators[0], per_read.accumulators[0]) and counted.energy_j[0] > 0
    if v_swing:  # the rails bite: some column saturates
        assert (np.abs(np.concatenate([r.i_plus for r in counted.reads])) > readout.clip_current_a).any()


def test_finite_gain_tia_input_resistance():
    r = np.array([[1e4], [3e4]])
    rin = 10e3 / (1 + 1e3)
    resp = tile_response(r, r_tia_in_ohm=rin)
    # Two devices into one column node held by R_in: I = V1 g1 (1 - k) ... solved by hand:
    g = 1 / r[:, 0]
    v_col_per_v = g / (g.sum() + 1 / rin)  # column node voltage for 1 V on each row
    expected = v_col_per_v / rin
    assert np.allclose(resp.transfer[:, 0], expected, rtol=1e-12)


@pytest.mark.parametrize("encoding, input_mode", [("reference", "unipolar"), ("differential", "bipolar"),
                                                  ("reference", "bipolar")])
def test_every_encoding_is_exact_on_an_ideal_chip(compiled, mnist_test, encoding, input_mode):
    hw = HardwareConfig(geometry=CrossbarGeometry(128, 128, encoding=encoding, input_mode=input_mode))
    model = tile(dataclasses.replace(compiled, hardware=hw))
    images = mnist_test.images[:50]
    physics, _ = run_crossbar(model, images, PhysicsReader(Chip(model)))
    golden = run_integer(model, images)
    for a, b in zip(physics.accumulators + physics.outputs, golden.accumulators + golden.outputs, strict=True):
        assert np.array_equal(a, b)


def test_wire_resistance_costs_accuracy_only_when_large():
    from tests.helpers import random_fc_model

    inputs = np.random.default_rng(0).integers(0, 2, (200, 1, 1, 256))
    results = {}
    for r_wire in (0.01, 20.0):
        device = DeviceParams(r_wire_ohm=r_wire)
        model = random_fc_model(256, 10, 3, tile_rows=128, tile_cols=10, device=device)
        golden = run_integer(model, inputs)
        trace, acc = run_crossbar(model, inputs, PhysicsReader(Chip(model, device)))
        results[r_wire] = (trace.accumulators[0] == golden.accumulators[0]).mean()
        assert acc.energy_j[0] > 0
    assert results[0.01] == 1.0 and results[20.0] < 0.5


def test_read_noise_is_seeded_and_perturbs(compiled, mnist_test):
    device = DeviceParams(read_noise_rel=0.3)
    model = dataclasses.replace(compiled, hardware=HardwareConfig(device=device))
    images = mnist_test.images[:20]
    a, _ = run_crossbar(model, images, PhysicsReader(Chip(model, device, 1)))
    b, _ = run_crossbar(model, images, PhysicsReader(Chip(model, device, 1)))
    golden = run_integer(model, images)
    assert np.array_equal(a.accumulators[1], b.accumulators[1])
    assert not np.array_equal(a.accumulators[1], golden.accumulators[1])
