"""BMCNN model config, straight-through estimators, reproducible training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bmcnn_hw.errors import ArtefactError, ConfigError
from bmcnn_hw.train.binarize import binarize, step
from bmcnn_hw.train.checkpoint import load_checkpoint
from bmcnn_hw.train.loop import TrainParams, train
from bmcnn_hw.train.model import LayerSpec, ModelConfig


def test_config_rejects_sizes_that_do_not_fit():
    with pytest.raises(ConfigError, match="pool 5 does not divide"):
        ModelConfig(layers=(LayerSpec("conv", 4, kernel=5, pool=5), LayerSpec("fc", 10)))
    with pytest.raises(ConfigError, match="kernel 40 larger"):
        ModelConfig(layers=(LayerSpec("conv", 4, kernel=40), LayerSpec("fc", 10)))
    with pytest.raises(ConfigError, match="last layer must be an fc"):
        ModelConfig(layers=(LayerSpec("conv", 4, kernel=5),))


def test_default_shapes_and_fan_ins():
    config = ModelConfig()
    assert config.shapes() == [(1, 28, 28), (32, 12, 12), (128,), (10,)]
    assert config.fan_ins() == [25, 4608, 128]
    assert ModelConfig.from_dict(config.to_dict()) == config


def test_straight_through_estimators():
    w = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0], requires_grad=True)
    out = binarize(w)
    assert out.tolist() == [-1, -1, 1, 1, 1]
    out.sum().backward()
    assert w.grad.tolist() == [0, 1, 1, 1, 0]
    y = torch.tensor([-0.5, 0.0, 3.0], requires_grad=True)
    assert step(y).tolist() == [0, 1, 1]


def test_same_seed_same_weights(mnist_train, mnist_test):
    params = TrainParams(epochs=1, seed=3, limit=640, val_size=0)
    a, _ = train(ModelConfig(), mnist_train, mnist_test.head(100), params, progress=False)
    b, _ = train(ModelConfig(), mnist_train, mnist_test.head(100), params, progress=False)
    c, _ = train(ModelConfig(), mnist_train, mnist_test.head(100), TrainParams(epochs=1, seed=4, limit=640, val_size=0),
                 progress=False)
    for wa, wb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(wa, wb)
    assert not torch.equal(a.weights[0], c.weights[0])


def test_corrupt_checkpoint_is_an_artefact_error(tmp_path, checkpoint):
    import shutil

    bad = tmp_path / "ckpt"
    shutil.copytree(checkpoint, bad)
    (bad / "model.pt").write_bytes(b"garbage")
    with pytest.raises(ArtefactError, match=r"model\.pt: corrupt"):
        load_checkpoint(bad)
    (bad / "config.json").write_text("{")
    with pytest.raises(ArtefactError, match=r"config\.json: malformed"):
        load_checkpoint(bad)
    with pytest.raises(ArtefactError, match="missing"):
        load_checkpoint(tmp_path / "nowhere")


def test_a_config_that_does_not_fit_the_weights_names_every_mismatch(tmp_path, checkpoint):
    import json
    import shutil

    other = tmp_path / "ckpt"
    shutil.copytree(checkpoint, other)
    config = json.loads((other / "config.json").read_text())
    config["model"]["layers"][0]["out"] *= 2  # conv0 twice as wide as the saved weights
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtefactError) as info:
        load_checkpoint(other)
    message = str(info.value)
    assert "\n" not in message and "weights do not fit the model of" in message
    assert message.count("size mismatch for") >= 2  # conv0's weight and the next layer's input, not just the first


@pytest.mark.slow
def test_one_epoch_full_mnist_reaches_97_percent(mnist_train, mnist_test):
    _, metrics = train(ModelConfig(), mnist_train, mnist_test, TrainParams(epochs=1, seed=0), progress=False)
    assert metrics["test_acc"] >= 0.97, metrics
    assert np.isfinite(metrics["history"][0]["loss"])
