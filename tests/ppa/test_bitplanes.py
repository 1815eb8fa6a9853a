"""Several input bit planes per read, priced from a bit-serial PPA report."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bmcnn_hw.ppa.bitplanes import plane_group_table, plane_groups
from bmcnn_hw.ppa.cost_model import load_cost_model
from tests.helpers import random_fc_model

REPORT = {"schedule": {"reads": 800, "conversions": 8000},
          "energy_j": {"array_drivers": 1e-9, "tia_output": 2e-9, "tia_bias": 7e-9, "digital": 40e-9}}


def four_bit_layer():
    """A 25-row layer with 4-bit inputs whose columns span [-20, 25] per plane."""
    layer = random_fc_model(25, 10, seed=0).layers[0]
    weight = np.ones((25, 10), dtype=np.int8)
    weight[:20, 0] = -1
    weight[:10, 1] = -1
    return dataclasses.replace(layer, weight=weight, input_bits=4)


def test_groups_widen_the_adc_and_divide_reads_codes_and_conversions():
    cost = load_cost_model()
    groups = plane_groups(four_bit_layer(), REPORT, cost)
    assert [(g.planes_per_read, g.scheme) for g in groups] == [(1, "bit-serial"), (2, "pulse"), (2, "amplitude"),
                                                               (4, "pulse"), (4, "amplitude")]
    serial, pulse2, amp2, pulse4, _ = groups
    assert serial.adc_bits == 6 and pulse2.adc_bits == 8 and pulse4.adc_bits == 10  # +-25, +-75, +-375
    assert serial.adc_j == pytest.approx(8000 * cost.adc.fom_walden_j * 64)
    assert (pulse2.reads, pulse2.conversions, pulse2.digital_j) == (400, 4000, pytest.approx(20e-9))
    assert pulse2.analog_j == pytest.approx(10e-9 * 3 / 2) and amp2.analog_j == pytest.approx(10e-9 / 2)
    assert not pulse4.beyond_survey and "| 2 | amplitude | 400 | 8 |" in plane_group_table(groups)


def test_binary_input_layers_have_no_planes_to_group():
    with pytest.raises(ValueError, match="layer fc0 has no multi-bit crossbar inputs"):
        plane_groups(random_fc_model(25, 10, seed=0).layers[0], REPORT, load_cost_model())
