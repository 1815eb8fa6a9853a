"""`bmcnn-hw import`: a PyTorch state_dict plus an architecture becomes a checkpoint that
compiles to the same hardware as the network it came from."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bmcnn_hw.artefact import load_model
from bmcnn_hw.build import build
from bmcnn_hw.config import HardwareConfig
from bmcnn_hw.golden.integer import run_integer
from bmcnn_hw.train.checkpoint import load_checkpoint
from bmcnn_hw.train.loop import predict
from tests.helpers import run_cli


@pytest.fixture(scope="module")
def state_dict_file(checkpoint, tmp_path_factory):
    """The test checkpoint's weights as a bare state_dict file, as another project would save them."""
    model, _ = load_checkpoint(checkpoint)
    path = tmp_path_factory.mktemp("sd") / "bnn.pt"
    torch.save(model.state_dict(), path)
    return path


@pytest.mark.slow
def test_imported_state_dict_compiles_to_the_same_hardware(checkpoint, build_dir, state_dict_file, mnist_test,
                                                           tmp_path):
    code, out, err = run_cli("import", state_dict_file, "--arch", "bmcnn-compact", "-o", tmp_path / "ckpt")
    assert code == 0, err
    assert "bmcnn-compact (conv binary, fc binary, fc binary) imported" in out
    imported = build(tmp_path / "ckpt", tmp_path / "build", HardwareConfig())
    original = load_model(build_dir)
    for a, b in zip(original.layers, imported.layers, strict=True):
        for name in ("weight", "theta", "flip", "score_scale", "score_bias"):
            x, y = getattr(a, name), getattr(b, name)
            assert (x is None and y is None) or np.array_equal(x, y), (a.name, name)
    images = mnist_test.images[:500]
    torch_predictions = predict(load_checkpoint(tmp_path / "ckpt")[0], images)
    assert np.array_equal(run_integer(imported, images).predictions, torch_predictions)


@pytest.mark.parametrize("edit, message", [
    (lambda sd: sd.pop("norms.1.running_var"), "key 'norms.1.running_var' of bmcnn-compact is missing"),
    (lambda sd: sd.update({"extra.w": torch.zeros(1)}), "key 'extra.w' is not part of bmcnn-compact"),
    (lambda sd: sd.update({"weights.2": torch.zeros(10, 64)}), "key 'weights.2' has shape (10, 64), bmcnn-compact "
                                                                "needs (10, 128)"),
    (lambda sd: sd["head.bias"].__setitem__(0, float("nan")), "key 'head.bias' holds NaN or infinite values"),
])
def test_a_state_dict_that_does_not_fit_names_the_key(state_dict_file, tmp_path, edit, message):
    state = torch.load(state_dict_file, weights_only=True)
    edit(state)
    torch.save(state, tmp_path / "bad.pt")
    code, _, err = run_cli("import", tmp_path / "bad.pt", "--arch", "bmcnn-compact", "-o", tmp_path / "ckpt")
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "ckpt").exists()


@pytest.mark.slow
def test_bad_files_and_architectures_are_one_line(state_dict_file, tmp_path):
    (tmp_path / "notes.pt").write_text("not a tensor file")
    cases = [(("import", tmp_path / "notes.pt", "--arch", "bmcnn-compact"), "not a PyTorch state_dict file"),
             (("import", state_dict_file, "--arch", "bmcnn-float"), "a float baseline has no hardware form"),
             (("import", state_dict_file, "--arch", "no-such-model"), "unknown model 'no-such-model'")]
    for args, message in cases:
        code, _, err = run_cli(*args, "-o", tmp_path / "ckpt")
        assert code == 2 and message in err, err
    assert not (tmp_path / "ckpt").exists()
    run_cli("import", state_dict_file, "--arch", "bmcnn-compact", "-o", tmp_path / "ok")
    code, _, err = run_cli("import", state_dict_file, "--arch", "bmcnn-compact", "-o", tmp_path / "ok")
    assert code == 2 and "pass --force" in err
