"""SPICE at full fidelity: large tiles, wires, encodings, finite-gain TIA, energy, layer tops,
dynamic device model, and the errors users see."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from bmcnn_hw.config import CrossbarGeometry, DeviceParams, ReadoutParams
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.golden.readout import adc_codes
from bmcnn_hw.golden.tile_reader import PhysicsReader
from bmcnn_hw.spice.netlist import layer_top_netlist, write_netlists
from bmcnn_hw.spice.ngspice import NgSpice
from bmcnn_hw.spice.read_disturb import read_disturb
from bmcnn_hw.spice.run import SpiceReader
from tests.helpers import needs, random_fc_model

pytestmark = [pytest.mark.ngspice, needs("ngspice")]
RTOL = 1e-6


def _agree(tmp_path, model, chip, volts, mode="per-vector"):
    """SPICE and physics currents agree to RTOL and give identical ADC codes; returns both reads."""
    write_netlists(model, chip, tmp_path / "netlists")
    layer = model.layers[0]
    used = layer.tiling.col_range(0, layer.cols)[1]
    spice = SpiceReader(model, chip, tmp_path / "netlists", mode=mode).read(0, 0, 0, volts, used)
    physics = PhysicsReader(chip).read(0, 0, 0, volts, used)
    for got, want in ((spice.i_plus, physics.i_plus), (spice.i_minus, physics.i_minus),
                      (spice.i_drivers, physics.i_drivers)):
        assert np.max(np.abs(got - want)) <= RTOL * np.max(np.abs(want))
    unit = chip.params.unit_current_a * model.hardware.geometry.unit_scale
    bits = model.layers[0].adc_bits
    codes = [adc_codes(r.i_plus - r.i_minus, unit, model.hardware.readout, bits) for r in (spice, physics)]
    assert np.array_equal(*codes)
    return spice, physics


def _model(rows, cols, seed, device: DeviceParams | None = None, **geometry):
    model = random_fc_model(rows, cols, seed, tile_rows=rows, tile_cols=cols, device=device)
    if geometry:
        import dataclasses

        from bmcnn_hw.compile.tile import tile

        hw = dataclasses.replace(model.hardware, geometry=CrossbarGeometry(rows, cols, **geometry))
        model = tile(dataclasses.replace(model, hardware=hw))
    return model


def test_ideal_256x256_tile(tmp_path):
    model = _model(256, 256, 0)
    volts = np.random.default_rng(1).integers(0, 2, (2, 256)) * 0.2
    _agree(tmp_path, model, Chip(model), volts)


@pytest.mark.slow
def test_wire_and_source_resistance_64x64(tmp_path):
    device = DeviceParams(r_wire_ohm=2.0, r_source_ohm=50.0, sigma_on_rel=0.2, sigma_off_rel=0.2)
    model = _model(64, 64, 2, device)
    volts = np.random.default_rng(3).integers(0, 2, (1, 64)) * 0.2
    _agree(tmp_path, model, Chip(model, device, 5), volts)


@pytest.mark.parametrize("encoding, input_mode, tia_gain", [
    ("reference", "unipolar", 0.0), ("differential", "bipolar", 0.0), ("reference", "bipolar", 1e3),
    ("differential", "unipolar", 50.0)])
def test_encodings_wires_and_finite_gain_tia(tmp_path, encoding, input_mode, tia_gain):
    import dataclasses

    device = DeviceParams(r_wire_ohm=1.0, sigma_on_rel=0.3, sigma_off_rel=0.3, p_stuck_off=0.05)
    model = _model(20, 12, 4, device, encoding=encoding, input_mode=input_mode)
    hardware = dataclasses.replace(model.hardware, readout=ReadoutParams(tia_gain=tia_gain))
    model = dataclasses.replace(model, hardware=hardware)
    chip = Chip(model, device, 9)
    bits = np.random.default_rng(5).integers(0, 2, (6, 20))
    volts = (2 * bits - 1) * 0.2 if input_mode == "bipolar" else bits * 0.2
    _agree(tmp_path, model, chip, volts, mode="superposition")


def test_superposition_equals_per_vector_and_energy_matches(tmp_path):
    device = DeviceParams(sigma_on_rel=0.5, sigma_off_rel=0.5, r_source_ohm=100.0)
    model = _model(24, 16, 6, device)
    chip = Chip(model, device, 2)
    volts = np.random.default_rng(7).integers(0, 2, (40, 24)) * 0.2
    write_netlists(model, chip, tmp_path / "n")
    sup = SpiceReader(model, chip, tmp_path / "n", mode="superposition").read(0, 0, 0, volts, 16)
    per = SpiceReader(model, chip, tmp_path / "n", mode="per-vector").read(0, 0, 0, volts, 16)
    assert np.max(np.abs(sup.i_plus - per.i_plus)) <= 1e-9 * np.max(np.abs(per.i_plus))
    energy = lambda r: np.sum(volts * r.i_drivers, axis=1)  # noqa: E731 - V . I per read
    physics = PhysicsReader(chip).read(0, 0, 0, volts, 16)
    assert np.allclose(energy(sup), energy(physics), rtol=1e-9)
    assert np.allclose(energy(per), energy(physics), rtol=1e-9)


def test_layer_top_netlist_runs_and_matches_physics(tmp_path):
    model = random_fc_model(40, 20, 8, tile_rows=16, tile_cols=8)  # 3 x 3 tiles
    chip = Chip(model)
    write_netlists(model, chip, tmp_path / "n")
    top = tmp_path / "n" / "fc0_top.cir"
    assert top.read_text() == layer_top_netlist(model, chip, 0)
    ng = NgSpice.get()
    ng.load(top)
    bits = np.random.default_rng(0).integers(0, 2, 40)
    for k, b in enumerate(bits):
        ng.command(f"alter vin{k} dc = {0.2 * float(b)!r}", "top")
    ng.operating_point()
    physics = PhysicsReader(chip)
    layer = model.layers[0]
    for rt in range(3):
        r0, r1 = layer.tiling.row_range(rt, 40)
        for ct in range(3):
            c0, c1 = layer.tiling.col_range(ct, 20)
            read = physics.read(0, rt, ct, bits[None, r0:r1] * 0.2, c1 - c0)
            v_out = np.array([ng.value(f"out_{rt}_{ct}_{j}") for j in range(2 * (c1 - c0))])
            expected = -model.hardware.readout.tia_rf_ohm * np.stack([read.i_plus[0], read.i_minus[0]], 1).ravel()
            assert np.allclose(v_out, expected, rtol=1e-9, atol=1e-15)


def test_read_voltage_does_not_disturb_the_dynamic_device():
    quiet = read_disturb(v_read_v=0.2, duration_s=1e-6)
    assert abs(quiet["delta_state"]) < 1e-9
    write = read_disturb(v_read_v=1.0, duration_s=1e-6)
    assert write["delta_state"] > 0.01  # above the threshold the state moves towards OFF


def _run_python(code: str, **env):
    import os

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env})


def test_ngspice_error_is_a_simulation_error_naming_the_netlist(tmp_path):
    bad = tmp_path / "bad.cir"
    bad.write_text("* broken\nVr0 r0 0 DC 0\nXd r0 c0 no_such_model r=1\n.end\n")
    proc = _run_python(
        "from bmcnn_hw.spice.ngspice import NgSpice\n"
        "from bmcnn_hw.errors import SimulationError\n"
        f"try:\n    NgSpice.get().load({str(bad)!r})\n    NgSpice.get().operating_point()\n"
        "except SimulationError as e:\n    print('SimulationError', e)\n")
    assert "SimulationError" in proc.stdout and "bad.cir" in proc.stdout


def test_missing_ngspice_is_tool_not_found():
    proc = _run_python("from bmcnn_hw.spice.ngspice import NgSpice\nNgSpice.get()",
                       NGSPICE_LIBRARY_PATH="/nonexistent/libngspice.so")
    assert "ToolNotFound" in proc.stderr and "apt-get install ngspice libngspice0" in proc.stderr


def test_auto_mode_falls_back_to_per_vector_when_a_tile_is_not_linear(tmp_path, monkeypatch):
    from bmcnn_hw.spice.solver import NotLinearError

    model = _model(12, 6, 3)
    chip = Chip(model)
    write_netlists(model, chip, tmp_path / "n")
    reader = SpiceReader(model, chip, tmp_path / "n", mode="auto")

    def not_linear(*args):
        raise NotLinearError("tile response is not linear")

    monkeypatch.setattr(reader, "response", not_linear)
    volts = np.random.default_rng(1).integers(0, 2, (40, 12)) * 0.2  # enough inputs to try superposition
    read = reader.read(0, 0, 0, volts, 6)
    assert (0, 0, 0) in reader.nonlinear_tiles and reader.solves == len(np.unique(volts, axis=0))
    physics = PhysicsReader(chip).read(0, 0, 0, volts, 6)
    assert np.allclose(read.i_plus, physics.i_plus, rtol=1e-9)
