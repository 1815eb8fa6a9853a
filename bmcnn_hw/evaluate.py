"""``evaluate``: accuracy of a build on a test set with one back end."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from .artefact import load_model, verify_netlists
from .config import SpiceMode
from .data.mnist import Dataset
from .errors import ArtefactError, ConfigError
from .golden.chip import Chip
from .golden.crossbar import PhysicsReader, run_crossbar
from .golden.integer import run_integer

if TYPE_CHECKING:
    from .spice.run import SpiceReader

BACKENDS = ("torch", "golden", "physics", "spice")


def predict_backend(build_dir: Path, images: np.ndarray, backend: str, *, checkpoint: Path | None = None,
                    batch: int | None = None, progress: bool = True, spice_mode: SpiceMode = "auto",
                    spice_jobs: int = 1) -> np.ndarray:
    """Predicted classes of ``images`` with one back end.

    torch: the trained checkpoint; golden: exact integer model; physics: crossbar
    physics on the build's chip; spice: ngspice on the build's netlists, reads solved as
    ``spice_mode`` says, ``spice_jobs`` ngspice processes at a time (see
    :class:`~bmcnn_hw.spice.run.SpiceReader`).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    model = load_model(build_dir)
    if backend == "torch":
        from .train.checkpoint import load_checkpoint
        from .train.loop import predict

        ckpt = checkpoint or model.provenance.get("checkpoint")
        if not ckpt:
            raise ArtefactError(f"{build_dir}: manifest names no checkpoint; pass --checkpoint")
        return predict(load_checkpoint(Path(ckpt))[0], images)
    reader: PhysicsReader | SpiceReader | None = None
    if backend == "physics":
        reader = PhysicsReader(Chip.of_build(model))
    elif backend == "spice":
        from .spice.run import SpiceReader

        verify_netlists(build_dir)
        reader = SpiceReader(model, Chip.of_build(model), Path(build_dir) / "netlists", mode=spice_mode,
                             jobs=spice_jobs, progress=progress)
    # SPICE: 16 images per batch, so each tile netlist is loaded once for all their reads
    batch = batch or (16 if backend == "spice" else 500)
    preds = []
    for start in tqdm(range(0, len(images), batch), desc=f"{backend}", unit="batch", disable=not progress):
        chunk = images[start:start + batch]
        trace = run_integer(model, chunk) if reader is None else run_crossbar(model, chunk, reader)[0]
        preds.append(trace.predictions)
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)


def evaluate(build_dir: Path, data: Dataset, backend: str, **kwargs) -> dict:
    """Accuracy report of one back end: images, correct, accuracy, seconds."""
    start = time.perf_counter()
    preds = predict_backend(build_dir, data.images, backend, **kwargs)
    correct = int((preds == data.labels).sum())
    return {"backend": backend, "build": str(build_dir), "images": len(data), "correct": correct,
            "accuracy": correct / max(len(data), 1), "seconds": round(time.perf_counter() - start, 3),
            "predictions": preds.tolist()}
