"""Builds that skip all-zero reads (``compile --skip-zero-reads``): exact by construction, costed by ``ppa``."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from bmcnn_hw.artefact import load_model
from bmcnn_hw.config import CrossbarGeometry, HardwareConfig, ReadoutParams
from bmcnn_hw.errors import ConfigError
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.golden.crossbar import run_crossbar
from bmcnn_hw.golden.integer import run_integer
from bmcnn_hw.golden.tile_reader import PhysicsReader
from bmcnn_hw.ppa.schedule import performed_read_fraction
from bmcnn_hw.presets import get_preset
from tests.helpers import hidden_fc_model, needs, run_cli


def skipping(model, skip: bool = True):
    """``model`` with ``skip_zero_reads`` set."""
    readout = dataclasses.replace(model.hardware.readout, skip_zero_reads=skip)
    return dataclasses.replace(model, hardware=dataclasses.replace(model.hardware, readout=readout))


def test_bipolar_inputs_cannot_skip_zero_reads():
    with pytest.raises(ConfigError, match="skip_zero_reads needs unipolar inputs"):
        HardwareConfig(geometry=CrossbarGeometry(input_mode="bipolar"), readout=ReadoutParams(skip_zero_reads=True))


def test_performed_fraction_counts_row_tiles_and_planes():
    model = hidden_fc_model(6, 3, input_bits=2, tile_rows=4, seed=0)  # row tiles: rows 0-3 and 4-5
    rows = np.array([[[0, 0, 0, 0, 0, 0]],        # every read all zero
                     [[1, 0, 0, 0, 0, 2]],        # plane 0 of tile 0, plane 1 of tile 1
                     [[3, 0, 0, 0, 0, 0]]])       # both planes of tile 0
    # reads per image: 2 planes x 2 row tiles = 4; performed: 0 + 2 + 2 of 12
    assert performed_read_fraction(model.layers[0], rows) == pytest.approx(4 / 12)


@pytest.mark.parametrize("cell", ["linear", "sinh"])
def test_a_skipped_read_is_code_0_as_every_cell_gives_it(cell, mnist_test):
    """On a varied chip with read noise and wires, reads whose inputs are all zero give code 0
    whether or not they are skipped, so skipping changes no accumulator."""
    device = dataclasses.replace(get_preset("rram-sinh" if cell == "sinh" else "ideal"), sigma_on_rel=0.2,
                                 sigma_off_rel=0.2, read_noise_rel=0.05, r_wire_ohm=2.0)
    model = hidden_fc_model(96, 8, input_bits=1, tile_rows=32, seed=4)
    model = dataclasses.replace(model, hardware=dataclasses.replace(model.hardware, device=device))
    images = (mnist_test.images[:40, 10:14, :24].reshape(40, 96) > 128).astype(np.uint8)
    images[:5] = 0  # whole images of zero reads
    plain, _ = run_crossbar(model, images, PhysicsReader(Chip(model, device, 3)))
    skipped, acc = run_crossbar(skipping(model), images, PhysicsReader(Chip(skipping(model), device, 3)), record=True)
    assert all(np.array_equal(a, b) for a, b in zip(plain.accumulators, skipped.accumulators, strict=True))
    zero_reads = [r for r in acc.reads if r.layer == 0 and not r.volts.any(axis=1).all()]
    assert zero_reads, "the images must contain all-zero reads"
    for read in zero_reads:
        idle = ~read.volts.any(axis=1)
        assert not read.codes[idle].any()
        assert np.abs(read.i_plus[idle] - read.i_minus[idle]).max() < 1e-15  # no current: no row driven


def test_a_skip_build_records_the_option_and_stays_golden(tmp_path, checkpoint, mnist_test):
    code, _, err = run_cli("compile", checkpoint, "-o", tmp_path / "b", "--skip-zero-reads")
    assert code == 0, err
    model = load_model(tmp_path / "b")
    assert model.hardware.readout.skip_zero_reads
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["hardware"]["readout"]["skip_zero_reads"]
    images = mnist_test.images[:30]
    physics, _ = run_crossbar(model, images, PhysicsReader(Chip(model)))
    assert physics.same_as(run_integer(model, images))


@needs("ngspice")
@pytest.mark.ngspice
@pytest.mark.slow
def test_ppa_costs_only_the_performed_reads(tmp_path, tiny_checkpoint, mnist_test):
    """TIA bias and conversions scale by the performed share measured on the images; the zero
    detectors cost (rows - 1) gates per row tile and read; the rest is the plain build's (on the
    small network: 8 conv channels, 20 tiles of 64 x 64)."""
    from bmcnn_hw.golden.integer import exact_matmul
    from bmcnn_hw.golden.layers import walk_layers
    from bmcnn_hw.ppa.cost_model import load_cost_model
    from bmcnn_hw.ppa.flow import run_ppa
    from bmcnn_hw.ppa.records import PpaOptions

    reports = {}
    for skip in (False, True, "auto"):
        flags = {False: [], True: ["--skip-zero-reads"], "auto": ["--skip-zero-reads", "auto"]}[skip]
        assert run_cli("compile", tiny_checkpoint, "-o", tmp_path / f"b{skip}", "--tile", "64x64", *flags)[0] == 0
        reports[skip] = run_ppa(tmp_path / f"b{skip}", mnist_test.images[:4], tmp_path / f"p{skip}",
                                PpaOptions(digital=False), progress=False)
    model, gate = load_model(tmp_path / "bTrue"), load_cost_model().require_zero_detect()
    for step in walk_layers(model, mnist_test.images[:4]):
        layer, fraction = step.layer, performed_read_fraction(step.layer, step.rows)
        step.finish(exact_matmul(step.rows, layer.weight))
        plain, skip = (reports[s]["layers"][layer.name] for s in (False, True))
        assert skip["performed_read_fraction"] == pytest.approx(fraction) and plain["performed_read_fraction"] == 1
        for component in ("tia_bias", "adc"):
            assert skip["energy_j"][component] == pytest.approx(plain["energy_j"][component] * fraction)
        for component in ("array_drivers", "tia_output"):  # a zero read draws no current anyway
            assert skip["energy_j"][component] == pytest.approx(plain["energy_j"][component])
        rows = [min(64, layer.rows - r0) for r0 in range(0, layer.rows, 64)]
        assert skip["energy_j"]["zero_detect"] == pytest.approx(
            skip["schedule"]["reads"] * sum(r - 1 for r in rows) * gate.energy_per_gate_read_j)
        assert plain["energy_j"]["zero_detect"] == 0
    assert reports[True]["layers"]["conv0"]["performed_read_fraction"] < 0.7  # MNIST's background
    # auto: conv0 (576 windows x 8 planes per image) skips as above; fc1 and fc2 (one read) cost as the plain build
    for name, like in (("conv0", True), ("fc1", False), ("fc2", False)):
        auto, same = reports["auto"]["layers"][name], reports[like]["layers"][name]
        assert auto["performed_read_fraction"] == same["performed_read_fraction"]
        assert auto["energy_j"] == pytest.approx(same["energy_j"])
        assert auto["area_um2"] == pytest.approx(same["area_um2"])
    assert "skipped in conv0 (skip_zero_reads)" in " ".join(reports["auto"]["assumptions"])


def test_which_layers_skip_auto_names_or_all(tmp_path, checkpoint):
    """``auto`` gives detectors to the layers read more than once per image (the compact model's
    conv0: 576 windows), not to a binary fc layer read once; names pick layers; True all."""
    code, _, err = run_cli("compile", checkpoint, "-o", tmp_path / "auto", "--skip-zero-reads", "auto",
                           "--tile", "64x64")
    assert code == 0, err
    model = load_model(tmp_path / "auto")
    assert [la.reads_per_image for la in model.layers] == [576 * 8, 1, 1]  # conv0 takes 8-bit pixels
    assert [model.skips_zero_reads(la) for la in model.layers] == [True, False, False]
    for value, expected in ((True, [True] * 3), (False, [False] * 3), ("fc1, fc2", [False, True, True])):
        named = skipping(model, value)
        assert [named.skips_zero_reads(la) for la in named.layers] == expected
    code, _, err = run_cli("compile", checkpoint, "-o", tmp_path / "bad", "--skip-zero-reads", "fc9")
    assert code == 2 and "--skip-zero-reads: no crossbar layer 'fc9' (crossbar layers: conv0, fc1, fc2)" in err
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ConfigError, match="skip_zero_reads must be true, false, `auto` or layer names"):
        ReadoutParams(skip_zero_reads="conv0,,fc1")

