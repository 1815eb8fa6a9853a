"""bmcnn-hw's own transient engine of linear tiles against ngspice, the reference, and its refusals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bmcnn_hw.compile.tile import tile
from bmcnn_hw.config import CrossbarGeometry, DeviceParams
from bmcnn_hw.errors import SimulationError
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.ppa.cost_model import load_cost_model
from bmcnn_hw.ppa.linear_transient import parse_transient, step_for
from bmcnn_hw.ppa.transient import _ENGINES, _TransientTile, transient_read
from bmcnn_hw.spice.netlist import copy_model_libs
from tests.helpers import needs, random_fc_model

FIELDS = ("read_time_s", "settle_rise_s", "settle_fall_s", "energy_drivers_j", "energy_tia_output_j",
          "energy_dc_j", "power_dc_w", "v_out_max_v")


def _with(model, *, v_swing: float = 0.0, encoding: str = "differential", rf: float = 10e3):
    """``model`` with TIA rails at +-``v_swing``, feedback resistors ``rf`` and weights in ``encoding``."""
    hw = model.hardware
    geometry = CrossbarGeometry(hw.geometry.tile_rows, hw.geometry.tile_cols, encoding=encoding)
    readout = dataclasses.replace(hw.readout, v_swing_v=v_swing, tia_rf_ohm=rf)
    return tile(dataclasses.replace(model, hardware=dataclasses.replace(hw, geometry=geometry, readout=readout)))


def _both(tmp_path, model, chip, **kw):
    cost = load_cost_model()
    return [transient_read(model, chip, 0, 0, 0, cost, tmp_path / engine, engine=engine, **kw)
            for engine in ("ngspice", "linear")]


CASES = {
    # device, encoding, rails (V) and R_f (ohm), rows x cols on a tile of tile_rows x tile_cols
    "met1 wires, spread": (DeviceParams(r_wire_ohm=0.893, sigma_on_rel=0.1, sigma_off_rel=0.1), "differential",
                           (0.0, 10e3), (24, 6, 32, 8)),
    "wires and drivers, reference column": (DeviceParams(r_wire_ohm=2.0, r_source_ohm=50.0), "reference",
                                            (0.0, 10e3), (40, 10, 64, 16)),
    "rails, sized R_f": (DeviceParams(r_wire_ohm=0.893), "differential", (0.9, 1e3), (24, 6, 32, 8)),
    "no wires": (DeviceParams(), "differential", (0.0, 10e3), (24, 6, 32, 8)),
}


@pytest.mark.ngspice
@needs("ngspice")
@pytest.mark.parametrize("case", CASES)
def test_linear_engine_reads_as_ngspice(tmp_path, case):
    """Read times (rise and fall), driver, TIA and DC energies, steady power and the largest output
    equal ngspice's within 1 % (measured: within 0.3 %; ngspice takes its own variable
    trapezoidal steps, the engine fixed BDF2 steps of half ngspice's largest)."""
    device, encoding, (rails, rf), (rows, cols, tile_rows, tile_cols) = CASES[case]
    model = _with(random_fc_model(rows, cols, 3, tile_rows=tile_rows, tile_cols=tile_cols, device=device),
                  v_swing=rails, encoding=encoding, rf=rf)
    chip = Chip(model, device, 1)
    ngspice, linear = _both(tmp_path, model, chip)
    for name in FIELDS:
        assert getattr(linear, name) == pytest.approx(getattr(ngspice, name), rel=0.01), name
    assert linear.window_s == ngspice.window_s


@pytest.mark.ngspice
@needs("ngspice")
def test_outputs_clipped_at_the_rails_follow_ngspice(tmp_path):
    """Rails at +-20 mV clip every column of a worst-case read (and the macro-model's pole node winds
    up, so nothing settles in a read window): the engine's active-set step gives ngspice's clamped
    outputs. Compared per column as the charge into the TIA and the integral of its output over the
    window (each engine's own time points; pointwise differences sit at the clamp's corners, which
    the engines sample differently) and the outputs at the end."""
    device = DeviceParams(r_wire_ohm=2.0)
    model = _with(random_fc_model(24, 6, 3, tile_rows=32, tile_cols=8, device=device), v_swing=0.02)
    chip, cost = Chip(model, device, 0), load_cost_model()
    tile = _TransientTile(model, chip, 0, 0, 0, cost, 4e-9)
    (tmp_path / "t.sub").write_text(tile.subckt_text())
    (tmp_path / "t.cir").write_text(tile.text("t.sub"))
    copy_model_libs(chip, tmp_path / "lib")
    rise, stop = cost.array.driver_rise_s, tile.t_start + 4e-9 + cost.array.driver_rise_s
    ngspice = _ENGINES["ngspice"](tile, tmp_path / "t.cir", rise / 10, stop, 4e-12)
    linear = _ENGINES["linear"](tile, tmp_path / "t.cir", rise / 10, stop, 4e-12)
    assert np.max(np.abs(ngspice.v_out)) == pytest.approx(0.02, rel=1e-6)
    assert np.allclose(np.abs(ngspice.v_out[:, -1]), 0.02)  # still clipped at the end (wound-up poles)
    for name in ("v_out", "i_col"):
        ours = np.trapezoid(getattr(linear, name), linear.time, axis=1)
        ref = np.trapezoid(getattr(ngspice, name), ngspice.time, axis=1)
        assert ours == pytest.approx(ref, rel=0.005), name
    assert linear.v_out[:, -1] == pytest.approx(ngspice.v_out[:, -1], rel=1e-3)


def test_nonlinear_cells_are_refused_naming_the_engines_that_can(tmp_path):
    device = DeviceParams(cell="sinh")
    model = random_fc_model(8, 4, 0, tile_rows=8, tile_cols=4, device=device)
    with pytest.raises(SimulationError, match="linear engine solves tiles of linear or 1T1R cells, not sinh"):
        transient_read(model, Chip(model, device, 0), 0, 0, 0, load_cost_model(), tmp_path, engine="linear")


ACCESS_CASES = {
    # rows x cols on a tile of tile_rows x tile_cols, rails (V), R_f (ohm)
    "no rails, R_f 10 kOhm": ((10, 6, 10, 6), 0.0, 10e3),
    "rails, padding rows": ((24, 6, 32, 8), 0.9, 1e3),
    "rails, 40 rows": ((40, 4, 48, 4), 0.9, 2e3),
}


@pytest.mark.ngspice
@needs("ngspice")
@pytest.mark.parametrize("case", ACCESS_CASES)
def test_linearised_1t1r_cells_read_as_ngspice(tmp_path, case, nfet_table):
    """1T1R cells (sky130 access transistors, met1 wires, 10 % spread, threshold mismatch) with each
    transistor linearised at the read: read times, energies, steady power and the largest output
    within 1 % of ngspice's BSIM4 transient (measured: within 0.8 %; the summary's source line says
    1 %). With the drain and source capacitances of BSIM4's operating point instead of the cell's
    measured column capacitance, and C_f sized for the wires alone (ringing columns), read times
    were off by up to 28 %."""
    from bmcnn_hw.ppa.summary import LINEARISED_1T1R_CHECK
    from bmcnn_hw.presets import get_preset

    (rows, cols, tile_rows, tile_cols), rails, rf = ACCESS_CASES[case]
    device = dataclasses.replace(get_preset("rram-1t1r-sky130-hr"), sigma_on_rel=0.1, sigma_off_rel=0.1)
    model = _with(random_fc_model(rows, cols, 0, tile_rows=tile_rows, tile_cols=tile_cols, device=device),
                  v_swing=rails, rf=rf)
    chip = Chip(model, device, 1, transistor_table=nfet_table)
    ngspice, linear = _both(tmp_path, model, chip)
    for name in FIELDS:
        assert getattr(linear, name) == pytest.approx(getattr(ngspice, name), rel=0.01), name
    assert "within 1 %" in LINEARISED_1T1R_CHECK


def test_a_transistor_without_its_linearisation_is_refused(tmp_path):
    netlist = _hand_netlist(tmp_path, "Vwl wl 0 DC 1.8\nXd a m memristor_read r=1e5\n"
                                      "Xa m wl b 0 sky130_fd_pr__nfet_01v8 w=1.0 l=0.15\n"
                                      "Xt0 b o0 tia_gbw rf=1e4 cf=1e-14 a0=1e4 fp=1e5 vsw=0.9\n")
    with pytest.raises(SimulationError, match=r"t\.sub:4: an access transistor; the linear engine solves 1T1R"):
        parse_transient(netlist)


def test_each_transistor_becomes_its_channel_and_column_capacitance(tmp_path):
    """The gate offset of each cell (V(wl) - V(gate)) and its device resistance reach the
    linearisation; the gate nodes and sources leave the circuit."""
    from bmcnn_hw.ppa.linear_transient import AccessLinearisation

    netlist = _hand_netlist(tmp_path, "Vwl wl 0 DC 1.8\nVg0 wl g0 DC 0.01\nXd a m memristor_read r=1e5\n"
                                      "Xa m g0 b 0 sky130_fd_pr__nfet_01v8 w=1.0 l=0.15\n"
                                      "Xt0 b o0 tia_gbw rf=1e4 cf=1e-14 a0=1e4 fp=1e5 vsw=0.9\n")
    seen = []

    def channel(r, dvth):
        seen.append((r.tolist(), dvth.tolist()))
        return np.full(r.shape, 700.0)

    net = parse_transient(netlist, AccessLinearisation(channel, 2e-15))
    assert seen == [([1e5], [pytest.approx(0.01)])]
    m, b = net.nodes["m"], net.nodes["b"]
    assert (m, b, 700.0) in net.resistors and (b, 0, 2e-15) in net.capacitors
    assert "wl" not in net.nodes and "g0" not in net.nodes


def _hand_netlist(tmp_path, body: str):
    """A one-row transient ``t.cir`` around subcircuit ``t`` whose element lines are ``body``."""
    (tmp_path / "t.sub").write_text(f".subckt t a o0\n{body}.ends t\n")
    (tmp_path / "t.cir").write_text("* t\n.include t.sub\nVr0 in0 0 PWL(0 0 1e-10 0.1)\nXtile in0 o0 t\n.end\n")
    return tmp_path / "t.cir"


def test_an_element_it_cannot_solve_is_named_by_file_and_line(tmp_path):
    netlist = _hand_netlist(tmp_path, "R1 a b 1e3\nBx b 0 V = v(a) * v(a)\n"
                                      "Xt0 b o0 tia_gbw rf=1e4 cf=1e-14 a0=1e4 fp=1e5 vsw=0.9\n")
    with pytest.raises(SimulationError, match=r"t\.sub:3: Bx b 0 V is not an element the linear engine solves"):
        parse_transient(netlist)


def test_a_missing_tia_parameter_is_named(tmp_path):
    netlist = _hand_netlist(tmp_path, "Xd a b memristor_read r=1e5\nXt0 b o0 tia_gbw rf=1e4 a0=1e4\n")
    with pytest.raises(SimulationError, match=r"t\.sub:3: parameter cf= missing"):
        parse_transient(netlist)


def test_the_step_divides_the_driver_rise_time():
    assert step_for(1e-11, 100e-12, 1e-11) == pytest.approx(5e-12)
    assert 100e-12 / step_for(1e-11, 100e-12, 3e-11) == pytest.approx(7)
