"""Guarded tuning: the direct-count correction, the per-column guard, the held-out accuracy
guard (never worse than untuned on the held-out calibration images), the training-noise target."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import integrate, stats

from bmcnn_hw.config import DeviceParams
from bmcnn_hw.errors import ConfigError
from bmcnn_hw.golden.chip import MIN_R_FRACTION, Chip
from bmcnn_hw.golden.crossbar import physics_predictions_shared
from bmcnn_hw.tune import HOLDOUT, calibrate, column_errors, count_corrections, training_gain


def test_count_corrections_minimise_the_mismatches_like_brute_force(compiled):
    layer = compiled.layers[1]
    rng = np.random.default_rng(0)
    target = rng.integers(-60, 60, size=(400, layer.cols))
    chip = np.round(1.1 * target + rng.normal(0, 8, size=target.shape) + 5).astype(np.int64)
    found = count_corrections(layer, chip, target)
    for c in range(0, layer.cols, 9):
        errors = {k: int(((chip[:, c] + k >= layer.theta[c]) != (target[:, c] >= layer.theta[c])).sum())
                  for k in range(-200, 201)}
        best = min(errors.values())
        assert errors[int(found[c])] == best
        assert abs(found[c]) == min(abs(k) for k, e in errors.items() if e == best)


@pytest.mark.parametrize("sigma", [0.05, 0.15, 0.3])
def test_guarded_tuning_is_never_worse_than_untuned_on_its_held_out_images(compiled, mnist_train, sigma):
    images, labels = mnist_train.images[:200], mnist_train.labels[:200]
    fit = len(images) - round(len(images) * HOLDOUT)
    for seed in (0, 1):
        chip = Chip(compiled, DeviceParams(sigma_on_rel=sigma, sigma_off_rel=sigma), seed)
        tuning = calibrate(compiled, chip, images, labels=labels)
        untuned, tuned = physics_predictions_shared(compiled, chip, images[fit:], [None, tuning.offsets])
        assert (tuned == labels[fit:]).mean() >= (untuned == labels[fit:]).mean()
        # kept: the tuned accuracy it measured; refused (no significant gain): zero corrections, untuned
        measured = tuning.meta["held_out_accuracy"]["tuned" if tuning.meta["tuning_kept"] else "untuned"]
        assert (tuned == labels[fit:]).mean() == measured
        fixed, broken = tuning.meta["held_out_fixed_broken"]
        assert tuning.meta["tuning_kept"] == (fixed - broken > 1.5 * np.sqrt(fixed + broken))


def test_each_kept_correction_lowers_its_columns_held_out_error(compiled, mnist_train):
    """Layer 0 (its inputs do not depend on tuning): a kept column's held-out error drops."""
    from bmcnn_hw.golden.crossbar import CrossbarAccumulator
    from bmcnn_hw.golden.integer import exact_matmul
    from bmcnn_hw.golden.layers import walk_layers
    from bmcnn_hw.golden.tile_reader import PhysicsReader

    chip = Chip(compiled, DeviceParams(sigma_on_rel=0.25, sigma_off_rel=0.25), 4)
    images = mnist_train.images[:64]
    tuning = calibrate(compiled, chip, images)  # no labels: the column guard alone
    step = next(walk_layers(compiled, images[32:]))
    acc = CrossbarAccumulator(compiled, PhysicsReader(chip))(0, step.layer, step.rows).reshape(-1, step.layer.cols)
    target = exact_matmul(step.rows, step.layer.weight).reshape(-1, step.layer.cols)
    kept = tuning.offsets[0] != 0
    assert kept.any()
    before = column_errors(step.layer, acc, target)
    after = column_errors(step.layer, acc + tuning.offsets[0], target)
    assert np.all(after[kept] < before[kept])


def test_methods_and_their_limits(compiled, mnist_train):
    chip = Chip(compiled, DeviceParams(sigma_on_rel=0.2, sigma_off_rel=0.2), 0)
    lsq = calibrate(compiled, chip, mnist_train.images[:32], method="lsq")
    assert lsq.meta["method"] == "lsq" and "held_out_images" not in lsq.meta
    with pytest.raises(ConfigError, match="one of guarded, lsq"):
        calibrate(compiled, chip, mnist_train.images[:32], method="magic")
    with pytest.raises(ConfigError, match="at least 2 calibration images"):
        calibrate(compiled, chip, mnist_train.images[:1])


def _mean_conductance(r_ohm: float, sigma: float) -> float:
    """E[1/R] of R = r (1 + sigma z), clipped at 1 % of r (the sampler's rule), by quadrature."""
    z_clip = (MIN_R_FRACTION - 1) / sigma
    body, _ = integrate.quad(lambda z: stats.norm.pdf(z) / (r_ohm * (1 + sigma * z)), z_clip, 12)
    return body + stats.norm.cdf(z_clip) / (MIN_R_FRACTION * r_ohm)


def test_variation_aware_builds_aim_at_the_training_noise_models_expected_accumulator(compiled):
    assert training_gain(compiled) == 1.0  # trained plainly
    device = DeviceParams(sigma_on_rel=0.25, sigma_off_rel=0.25)
    noisy = dataclasses.replace(compiled, provenance={**compiled.provenance, "train_variation": {
        "device": device.to_dict(), "encoding": "differential"}})
    expected = ((_mean_conductance(device.r_on_ohm, 0.25) - _mean_conductance(device.r_off_ohm, 0.25))
                / (1 / device.r_on_ohm - 1 / device.r_off_ohm))
    assert training_gain(noisy) == pytest.approx(expected, abs=2e-3)
    assert training_gain(noisy) > 1.05
