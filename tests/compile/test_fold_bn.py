"""fold_bn: the integer threshold equals the float64 BN + step on every reachable accumulator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bmcnn_hw.compile.fold_bn import fold_threshold
from bmcnn_hw.compile.tile import tile_layer
from bmcnn_hw.train.model import ThresholdBN


def _random_norm(seed: int, channels: int) -> ThresholdBN:
    g = torch.Generator().manual_seed(seed)
    norm = ThresholdBN(channels, 1e-5).eval()
    with torch.no_grad():
        norm.weight.copy_(torch.randn(channels, generator=g))
        norm.weight[0] = 0.0  # constant activation
        norm.weight[1] = -1e-9  # nearly flat, decreasing
        norm.bias.copy_(torch.randn(channels, generator=g) * 3)
        norm.bias[2] = 1e9  # always on
        norm.running_mean.copy_(torch.randn(channels, generator=g, dtype=torch.float64) * 100)
        norm.running_var.copy_(torch.rand(channels, generator=g, dtype=torch.float64) * 50 + 0.1)
    return norm


@pytest.mark.parametrize("seed", range(5))
def test_folded_threshold_is_exact_on_the_whole_range(seed):
    channels, lo, hi = 16, -300, 300
    norm = _random_norm(seed, channels)
    theta, flip = fold_threshold(norm, lo, hi)
    acc = torch.arange(lo, hi + 1, dtype=torch.float32)[:, None].expand(-1, channels)
    expected = norm(acc).numpy().astype(bool)
    folded = (acc.numpy() >= theta) ^ flip.astype(bool)
    assert np.array_equal(folded, expected)
    assert ((lo <= theta) & (theta <= hi + 1)).all()


@pytest.mark.parametrize("seed", range(3))
def test_bisection_fold_of_wide_ranges_equals_the_grid_fold(seed, monkeypatch):
    """Digital fixed-point layers have accumulator ranges too wide for the grid; bisection must agree."""
    import bmcnn_hw.compile.fold_bn as fold

    norm = _random_norm(seed, 16)
    grid = fold_threshold(norm, -300, 300)
    monkeypatch.setattr(fold, "GRID_LIMIT", 10)
    bisected = fold_threshold(norm, -300, 300)
    assert np.array_equal(grid[0], bisected[0]) and np.array_equal(grid[1], bisected[1])


def test_tiling_records_padding():
    t = tile_layer(300, 10, 128, 8)
    assert (t.n_row_tiles, t.n_col_tiles, t.pad_rows, t.pad_cols) == (3, 2, 84, 6)
    assert t.row_range(2, 300) == (256, 300) and t.col_range(1, 10) == (8, 10)
