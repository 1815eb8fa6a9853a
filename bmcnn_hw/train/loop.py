"""Training loop: in-memory batches, Adam with cosine learning-rate decay, progress bar."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..data.mnist import Dataset
from .model import BMCNN, ModelConfig


@dataclass(frozen=True)
class TrainParams:
    """Hyper-parameters of one training run."""

    epochs: int = 1
    seed: int = 0
    batch_size: int = 32
    lr: float = 5e-3
    threads: int = 2
    limit: int | None = None
    """Train on the first ``limit`` training images only (tests, smoke runs)."""


def seed_everything(seed: int, threads: int) -> None:
    """Make training reproducible on CPU."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) -> float (N, 1, H, W) with integer pixel values."""
    return torch.from_numpy(images).unsqueeze(1).float()


@torch.no_grad()
def predict(model: BMCNN, images: np.ndarray, batch: int = 1000) -> np.ndarray:
    """Predicted classes of the model in eval mode."""
    model.eval()
    out = [model(to_tensor(images[i:i + batch])).argmax(1).numpy() for i in range(0, len(images), batch)]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def train(config: ModelConfig, train_set: Dataset, test_set: Dataset, params: TrainParams,
          progress: bool = True) -> tuple[BMCNN, dict]:
    """Train a BMCNN; returns the model (eval mode) and metrics.

    Metrics: per-epoch loss, train accuracy, test accuracy, seconds, images/s.
    """
    seed_everything(params.seed, params.threads)
    model = BMCNN(config)
    data = train_set.head(params.limit)
    x_all, y_all = to_tensor(data.images), torch.from_numpy(data.labels.astype(np.int64))
    steps_per_epoch = (len(data) + params.batch_size - 1) // params.batch_size
    opt = torch.optim.Adam(model.parameters(), lr=params.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=params.lr, total_steps=params.epochs * steps_per_epoch,
                                                pct_start=0.15)
    generator = torch.Generator().manual_seed(params.seed)
    history = []
    for epoch in range(params.epochs):
        model.train()
        order = torch.randperm(len(data), generator=generator)
        start, total_loss, correct = time.perf_counter(), 0.0, 0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{params.epochs}", disable=not progress,
                   unit="batch", leave=True, mininterval=0.2 if sys.stderr.isatty() else 10.0)
        for k in bar:
            idx = order[k * params.batch_size:(k + 1) * params.batch_size]
            scores = model(x_all[idx])
            loss = F.cross_entropy(scores, y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            model.clip_latent_weights()
            total_loss += loss.item() * len(idx)
            correct += (scores.argmax(1) == y_all[idx]).sum().item()
            if k % 20 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{correct / ((k + 1) * params.batch_size):.3f}")
        seconds = time.perf_counter() - start
        test_acc = float((predict(model, test_set.images) == test_set.labels).mean())
        history.append({"epoch": epoch + 1, "loss": total_loss / len(data), "train_acc": correct / len(data),
                        "test_acc": test_acc, "seconds": seconds, "images_per_s": len(data) / seconds})
        if progress:
            tqdm.write(f"epoch {epoch + 1}: loss {history[-1]['loss']:.4f}  test accuracy {test_acc:.4f}")
    model.eval()
    return model, {"history": history, "test_acc": history[-1]["test_acc"] if history else None}
