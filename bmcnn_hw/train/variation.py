"""Variation-aware training: device samples injected into the memristive layers' weights.

The physics executor reads a column as ``sum_r x_r V (G+_rc - G-_rc)`` and the ADC
divides by the nominal unit current ``V (G_on - G_off)``. With ideal wires a sampled
chip therefore computes with effective weights ``(G+ - G-) / (G_on - G_off)`` instead of
+-1. :class:`DeviceNoise` draws those conductances with the golden model's own sampler
(:func:`bmcnn_hw.golden.chip.sample_state`: the same DeviceParams, distribution,
clipping and stuck-at faults), fresh for every batch, and substitutes them in the
forward pass; gradients pass straight through to the latent weights. (ADC rounding,
bit-serial planes and wire resistance are not modelled in training.)
"""

from __future__ import annotations

import numpy as np
import torch

from ..config import DeviceParams
from ..golden.chip import sample_state
from ..golden.device_map import reference_resistance
from .seeds import derived_seed


class DeviceNoise:
    """``weight_noise`` callback of :class:`~bmcnn_hw.train.model.BMCNN` for one training run."""

    def __init__(self, params: DeviceParams, encoding: str, seed: int):
        self.params, self.encoding, self.seed = params, encoding, seed
        self.epoch = self.step = 0
        self.unit = 1.0 / params.r_on_ohm - 1.0 / params.r_off_ohm
        self.g_ref = 1.0 / reference_resistance(params.r_on_ohm, params.r_off_ohm)

    def at_step(self, epoch: int, step: int) -> None:
        """Select the samples of one batch (so a resumed run draws the same ones)."""
        self.epoch, self.step = epoch, step

    def _conductances(self, on: bool, shape, rng) -> np.ndarray:
        return 1.0 / sample_state(on, shape, self.params, rng)

    def __call__(self, index: int, weights: torch.Tensor) -> torch.Tensor:
        """Effective weights of a chip sample for binary ``weights`` (+-1) of layer ``index``."""
        rng = np.random.default_rng(derived_seed(self.seed, self.epoch, self.step, index))
        shape = tuple(weights.shape)
        g_on, g_off = self._conductances(True, shape, rng), self._conductances(False, shape, rng)
        if self.encoding == "reference":
            # +1: (G_on' - G_ref), -1: (G_off' - G_ref), over the halved unit (G_on - G_off) / 2.
            plus = torch.from_numpy((g_on - self.g_ref) / (self.unit / 2)).to(weights.dtype)
            minus = torch.from_numpy((g_off - self.g_ref) / (self.unit / 2)).to(weights.dtype)
            effective = torch.where(weights > 0, plus, minus)
            return weights + (effective - weights).detach()
        # differential: +1 -> (G_on' - G_off'), -1 -> (G_off'' - G_on''): +-1 times one factor.
        factor = torch.from_numpy((g_on - g_off) / self.unit).to(weights.dtype)
        return weights * factor
