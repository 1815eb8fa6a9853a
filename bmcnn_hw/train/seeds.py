"""Seeds derived from integer keys, shared by training and its device-noise model."""

from __future__ import annotations

import numpy as np


def derived_seed(*keys: int) -> int:
    """A 63-bit seed derived from integer keys (run seed, epoch, step ...)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(2, np.uint64)[0] >> np.uint64(1))
