"""``evaluate``: accuracy of a build on a test set with one back end."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .artefact import load_model, verify_netlists
from .config import SpiceMode
from .data.mnist import Dataset
from .errors import ArtefactError, ConfigError
from .golden.chip import Chip
from .golden.crossbar import run_crossbar
from .golden.integer import run_integer
from .golden.tile_reader import PhysicsReader
from .progress import bar

if TYPE_CHECKING:
    from .spice.run import SpiceReader

BACKENDS = ("torch", "golden", "physics", "spice")


def predict_backend(build_dir: Path, images: np.ndarray, backend: str, *, checkpoint: Path | None = None,
                    batch: int | None = None, progress: bool = True, spice_mode: SpiceMode = "auto",
                    spice_jobs: int = 1, solved: dict | None = None, spice_cache=None,
                    spice_scheduler: str | None = None, spice_engine: str = "ngspice") -> np.ndarray:
    """Predicted classes of ``images`` with one back end.

    torch: the trained checkpoint; golden: exact integer model; physics: crossbar
    physics on the build's chip; spice: ngspice on the build's netlists, reads solved as
    ``spice_mode`` says, ``spice_jobs`` ngspice processes at a time (see
    :class:`~bmcnn_hw.spice.run.SpiceReader`; on the Dask cluster at ``spice_scheduler`` if given),
    through the read cache ``spice_cache`` if given, solved by ``spice_engine``.
    ``solved``, if given, receives the physics executor's nonlinear read counts
    (:meth:`PhysicsReader.nonlinear_reads`).
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
    reader: PhysicsReader | SpiceReader | TileReadProgress | None = None
    if backend == "physics":
        reader = PhysicsReader(Chip.of_build(model))
    elif backend == "spice":
        from .spice.run import SpiceReader

        verify_netlists(build_dir)
        reader = SpiceReader(model, Chip.of_build(model), Path(build_dir) / "netlists", mode=spice_mode,
                             jobs=spice_jobs, progress=progress, cache=spice_cache, scheduler=spice_scheduler,
                             engine=spice_engine)
    # SPICE: 16 images per batch, so each tile netlist is loaded once for all their reads; nonlinear
    # physics: 256 (the accumulator reads each distinct input row of a batch once, so larger batches
    # repeat more: conv0's bit planes 4.2x at 16 images, 6.0x at 128; about 1.2 GB at 256)
    nonlinear = reader if isinstance(reader, PhysicsReader) and not reader.level_linear else None
    batch = batch or (16 if backend == "spice" else 256 if nonlinear else 500)
    starts = range(0, len(images), batch)
    if nonlinear is not None:
        reader = TileReadProgress(nonlinear, tile_reads_per_batch(model), len(starts), enabled=progress)
    preds = []
    with bar(total=len(images), desc=backend, unit="image", disable=not progress) as done:
        for start in starts:
            chunk = images[start:start + batch]
            trace = (run_integer(model, chunk) if reader is None
                     else run_crossbar(model, chunk, reader, count_energy=False)[0])
            preds.append(trace.predictions)
            done.update(len(chunk))
            if isinstance(reader, TileReadProgress):
                reader.batch_done()
    if isinstance(reader, TileReadProgress):
        reader.close()
    if solved is not None and nonlinear is not None:
        solved.update(nonlinear.nonlinear_reads())
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)


def tile_reads_per_batch(model) -> int:
    """About the tile reads of one batch on the crossbar executor: one per tile and input bit plane
    (planes read together, or extra reads, make it differ; :class:`TileReadProgress` corrects it)."""
    return sum(layer.tiling.n_row_tiles * layer.tiling.n_col_tiles * layer.input_bits
               for layer in model.layers if layer.tiling is not None)


class TileReadProgress:
    """A :class:`PhysicsReader` that counts its tile reads on a progress bar, so a slow (nonlinear)
    read path shows life and a time estimate within seconds instead of once per batch."""

    def __init__(self, reader: PhysicsReader, reads_per_batch: int, batches: int, enabled: bool = True):
        self._reader = reader
        self.chip = reader.chip
        self._batches, self._done = batches, 0
        self._bar = bar(total=reads_per_batch * batches, desc="physics: tile reads", unit="read",
                        disable=not enabled, leave=False)

    def batch_done(self) -> None:
        """Re-estimate the total from the reads the finished batches really made."""
        self._done += 1
        self._bar.total = round(self._bar.n / self._done * self._batches)
        self._bar.refresh()

    def read(self, *args, **kwargs):
        """The wrapped reader's :meth:`PhysicsReader.read`, counted."""
        result = self._reader.read(*args, **kwargs)
        if self._bar.n >= self._bar.total:  # more reads than estimated: grow the estimate by one batch's worth
            self._bar.total = round(self._bar.total * (self._done + 2) / max(self._done + 1, 1))
        self._bar.update(1)
        return result

    def linear_map(self, *args, **kwargs):
        """The wrapped reader's :meth:`PhysicsReader.linear_map`."""
        return self._reader.linear_map(*args, **kwargs)

    def close(self) -> None:
        """Close the bar."""
        self._bar.close()

    def __getattr__(self, name: str):
        return getattr(self._reader, name)


def evaluate(build_dir: Path, data: Dataset, backend: str, **kwargs) -> dict:
    """Accuracy report of one back end: images, correct, accuracy, seconds (and, for the physics
    executor on nonlinear cells with wires, the distinct tile reads each solver served)."""
    start = time.perf_counter()
    solved: dict[str, int] = {}
    preds = predict_backend(build_dir, data.images, backend, solved=solved, **kwargs)
    correct = int((preds == data.labels).sum())
    report = {"backend": backend, "build": str(build_dir), "images": len(data), "correct": correct,
              "accuracy": correct / max(len(data), 1), "seconds": round(time.perf_counter() - start, 3),
              "predictions": preds.tolist()}
    if solved:
        report["nonlinear_reads"] = solved
    if backend == "spice":
        from .spice.engines import engine_label

        report["spice_engine"] = engine_label(kwargs.get("spice_engine", "ngspice"))
    return report
