"""evaluate's back-end registry: every back end is one entry, and each predicts what it should."""

from __future__ import annotations

import numpy as np
import pytest

from bmcnn_hw.artefact import load_model
from bmcnn_hw.errors import ConfigError
from bmcnn_hw.evaluate import BACKENDS, Backend, evaluate, predict_backend


def test_a_new_back_end_is_one_registry_entry(build_dir, mnist_test, monkeypatch):
    """A back end added to BACKENDS is offered and run with the options given, nothing else."""
    seen = {}

    def always_seven(build, model, images, options, solved):
        seen.update(batch=options.batch, layers=len(model.layers))
        solved["calls"] = 1
        return np.full(len(images), 7)

    monkeypatch.setitem(BACKENDS, "seven", Backend("seven", "always class 7", always_seven))
    data = mnist_test.head(50)
    report = evaluate(build_dir, data, "seven", batch=5)
    assert report["correct"] == int((data.labels == 7).sum()) and report["nonlinear_reads"] == {"calls": 1}
    assert seen == {"batch": 5, "layers": len(load_model(build_dir).layers)}


def test_the_executors_agree_and_an_unknown_name_is_refused(build_dir, mnist_test):
    """golden, physics (the build's chip is ideal) and torch give the same classes; a name that
    is not registered is a ConfigError naming the registered ones."""
    images = mnist_test.images[:40]
    golden = predict_backend(build_dir, images, "golden", progress=False, batch=16)
    assert np.array_equal(golden, predict_backend(build_dir, images, "physics", progress=False))
    assert np.array_equal(golden, predict_backend(build_dir, images, "torch", progress=False))
    with pytest.raises(ConfigError, match="backend must be one of torch, golden, physics, spice, not 'gold'"):
        predict_backend(build_dir, images, "gold")
