"""The exact integer golden model equals the trained PyTorch model (all 10,000 test images per shipped
model: tests/golden/test_models_exact.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bmcnn_hw.golden.integer import run_integer
from bmcnn_hw.train.checkpoint import load_checkpoint
from bmcnn_hw.train.loop import to_tensor


def test_every_activation_and_score_is_identical(checkpoint, compiled, mnist_test):
    model, _ = load_checkpoint(checkpoint)
    images = mnist_test.images[:300]
    with torch.no_grad():
        scores, activations = model(to_tensor(images), return_activations=True)
    trace = run_integer(compiled, images)
    for torch_bits, golden_bits in zip(activations, trace.outputs[:-1], strict=True):
        assert np.array_equal(torch_bits.numpy().astype(np.uint8), golden_bits.reshape(torch_bits.shape))
    assert np.array_equal(scores.numpy() * 2 ** compiled.score_frac_bits, trace.scores)


def test_a_first_layer_of_fewer_bits_sees_each_pixels_top_bits():
    from bmcnn_hw.artefact import pixel_shift
    from bmcnn_hw.golden.layers import network_input

    pixels = np.array([[[0, 1, 127, 128, 200, 255]]], dtype=np.uint8)
    assert [pixel_shift(bits) for bits in (1, 4, 8, 12)] == [7, 4, 0, 0]
    assert network_input(pixels, pixel_shift(1)).ravel().tolist() == [0, 0, 0, 1, 1, 1]
    assert network_input(pixels, pixel_shift(4)).ravel().tolist() == [0, 0, 7, 8, 12, 15]
    assert network_input(pixels, 0).ravel().tolist() == pixels.ravel().tolist()


@pytest.mark.parametrize("input_bits", [1, 3])
def test_torch_and_golden_quantise_pixels_alike(input_bits, mnist_test):
    """An untrained model of 1 or 3 input bits: torch and the compiled golden model give the
    same activations and scores on real images (both read the pixel's top bits)."""
    from dataclasses import replace

    from bmcnn_hw.compile import compile_checkpoint
    from bmcnn_hw.config import HardwareConfig
    from bmcnn_hw.train.model import BMCNN
    from bmcnn_hw.train.registry import resolve_model

    torch.manual_seed(input_bits)
    model = BMCNN(replace(resolve_model("bmcnn-compact"), input_bits=input_bits)).eval()
    compiled = compile_checkpoint(model, HardwareConfig())
    assert compiled.layers[0].input_bits == input_bits and compiled.layers[0].input_shift == 8 - input_bits
    images = mnist_test.images[:100]
    with torch.no_grad():
        scores, activations = model(to_tensor(images), return_activations=True)
    trace = run_integer(compiled, images)
    assert trace.accumulators[0].max() <= compiled.layers[0].acc_max  # inputs within 2**input_bits - 1
    for torch_bits, golden_bits in zip(activations, trace.outputs[:-1], strict=True):
        assert np.array_equal(torch_bits.numpy().astype(np.uint8), golden_bits.reshape(torch_bits.shape))
    assert np.array_equal(scores.numpy() * 2 ** compiled.score_frac_bits, trace.scores)
