"""The agreement checks every flow runs (bmcnn_hw.checks), on real images."""

from __future__ import annotations

import dataclasses

import pytest

from bmcnn_hw.checks import ideal_chip, physics_vs_golden
from bmcnn_hw.compile.tile import tile
from bmcnn_hw.golden.chip import Chip


def test_physics_on_the_ideal_chip_equals_golden(compiled, mnist_test):
    result = physics_vs_golden(compiled, mnist_test.images[:20])
    assert result.passed and result.detail.startswith("20 images, every accumulator")


@pytest.mark.slow
def test_the_ideal_chip_strips_variation_and_wires_from_a_real_device(compiled, mnist_test):
    """A build whose device has spread and wire resistance: its own chip differs from golden, the
    check's default (the ideal chip of that build) does not, so ``ideal_chip`` did the work."""
    device = dataclasses.replace(compiled.hardware.device, sigma_on_rel=0.3, sigma_off_rel=0.3, r_wire_ohm=2.5,
                                 r_source_ohm=20.0)
    geometry = dataclasses.replace(compiled.hardware.geometry, tile_rows=32, tile_cols=32)  # wired tiles: small is fast
    hardware = dataclasses.replace(compiled.hardware, device=device, geometry=geometry)
    varied = tile(dataclasses.replace(compiled, hardware=hardware))
    images = mnist_test.images[:20]
    assert not physics_vs_golden(varied, images, Chip(varied, device, 1)).passed
    assert physics_vs_golden(varied, images).passed
    ideal = ideal_chip(varied).params
    assert (ideal.sigma_on_rel, ideal.sigma_off_rel, ideal.r_wire_ohm, ideal.r_source_ohm) == (0.0, 0.0, 0.0, 0.0)


def test_a_varied_chip_fails_the_exact_check_and_names_the_layer(compiled, mnist_test):
    device = dataclasses.replace(compiled.hardware.device, sigma_on_rel=0.3, sigma_off_rel=0.3)
    result = physics_vs_golden(compiled, mnist_test.images[:20], Chip(compiled, device, 1))
    assert not result.passed
    assert "differs from the integer golden model in layer(s) conv0" in result.detail
