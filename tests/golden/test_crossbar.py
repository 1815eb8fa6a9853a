"""Crossbar physics executor: ideal chip = integer model; chips are deterministic samples."""

from __future__ import annotations

import dataclasses

import numpy as np

from bmcnn_hw.config import DeviceParams, ReadoutParams
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.golden.crossbar import PhysicsReader, adc_codes, run_crossbar
from bmcnn_hw.golden.integer import run_integer


def test_ideal_chip_reproduces_integer_model_exactly(compiled, mnist_test):
    images = mnist_test.images[:100]
    physics, _ = run_crossbar(compiled, images, PhysicsReader(Chip(compiled)))
    golden = run_integer(compiled, images)
    for a, b in zip(physics.accumulators + physics.outputs, golden.accumulators + golden.outputs):
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
