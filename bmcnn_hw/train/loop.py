"""Training loop: in-memory batches, Adam with one-cycle learning rate, validation, resume.

Every random choice derives from ``(seed, epoch[, step])``: the validation split, the
batch order, augmentation shifts and the device samples of variation-aware training.
So a run resumed from its last saved epoch continues exactly as if never interrupted
(same ``--threads``), and the same seed gives the same weights on CPU.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..config import DeviceParams
from ..data.mnist import Dataset
from ..errors import ConfigError
from ..progress import bar as progress_bar
from ..progress import say
from .model import BMCNN, ModelConfig
from .seeds import derived_seed
from .variation import DeviceNoise


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
    val_size: int = 5000
    """Training images held out (seeded) for per-epoch validation."""
    augment_shift: int = 0
    """Random translation of each training image by up to this many pixels (0 = off)."""
    variation: DeviceParams | None = None
    """Variation-aware training: sample these devices into every binary layer, per batch."""
    encoding: str = "differential"
    """Weight encoding the variation-aware device samples assume."""

    def __post_init__(self):
        for name in ("epochs", "batch_size", "threads"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive integer, not {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be positive, not {self.lr!r}")
        if self.val_size < 0 or self.augment_shift < 0:
            raise ConfigError("val_size and augment_shift must be >= 0")

    def to_dict(self) -> dict:
        """JSON form (recorded in the checkpoint)."""
        d = dataclasses.asdict(self)
        d["variation"] = self.variation.to_dict() if self.variation else None
        return d


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


def split_validation(data: Dataset, val_size: int, seed: int) -> tuple[Dataset, Dataset]:
    """(train, validation): a seeded random ``val_size`` images held out.

    Raises:
        ConfigError: when nothing would be left to train on.
    """
    if val_size >= len(data):
        raise ConfigError(f"val_size {val_size} leaves no training images (have {len(data)})")
    order = np.random.default_rng(derived_seed(seed, 1 << 30)).permutation(len(data))
    val, keep = np.sort(order[:val_size]), np.sort(order[val_size:])
    return Dataset(data.images[keep], data.labels[keep]), Dataset(data.images[val], data.labels[val])


def shifted(batch: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Each image of (B, 1, H, W) translated by a random (dy, dx) in [-shift, shift], zero fill."""
    b, _, h, w = batch.shape
    padded = F.pad(batch, (shift, shift, shift, shift))
    dy = torch.randint(0, 2 * shift + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * shift + 1, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, :, None]
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, :]
    return padded[torch.arange(b)[:, None, None], 0, rows, cols].unsqueeze(1)


class TrainState:
    """Everything a resumed run needs: model, optimizer, schedule, history."""

    FILE = "train_state.pt"

    def __init__(self, model: BMCNN, opt, sched, history: list):
        self.model, self.opt, self.sched, self.history = model, opt, sched, history

    def save(self, directory: Path, params: TrainParams) -> None:
        """Write ``train_state.pt`` atomically (after every epoch)."""
        from .checkpoint import write_torch_atomic

        write_torch_atomic(Path(directory) / self.FILE,
                           {"model": self.model.state_dict(), "opt": self.opt.state_dict(),
                            "sched": self.sched.state_dict(), "history": self.history, "params": params.to_dict(),
                            "config": self.model.config.to_dict()})

    def load(self, directory: Path, params: TrainParams) -> None:
        """Restore from ``train_state.pt``.

        Raises:
            ArtefactError: when the file is corrupt or from another model or settings.
        """
        from ..errors import ArtefactError

        path = Path(directory) / self.FILE
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if state["config"] != self.model.config.to_dict():
                raise ArtefactError(f"{path}: written for another model ({state['config'].get('name')}); "
                                    f"train into a fresh --out directory")
            same, mine = state["params"], params.to_dict()
            if same != mine:
                changed = sorted(k for k in mine if same.get(k) != mine[k])
                raise ArtefactError(f"{path}: saved with other training settings ({', '.join(changed)}); "
                                    f"resume with the same options")
            self.model.load_state_dict(state["model"])
            self.opt.load_state_dict(state["opt"])
            self.sched.load_state_dict(state["sched"])
            self.history[:] = state["history"]
        except ArtefactError:
            raise
        except Exception as exc:  # torch raises many types for corrupt files  # noqa: BLE001
            raise ArtefactError(f"{path}: corrupt training state ({str(exc).splitlines()[0]})") from None


def _run_epoch(model: BMCNN, state: TrainState, x_all, y_all, params: TrainParams, epoch: int, noise,
               progress: bool) -> tuple[float, float, list[list[float]]]:
    """One pass over the training set; returns (mean loss, train accuracy, learning-curve points
    [epoch fraction, mean loss, accuracy] every :data:`CURVE_EVERY` batches)."""
    model.train()
    n = len(y_all)
    generator = torch.Generator().manual_seed(derived_seed(params.seed, epoch))
    order = torch.randperm(n, generator=generator)
    steps = (n + params.batch_size - 1) // params.batch_size
    total_loss, correct, seen = 0.0, 0, 0
    window = [0.0, 0, 0]  # loss sum, correct, images since the last curve point
    curve: list[list[float]] = []
    bar = progress_bar(range(steps), desc=f"epoch {epoch + 1}/{params.epochs}", disable=not progress, unit="batch",
                       leave=False, mininterval=0.2)
    for k in bar:
        idx = order[k * params.batch_size:(k + 1) * params.batch_size]
        x = x_all[idx]
        if params.augment_shift:
            x = shifted(x, params.augment_shift, generator)
        if noise is not None:
            noise.at_step(epoch, k)
        scores = model(x)
        loss = F.cross_entropy(scores, y_all[idx])
        state.opt.zero_grad(set_to_none=True)
        loss.backward()
        state.opt.step()
        state.sched.step()
        model.clip_latent_weights()
        batch_correct = (scores.argmax(1) == y_all[idx]).sum().item()
        total_loss += loss.item() * len(idx)
        correct += batch_correct
        seen += len(idx)
        window = [window[0] + loss.item() * len(idx), window[1] + batch_correct, window[2] + len(idx)]
        if (k + 1) % CURVE_EVERY == 0 or k + 1 == steps:
            curve.append([epoch + (k + 1) / steps, window[0] / window[2], window[1] / window[2]])
            window = [0.0, 0, 0]
        if k % 20 == 0:
            bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}",
                            lr=f"{state.sched.get_last_lr()[0]:.1e}")
    return total_loss / n, correct / n, curve


CURVE_EVERY = 10
"""Batches per learning-curve point (mean loss and accuracy of those batches)."""


def train(config: ModelConfig, train_set: Dataset, test_set: Dataset, params: TrainParams,
          progress: bool = True, out_dir: Path | None = None, resume: bool = False,
          stop_after: int | None = None) -> tuple[BMCNN, dict]:
    """Train a model; returns it (eval mode) and metrics.

    Args:
        out_dir: where ``train_state.pt`` is saved after every epoch (resumable).
        resume: continue from ``out_dir``'s saved state when there is one.
        stop_after: stop after this many epochs in total (simulates an interruption).

    Metrics: per-epoch loss, train/validation accuracy, learning rate, seconds,
    images/s; the final test accuracy.
    """
    seed_everything(params.seed, params.threads)
    model = BMCNN(config)
    fit, val = split_validation(train_set.head(params.limit), params.val_size, params.seed) \
        if params.val_size else (train_set.head(params.limit), None)
    x_all, y_all = to_tensor(fit.images), torch.from_numpy(fit.labels.astype(np.int64))
    steps_per_epoch = (len(fit) + params.batch_size - 1) // params.batch_size
    opt = torch.optim.Adam(model.parameters(), lr=params.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=params.lr, total_steps=params.epochs * steps_per_epoch,
                                                pct_start=0.15)
    state = TrainState(model, opt, sched, [])
    if resume and out_dir is not None and (Path(out_dir) / TrainState.FILE).is_file():
        state.load(out_dir, params)
        if progress and state.history:
            say(f"resuming after epoch {len(state.history)} from {out_dir / TrainState.FILE}")
    noise: DeviceNoise | None = None
    if params.variation is not None and not config.is_float:

        noise = DeviceNoise(params.variation, params.encoding, params.seed)
        model.weight_noise = noise
    for epoch in range(len(state.history), params.epochs if stop_after is None else min(stop_after, params.epochs)):
        start = time.perf_counter()
        loss, train_acc, curve = _run_epoch(model, state, x_all, y_all, params, epoch, noise, progress)
        seconds = time.perf_counter() - start
        val_acc = float((predict(model, val.images) == val.labels).mean()) if val is not None else None
        state.history.append({"epoch": epoch + 1, "loss": loss, "train_acc": train_acc, "val_acc": val_acc,
                              "lr_end": sched.get_last_lr()[0], "seconds": seconds,
                              "images_per_s": len(fit) / seconds, "curve": curve})
        if out_dir is not None:
            state.save(out_dir, params)
        if progress:
            shown = f"  validation accuracy {val_acc:.4f}" if val_acc is not None else ""
            say(f"epoch {epoch + 1}/{params.epochs}: loss {loss:.4f}  train accuracy {train_acc:.4f}"
                       f"{shown}  ({seconds:.0f} s, {len(fit) / seconds:.0f} images/s)")
    model.weight_noise = None
    model.eval()
    test_acc = float((predict(model, test_set.images) == test_set.labels).mean()) if len(test_set) else None
    return model, {"history": state.history, "test_acc": test_acc, "train_images": len(fit),
                   "val_images": len(val) if val is not None else 0, "seed": params.seed,
                   "complete": len(state.history) == params.epochs}
