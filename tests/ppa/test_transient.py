"""Transient tile reads: energy against the DC model, capacitor charge, settling, errors."""

from __future__ import annotations

import dataclasses

import pytest

from bmcnn_hw.errors import SimulationError
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.ppa.cost_model import load_cost_model
from bmcnn_hw.ppa.transient import feedback_cap_f, transient_read
from tests.helpers import needs, random_fc_model

pytestmark = [pytest.mark.ngspice, needs("ngspice")]


def _cost(cap_f_per_um: float | None = None, gbw_hz: float | None = None):
    cost = load_cost_model()
    if cap_f_per_um is not None:
        cost = dataclasses.replace(cost, array=dataclasses.replace(cost.array, wire_cap_f_per_um=cap_f_per_um))
    if gbw_hz is not None:
        cost = dataclasses.replace(cost, tia=dataclasses.replace(cost.tia, gbw_hz=gbw_hz))
    return cost


def test_resistive_tile_energy_equals_the_dc_model(tmp_path):
    """No capacitance, ideal TIA: the integral of the drivers' power is V*I*t over the same waveform."""
    model = random_fc_model(24, 6, seed=3, tile_rows=32, tile_cols=8)
    chip = Chip(model)
    read = transient_read(model, chip, 0, 0, 0, _cost(cap_f_per_um=0.0), tmp_path, window_s=4e-9, ideal_tia=True)
    assert read.energy_dc_j > 0
    assert read.energy_drivers_j == pytest.approx(read.energy_dc_j, rel=1e-9)
    # the steady power is the DC solve's: every row at V_read into columns at 0 V
    g = 1.0 / chip.tiles[(0, 0, 0)].physical(24, 6)[0]
    assert read.power_dc_w == pytest.approx(chip.params.v_read_v ** 2 * g.sum(), rel=1e-9)


def test_row_capacitance_adds_half_c_v_squared_per_row(tmp_path):
    """Ideal wires and TIA: each row's lumped wire capacitance takes C V^2 / 2 from its driver."""
    model = random_fc_model(24, 6, seed=3, tile_rows=32, tile_cols=8)
    chip = Chip(model)
    cost = _cost()
    read = transient_read(model, chip, 0, 0, 0, cost, tmp_path, window_s=4e-9, ideal_tia=True)
    c_row = 2 * 8 * cost.array.segment_cap_f  # a full tile row: 2 x 8 physical columns of wire
    expected = 24 * c_row * chip.params.v_read_v ** 2 / 2
    assert read.energy_drivers_j - read.energy_dc_j == pytest.approx(expected, rel=1e-4)


def test_finite_bandwidth_tia_settles_slower_and_the_time_is_measured(tmp_path):
    model = random_fc_model(32, 4, seed=5, tile_rows=32, tile_cols=4)
    chip = Chip(model)
    fast = transient_read(model, chip, 0, 0, 0, _cost(gbw_hz=2e9), tmp_path / "fast")
    slow = transient_read(model, chip, 0, 0, 0, _cost(gbw_hz=2e8), tmp_path / "slow")
    assert 0 < fast.read_time_s < slow.read_time_s
    # a single-pole loop at noise gain 1 + R_f G: settling scales with 1 / GBW (within Cf's effect)
    assert 3 < slow.read_time_s / fast.read_time_s < 20
    assert slow.lsb_v == pytest.approx(model.hardware.readout.tia_rf_ohm * chip.unit_current_a)


def test_a_window_too_short_names_the_tile(tmp_path):
    model = random_fc_model(32, 4, seed=5, tile_rows=32, tile_cols=4)
    with pytest.raises(SimulationError, match=r"fc0 tile \(0,0\): a TIA output did not settle"):
        transient_read(model, Chip(model), 0, 0, 0, _cost(gbw_hz=1e7), tmp_path, window_s=1e-9, attempts=1)


def test_feedback_capacitor_gives_a_maximally_flat_step(tmp_path):
    """A current step into C_in: a Q = 1/sqrt(2) loop overshoots by 4.3 % (Q = 1 would be 16 %)."""
    from bmcnn_hw.spice.netlist import spice_models_dir
    from bmcnn_hw.spice.ngspice import NgSpice

    c_in, rf, gbw = 200e-15, 10e3, 1e9
    cf = feedback_cap_f(c_in, rf, gbw)
    netlist = tmp_path / "step.cir"
    netlist.write_text(f".include {spice_models_dir() / 'tia.lib'}\n"
                       "Iin 0 col PWL(0 0 1e-12 1e-5)\n"
                       f"Cin col 0 {c_in!r}\n"
                       f"Xt col out tia_gbw rf={rf!r} cf={cf!r} a0=1e6 fp={gbw / 1e6!r}\n.end\n")
    ng = NgSpice.get()
    ng.load(netlist)
    ng.command("tran 1e-12 20e-9 0 5e-12 uic", str(netlist))
    out = -ng.vector("out")
    ng.unload()
    final = rf * 1e-5
    assert out[-1] == pytest.approx(final, rel=1e-3)
    assert 0.03 < out.max() / final - 1 < 0.06
    assert feedback_cap_f(0.0, 10e3, 1e9) == 1e-15
