"""Benchmark: training speed of every shipped model (seconds per epoch, images/s).

Times a number of real training steps per model (its recipe's batch size and
augmentation, variation-aware training for the compact model as well) and, separately,
the data pipeline alone (batch gather + augmentation) for the same batches, so its
share of a step shows whether it is on the critical path. Ratios are against the
compact model measured in the same run.

    python bench/bench_train.py [--steps 40] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from common import timed

from bmcnn_hw.config import DeviceParams
from bmcnn_hw.data import load_mnist
from bmcnn_hw.train.loop import shifted, to_tensor
from bmcnn_hw.train.model import BMCNN
from bmcnn_hw.train.registry import resolve_model, shipped_models
from bmcnn_hw.train.variation import DeviceNoise

TRAIN_IMAGES = 55000  # 60,000 minus the default validation split


def _batches(x_all, steps: int, batch: int, shift: int, generator):
    order = torch.randperm(len(x_all), generator=generator)
    out = []
    for k in range(steps):
        x = x_all[order[k * batch:(k + 1) * batch]]
        out.append(shifted(x, shift, generator) if shift else x)
    return out


def _steps(name: str, x_all, y_all, steps: int, noise=None) -> tuple[float, float, int]:
    config = resolve_model(name)
    batch, shift = config.train.get("batch_size", 32), config.train.get("augment_shift", 0)
    model = BMCNN(config)
    model.weight_noise = noise
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    _, data_s = timed(_batches, x_all, steps, batch, shift, generator)
    xs = _batches(x_all, steps, batch, shift, torch.Generator().manual_seed(0))
    model.train()
    start = time.perf_counter()
    for k, x in enumerate(xs):
        if noise is not None:
            noise.at_step(0, k)
        loss = F.cross_entropy(model(x), y_all[:len(x)])
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.clip_latent_weights()
    return time.perf_counter() - start, data_s, batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/datasets/mnist"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train = load_mnist(args.data_dir, "train")
    x_all, y_all = to_tensor(train.images), torch.from_numpy(train.labels.astype(np.int64))
    rows = [(name, None) for name in shipped_models()]
    rows.insert(1, ("bmcnn-compact", DeviceParams(sigma_on_rel=0.25, sigma_off_rel=0.25)))
    base = None
    print(f"{args.steps} steps per model, {args.threads} threads; epoch = {TRAIN_IMAGES} images")
    print(f"{'model':32s} {'images/s':>9s} {'s/epoch':>8s} {'vs compact':>10s} {'data share':>10s}")
    for name, variation in rows:
        noise = DeviceNoise(variation, "differential", 0) if variation else None
        step_s, data_s, batch = _steps(name, x_all, y_all, args.steps, noise)
        rate = args.steps * batch / step_s
        base = base or rate
        label = name + (" (variation-aware)" if variation else "")
        print(f"{label:32s} {rate:9.0f} {TRAIN_IMAGES / rate:8.1f} {base / rate:9.2f}x {100 * data_s / step_s:9.1f}%")


if __name__ == "__main__":
    main()
