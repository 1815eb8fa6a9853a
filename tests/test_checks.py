"""The agreement checks every flow runs (bmcnn_hw.checks), on real images."""

from __future__ import annotations

import dataclasses

from bmcnn_hw.checks import ideal_chip, physics_vs_golden
from bmcnn_hw.golden.chip import Chip


def test_physics_on_the_ideal_chip_equals_golden(compiled, mnist_test):
    result = physics_vs_golden(compiled, mnist_test.images[:20])
    assert result.passed and result.detail.startswith("20 images, every accumulator")
    assert ideal_chip(compiled).params.sigma_on_rel == 0.0


def test_a_varied_chip_fails_the_exact_check_and_names_the_layer(compiled, mnist_test):
    device = dataclasses.replace(compiled.hardware.device, sigma_on_rel=0.3, sigma_off_rel=0.3)
    result = physics_vs_golden(compiled, mnist_test.images[:20], Chip(compiled, device, 1))
    assert not result.passed
    assert "differs from the integer golden model in layer(s) conv0" in result.detail
