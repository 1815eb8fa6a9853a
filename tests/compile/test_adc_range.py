"""ADC widths from the layer's own weights (``compile --adc-range weights``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bmcnn_hw.checks import physics_vs_golden
from bmcnn_hw.compile.tile import signed_width, tile, weight_code_range
from bmcnn_hw.config import ReadoutParams
from bmcnn_hw.errors import ConfigError
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.golden.crossbar import run_crossbar
from bmcnn_hw.golden.integer import run_integer
from bmcnn_hw.golden.tile_reader import PhysicsReader
from tests.helpers import random_fc_model


@pytest.mark.parametrize(("lo", "hi", "bits"), [(0, 0, 2), (-2, 1, 2), (-2, 2, 3), (-3, 1, 3), (-64, 63, 7),
                                                (-64, 64, 8), (-65, 0, 8), (-128, 128, 9)])
def test_signed_width_is_the_smallest_that_holds_the_range(lo, hi, bits):
    assert signed_width(lo, hi) == bits
    assert bits == 2 or not (-(2 ** (bits - 2)) <= lo and hi <= 2 ** (bits - 2) - 1)


def test_code_range_counts_each_tile_column_separately():
    weight = np.ones((6, 2), dtype=np.int8)
    weight[:3, 1] = -1  # tile 0 (rows 0-3): column 0 has 4 +1, column 1 three -1 and one +1
    assert weight_code_range(weight, 4, bipolar=False) == (-3, 4)
    assert weight_code_range(weight, 4, bipolar=True) == (-4, 4)
    assert weight_code_range(weight, 2, bipolar=False) == (-2, 2)


def with_range(model, adc_range: str, input_mode: str = "unipolar"):
    """``model`` re-tiled with ``adc_range`` and ``input_mode``."""
    hardware = dataclasses.replace(
        model.hardware, readout=dataclasses.replace(model.hardware.readout, adc_range=adc_range),
        geometry=dataclasses.replace(model.hardware.geometry, input_mode=input_mode))
    return tile(dataclasses.replace(model, hardware=hardware))


def test_weight_sizing_saves_a_bit_and_an_ideal_chip_still_never_clips():
    """128 random +-1 rows: the rows rule needs 9 bits (+-128), the weights at most 8. The inputs
    that reach each column's extremes (only its +1 rows on, only its -1 rows on) read exactly."""
    model = random_fc_model(128, 16, seed=3)
    narrow = with_range(model, "weights")
    assert model.layers[0].adc_bits == 9 and narrow.layers[0].adc_bits == 8
    weight = narrow.layers[0].weight
    extremes = np.concatenate([(weight > 0).T, (weight < 0).T]).astype(np.uint8)
    physics, _ = run_crossbar(narrow, extremes, PhysicsReader(Chip(narrow)))
    golden = run_integer(narrow, extremes)
    assert np.array_equal(physics.accumulators[0], golden.accumulators[0])
    assert np.abs(golden.accumulators[0]).max() >= 2 ** 6  # the range is really used


def test_bipolar_inputs_keep_the_full_range():
    model = with_range(random_fc_model(100, 4, seed=0), "weights", "bipolar")
    assert model.layers[0].adc_bits == 8  # +-100


def test_an_unknown_range_is_refused():
    with pytest.raises(ConfigError, match="adc_range must be one of rows, weights, columns, not 'tile'"):
        ReadoutParams(adc_range="tile")


@pytest.mark.parametrize(("adc_range", "narrower"), [("weights", "fc1"), ("columns", "conv0")])
@pytest.mark.slow
def test_real_network_with_derived_adc_widths_equals_golden(compiled, mnist_test, adc_range, narrower):
    """The trained test network needs a bit less where the range says (fc1 from its weights, conv0
    in per-column windows) and nowhere more; an ideal chip still equals golden on every
    accumulator and activation of real images."""
    model = with_range(compiled, adc_range)
    bits = {a.name: (a.adc_bits, b.adc_bits) for a, b in zip(model.layers, compiled.layers, strict=True)}
    assert all(new <= old for new, old in bits.values()) and bits[narrower][0] < bits[narrower][1]
    result = physics_vs_golden(model, mnist_test.images[:100])
    assert result.passed, result.detail


def test_column_windows_fit_a_25_row_layer_in_5_bits():
    """A 25-row column spans 26 codes whatever its weights: 5 unsigned bits in its own window, where
    a signed code needs 6 once a column holds 16 or more -1 weights."""
    model = random_fc_model(25, 8, seed=1)
    weight = model.layers[0].weight.copy()
    weight[:22, 0], weight[22:, 0] = -1, 1
    model = model.replace_layer(0, weight=weight)
    assert with_range(model, "weights").layers[0].adc_bits == 6
    layer = with_range(model, "columns").layers[0]
    assert (layer.adc_bits, layer.adc_window) == (5, True)
    assert layer.adc_low[0] == -22 - 3  # [-22, 3] in 32 codes: 6 to spare, 3 below and 3 above
    plus, minus = (layer.weight > 0).sum(axis=0), (layer.weight < 0).sum(axis=0)
    assert (layer.adc_low <= -minus).all() and (layer.adc_low + 31 >= plus).all()
    assert layer.code_peak == max(25, int((layer.adc_low + 31).max()))


def test_a_windowed_adc_clips_to_its_own_column_window():
    """Variation pushes codes past a column's window: they clip at low and low + 2**bits - 1 of that
    column, and the accumulator adds the low back (an unclipped column reads as without windows)."""
    from bmcnn_hw.config import DeviceParams

    base = random_fc_model(25, 8, seed=2, device=DeviceParams(sigma_on_rel=0.6, sigma_off_rel=0.6))
    windowed, signed_ = with_range(base, "columns"), with_range(base, "rows")
    images = np.random.default_rng(0).integers(0, 2, size=(400, 25), dtype=np.uint8)
    reader = PhysicsReader(Chip(windowed, windowed.hardware.device, 3), )
    acc_w = run_crossbar(windowed, images, reader)[0].accumulators[0]
    acc_s = run_crossbar(signed_, images, PhysicsReader(Chip(signed_, signed_.hardware.device, 3)))[0].accumulators[0]
    layer = windowed.layers[0]
    low, high = layer.adc_low, layer.adc_low + 2 ** layer.adc_bits - 1
    assert np.array_equal(acc_w, np.clip(acc_s, low, high))
    assert (acc_s < low).any() or (acc_s > high).any()


def test_column_windows_refuse_bipolar_inputs_and_fixed_widths():
    model = random_fc_model(25, 8, seed=1)
    with pytest.raises(ConfigError, match="adc_range columns needs unipolar inputs"):
        with_range(model, "columns", "bipolar")
    with pytest.raises(ConfigError, match="adc_range columns sizes the ADC windows itself"):
        ReadoutParams(adc_range="columns", adc_bits=6)
