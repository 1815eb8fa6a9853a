"""Training as users expect: resume, validation split, outputs, variation-aware samples."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from bmcnn_hw.cli import main
from bmcnn_hw.config import DeviceParams
from bmcnn_hw.errors import ArtefactError, ConfigError
from bmcnn_hw.golden.chip import sample_state
from bmcnn_hw.train.loop import TrainParams, derived_seed, shifted, split_validation, train
from bmcnn_hw.train.model import ModelConfig
from bmcnn_hw.train.variation import DeviceNoise


def _same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, mnist_train, mnist_test):
    params = TrainParams(epochs=2, seed=5, limit=768, val_size=128, batch_size=64, augment_shift=1)
    whole, metrics = train(ModelConfig(), mnist_train, mnist_test.head(50), params, progress=False)
    train(ModelConfig(), mnist_train, mnist_test.head(50), params, progress=False, out_dir=tmp_path, stop_after=1)
    resumed, again = train(ModelConfig(), mnist_train, mnist_test.head(50), params, progress=False,
                           out_dir=tmp_path, resume=True)
    assert _same_weights(whole, resumed)
    assert [h["val_acc"] for h in metrics["history"]] == [h["val_acc"] for h in again["history"]]
    with pytest.raises(ArtefactError, match="other training settings \\(lr\\)"):
        train(ModelConfig(), mnist_train, mnist_test.head(50), dataclasses.replace(params, lr=1e-3),
              progress=False, out_dir=tmp_path, resume=True)


def test_validation_split_is_seeded_and_disjoint(mnist_train):
    data = mnist_train.head(1000)
    fit, val = split_validation(data, 100, seed=3)
    _, val2 = split_validation(data, 100, seed=3)
    assert len(fit) == 900 and len(val) == 100 and np.array_equal(val.labels, val2.labels)
    with pytest.raises(ConfigError, match="leaves no training images"):
        split_validation(data, 1000, seed=0)


def test_shift_augmentation_translates_with_zero_fill():
    image = torch.zeros(1, 1, 5, 5)
    image[0, 0, 2, 2] = 7
    out = shifted(image.expand(200, -1, -1, -1), 1, torch.Generator().manual_seed(0))
    positions = {tuple(np.argwhere(o[0].numpy() == 7)[0]) for o in out}
    assert positions == {(r, c) for r in (1, 2, 3) for c in (1, 2, 3)}
    assert all(o.sum() == 7 for o in out)


def test_device_noise_uses_the_golden_sampler():
    weights = torch.where(torch.rand(64, 64, generator=torch.Generator().manual_seed(0)) > 0.5, 1.0, -1.0)
    ideal = DeviceNoise(DeviceParams(), "differential", seed=0)
    assert torch.equal(ideal(0, weights), weights)  # no spread: exactly +-1
    params = DeviceParams(sigma_on_rel=0.3, sigma_off_rel=0.3)
    noise = DeviceNoise(params, "differential", seed=0)
    a, b = noise(1, weights), noise(1, weights)
    assert torch.equal(a, b) and not torch.equal(a, weights)  # seeded by (seed, epoch, step, layer)
    noise.at_step(0, 1)
    assert not torch.equal(noise(1, weights), a)  # fresh samples per batch
    rng = np.random.default_rng(derived_seed(0, 0, 0, 1))  # the golden chip sampler, drawn by hand
    g_on = 1 / sample_state(True, (64, 64), params, rng)
    g_off = 1 / sample_state(False, (64, 64), params, rng)
    expected = weights.numpy() * (g_on - g_off) / (1 / params.r_on_ohm - 1 / params.r_off_ohm)
    assert np.allclose(a.numpy(), expected, rtol=1e-6)
    ref = DeviceNoise(params, "reference", seed=0)(1, weights)
    assert 1.0 < float((ref * weights).mean()) < 1.3  # E[1/R] > 1/E[R]: reads run a little hot


def test_variation_aware_training_needs_variation(capsys):
    assert main(["train", "--variation-aware", "--data-dir", "/nonexistent"]) == 2
    assert "--variation-aware needs device variation" in capsys.readouterr().err


@pytest.mark.slow
def test_train_command_writes_checkpoint_metrics_and_plot(tmp_path, mnist_dir):
    out = tmp_path / "ckpt"
    code = main(["train", "--model", "bmcnn-hybrid", "--epochs", "1", "--train-images", "600", "--val-size", "100",
                 "--variation-aware", "--sigma-on", "0.1", "--sigma-off", "0.1", "--out", str(out),
                 "--data-dir", str(mnist_dir)])
    assert code == 0
    for name in ("model.pt", "config.json", "metrics.json", "learning_curve.png", "train_state.pt"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert metrics["train_images"] == 500 and metrics["val_images"] == 100 and metrics["complete"]
    assert config["model"]["name"] == "bmcnn-hybrid" and config["train"]["variation"]["sigma_on_rel"] == 0.1
    assert config["train"]["epochs"] == 1 and config["train"]["batch_size"] == 64  # CLI over the model's recipe
