"""The reference CompiledModel whose Verilog is checked in under ``rtl/``.

The default BMCNN configuration with deterministic parameters (NumPy ``default_rng(0)``:
latent weights, BN statistics and score head), compiled with the default hardware. It is
not a trained network; it exists so the checked-in RTL is reproducible byte for byte on
any machine, and a test fails when the emitted Verilog changes without ``rtl/`` being
regenerated (``make rtl``).
"""

from __future__ import annotations

import numpy as np
import torch

from ..artefact import CompiledModel
from ..compile import compile_checkpoint
from ..config import HardwareConfig
from ..train.model import BMCNN, ModelConfig, ThresholdBN


def reference_model() -> CompiledModel:
    """The default configuration with seeded, untrained parameters, compiled."""
    rng = np.random.default_rng(0)
    net = BMCNN(ModelConfig())
    with torch.no_grad():
        for w in net.weights:
            w.copy_(torch.from_numpy(rng.uniform(-1, 1, tuple(w.shape))))
        for norm, fan_in in zip(net.norms, net.config.fan_ins()[:len(net.norms)], strict=True):
            assert isinstance(norm, ThresholdBN)  # the binary default model folds integer thresholds
            n = norm.weight.numel()
            norm.weight.copy_(torch.from_numpy(rng.normal(0, 1, n)))
            norm.bias.copy_(torch.from_numpy(rng.normal(0, 1, n)))
            norm.running_mean.copy_(torch.from_numpy(rng.normal(0, np.sqrt(fan_in), n)))
            norm.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, n) * fan_in))
        net.head.scale.copy_(torch.from_numpy(rng.uniform(0.05, 0.5, net.head.scale.numel())))
        net.head.bias.copy_(torch.from_numpy(rng.normal(0, 1, net.head.bias.numel())))
    return compile_checkpoint(net.eval(), HardwareConfig())
