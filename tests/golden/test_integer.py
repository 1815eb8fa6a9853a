"""The exact integer golden model equals the trained PyTorch model on all 10,000 test images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bmcnn_hw.golden.integer import run_batched, run_integer
from bmcnn_hw.train.checkpoint import load_checkpoint
from bmcnn_hw.train.loop import predict, to_tensor


@pytest.mark.slow
def test_golden_predicts_like_torch_on_full_test_set(checkpoint, compiled, mnist_test):
    model, _ = load_checkpoint(checkpoint)
    golden = run_batched(compiled, mnist_test.images)
    torch_preds = predict(model, mnist_test.images)
    assert len(golden) == 10000
    assert np.array_equal(golden, torch_preds)
    assert (golden == mnist_test.labels).mean() > 0.9  # a real, trained model


def test_every_activation_and_score_is_identical(checkpoint, compiled, mnist_test):
    model, _ = load_checkpoint(checkpoint)
    images = mnist_test.images[:300]
    with torch.no_grad():
        scores, activations = model(to_tensor(images), return_activations=True)
    trace = run_integer(compiled, images)
    for torch_bits, golden_bits in zip(activations, trace.outputs[:-1], strict=True):
        assert np.array_equal(torch_bits.numpy().astype(np.uint8), golden_bits.reshape(torch_bits.shape))
    assert np.array_equal(scores.numpy() * 2 ** compiled.score_frac_bits, trace.scores)
