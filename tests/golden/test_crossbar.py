"""Crossbar physics executor: ideal chip = integer model; chips are deterministic samples."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bmcnn_hw.config import DeviceParams, ReadoutParams
from bmcnn_hw.golden.chip import Chip, sample_state
from bmcnn_hw.golden.crossbar import CrossbarAccumulator, run_crossbar
from bmcnn_hw.golden.integer import run_integer
from bmcnn_hw.golden.readout import adc_codes
from bmcnn_hw.golden.tile_reader import PhysicsReader


def test_ideal_chip_reproduces_integer_model_exactly(compiled, mnist_test):
    images = mnist_test.images[:100]
    physics, _ = run_crossbar(compiled, images, PhysicsReader(Chip(compiled)))
    golden = run_integer(compiled, images)
    for a, b in zip(physics.accumulators + physics.outputs, golden.accumulators + golden.outputs, strict=True):
        assert np.array_equal(a, b)


def test_chip_sampling_is_seeded(compiled):
    params = DeviceParams(sigma_on_rel=0.2, sigma_off_rel=0.3, distribution="lognormal")
    a, b, c = Chip(compiled, params, 5), Chip(compiled, params, 5), Chip(compiled, params, 6)
    key = (1, 3, 0)
    assert np.array_equal(a.tiles[key].r_plus, b.tiles[key].r_plus)
    assert not np.array_equal(a.tiles[key].r_plus, c.tiles[key].r_plus)
    on = compiled.layers[1].weight[384:512, :] > 0
    r = a.tiles[key].r_plus[on]
    assert abs(r.mean() / params.r_on_ohm - 1) < 0.02 and abs(r.std() / r.mean() - 0.2) < 0.02


@pytest.mark.parametrize("distribution", ["normal", "lognormal"])
def test_sampled_resistances_have_the_stated_mean_and_spread(distribution):
    """Mean R_on and relative std sigma for both distributions; the lognormal's log-std is
    sqrt(log(1 + sigma^2)) and its mean is corrected (without the correction the mean is 12 %
    high; with log-std = sigma the relative std is 0.53, not 0.5)."""
    sigma = 0.5
    params = DeviceParams(sigma_on_rel=sigma, distribution=distribution)
    r = sample_state(True, (400_000,), params, np.random.default_rng(0)) / params.r_on_ohm
    if distribution == "normal":  # clipped at MIN_R_FRACTION: a 2-sigma tail is cut, so compare below it
        assert abs(np.median(r) - 1) < 0.005 and abs(np.percentile(r, 84.13) - 1 - sigma) < 0.01
        return
    assert abs(r.mean() - 1) < 0.005 and abs(r.std() - sigma) < 0.005
    assert abs(np.log(r).std() - np.sqrt(np.log1p(sigma ** 2))) < 0.002 and (r > 0).all()


def test_stuck_devices_take_their_stuck_state(compiled):
    params = DeviceParams(p_stuck_on=1.0)
    chip = Chip(compiled, params, 0)
    assert (chip.tiles[(0, 0, 0)].r_plus == params.r_on_ohm).all()


def test_variation_changes_predictions_of_some_images(compiled, mnist_test):
    images = mnist_test.images[:200]
    noisy = Chip(compiled, DeviceParams(sigma_on_rel=0.5, sigma_off_rel=0.5), 1)
    physics, _ = run_crossbar(compiled, images, PhysicsReader(noisy))
    assert (physics.predictions != run_integer(compiled, images).predictions).any()


def test_adc_rounds_and_clips():
    unit = 1e-5
    codes = adc_codes(np.array([0.49e-5, -2.6e-5, 100e-5, -100e-5]), unit, ReadoutParams(), 4)
    assert codes.tolist() == [0, -3, 7, -8]
    coarse = dataclasses.replace(ReadoutParams(), lsb_units=2.0)
    assert adc_codes(np.array([4.1e-5]), unit, coarse, 8).tolist() == [2]


def _hardware_variant(compiled, encoding: str, input_mode: str, r_wire: float):
    """The compiled model re-targeted to another encoding / input mode / wire resistance."""
    from bmcnn_hw.compile.tile import tile

    geometry = dataclasses.replace(compiled.hardware.geometry, encoding=encoding, input_mode=input_mode,
                                   tile_rows=64, tile_cols=64)
    device = dataclasses.replace(compiled.hardware.device, r_wire_ohm=r_wire)
    hardware = dataclasses.replace(compiled.hardware, geometry=geometry, device=device)
    return tile(dataclasses.replace(compiled, hardware=hardware))


@pytest.mark.slow  # the full test set or a large grid: the full tier only
@pytest.mark.parametrize("encoding,input_mode,r_wire", [("differential", "unipolar", 0.0),
                                                         ("reference", "bipolar", 0.0),
                                                         ("differential", "bipolar", 1.0)])
def test_vectorised_physics_path_equals_the_reader_path(request, mnist_test, encoding, input_mode, r_wire):
    """The fast path (bit planes as uint8, distinct rows read once) gives the same accumulators and
    energy. With wires, on the small network (20 wired tiles of 64 x 64 instead of the compact
    one's 147, each factorised and solved per row), whose recorded path solves every read."""
    compiled = request.getfixturevalue("tiny_compiled" if r_wire else "compiled")
    model = _hardware_variant(compiled, encoding, input_mode, r_wire)
    params = dataclasses.replace(model.hardware.device, sigma_on_rel=0.3, sigma_off_rel=0.3)
    chip = Chip(model, params, 3)
    images = mnist_test.images[:4 if r_wire else 40]
    fast = CrossbarAccumulator(model, PhysicsReader(chip))
    slow = CrossbarAccumulator(model, PhysicsReader(chip), record=True)
    assert fast.dedupe and not slow.dedupe
    a, b = run_integer(model, images, fast), run_integer(model, images, slow)
    assert a.same_as(b)
    assert fast._scaled and all(v is not None for v in fast._scaled.values())  # the linear maps served it
    assert not slow._scaled
    assert np.allclose(fast.energy_j, slow.energy_j, rtol=1e-9)


@pytest.mark.parametrize("rows", [1, 7, 8, 9, 25, 64])
@pytest.mark.parametrize("planes", [1, 3, 8])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_plane_keys_pack_every_plane_of_every_input(rows, planes, dtype):
    """Bit r of the plane-k key of an input row is bit k of its input r (uint8 rows take the
    multiply-gather path, wider ones the unpacking path)."""
    from bmcnn_hw.golden.crossbar import _key_bits, _plane_keys

    x = np.random.default_rng(rows * planes).integers(0, 2 ** planes, (300, rows)).astype(dtype)
    keys = _plane_keys(x, range(planes))
    for k in range(planes):
        want = ((x >> k) & 1).astype(np.uint64) << np.arange(rows, dtype=np.uint64)
        assert np.array_equal(keys[k * 300:(k + 1) * 300], want.sum(axis=1, dtype=np.uint64))
        assert np.array_equal(_key_bits(keys[k * 300:(k + 1) * 300], rows), (x >> k) & 1)
