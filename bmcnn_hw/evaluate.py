"""``evaluate``: accuracy of a build on a test set with one back end."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from .config import SpiceMode
from .errors import ArtefactError, ConfigError

if TYPE_CHECKING:  # the CLI reads BACKENDS for --help: numpy and the executors load when a back end runs
    import numpy as np

    from .artefact import CompiledModel
    from .data.mnist import Dataset
    from .golden.tile_reader import PhysicsReader, TileReader


@dataclass
class PredictOptions:
    """How a back end predicts; each back end reads the fields it needs.

    ``checkpoint``: the trained model for ``torch`` (default: the build's). ``batch``: images per
    batch (default: the back end's). ``spice_*``: how SPICE solves reads (see
    :class:`~bmcnn_hw.spice.run.SpiceReader`: mode, processes, read cache, Dask scheduler, engine).
    """

    checkpoint: Path | None = None
    batch: int | None = None
    progress: bool = True
    spice_mode: SpiceMode = "auto"
    spice_jobs: int = 1
    spice_cache: Any = None
    spice_scheduler: str | None = None
    spice_engine: str = "ngspice"


Predictor: TypeAlias = "Callable[[Path, CompiledModel, np.ndarray, PredictOptions, dict], np.ndarray]"
"""A back end's prediction: (build dir, its model, images, options, a dict the back end may fill
with counts of the work it did) -> predicted classes."""


@dataclass(frozen=True)
class Backend:
    """An executor ``evaluate`` predicts with: its name, what it is (``--backend``'s help) and how."""

    name: str
    description: str
    predict: Predictor


def _predict_torch(build_dir: Path, model: CompiledModel, images: np.ndarray, options: PredictOptions,
                   solved: dict) -> np.ndarray:
    from .train.checkpoint import load_checkpoint
    from .train.loop import predict

    ckpt = options.checkpoint or model.provenance.get("checkpoint")
    if not ckpt:
        raise ArtefactError(f"{build_dir}: manifest names no checkpoint; pass --checkpoint")
    return predict(load_checkpoint(Path(ckpt))[0], images)


def _predict_golden(build_dir: Path, model: CompiledModel, images: np.ndarray, options: PredictOptions,
                    solved: dict) -> np.ndarray:
    return _batched(model, images, None, options.batch or 500, "golden", options.progress)


def _predict_physics(build_dir: Path, model: CompiledModel, images: np.ndarray, options: PredictOptions,
                     solved: dict) -> np.ndarray:
    from .golden.chip import Chip
    from .golden.tile_reader import PhysicsReader

    reader = PhysicsReader(Chip.of_build(model))
    if reader.level_linear:
        return _batched(model, images, reader, options.batch or 500, "physics", options.progress)
    # 256 images per batch: the accumulator reads each distinct input row of a batch once, so larger
    # batches repeat more (conv0's bit planes 4.2x at 16 images, 6.0x at 128; about 1.2 GB at 256)
    batch = options.batch or 256
    counted = TileReadProgress(reader, tile_reads_per_batch(model), -(-len(images) // batch),
                               enabled=options.progress)
    try:
        return _batched(model, images, counted, batch, "physics", options.progress, counted.batch_done)
    finally:
        counted.close()
        solved.update(reader.nonlinear_reads())


def _predict_spice(build_dir: Path, model: CompiledModel, images: np.ndarray, options: PredictOptions,
                   solved: dict) -> np.ndarray:
    from .artefact import verify_netlists
    from .golden.chip import Chip
    from .spice.run import SpiceReader

    verify_netlists(build_dir)
    reader = SpiceReader(model, Chip.of_build(model), Path(build_dir) / "netlists", mode=options.spice_mode,
                         jobs=options.spice_jobs, progress=options.progress, cache=options.spice_cache,
                         scheduler=options.spice_scheduler, engine=options.spice_engine)
    # 16 images per batch, so each tile netlist is loaded once for all their reads
    return _batched(model, images, reader, options.batch or 16, "spice", options.progress)


def _batched(model: CompiledModel, images: np.ndarray, reader: TileReader | None, batch: int, label: str,
             progress: bool, after_batch: Callable[[], None] | None = None) -> np.ndarray:
    """Predicted classes of ``images`` in batches: by the integer model (``reader`` None) or the
    crossbar executor on ``reader``'s tile reads."""
    import numpy as np

    from .golden.crossbar import run_crossbar
    from .golden.integer import run_integer
    from .progress import bar

    preds = []
    with bar(total=len(images), desc=label, unit="image", disable=not progress) as done:
        for start in range(0, len(images), batch):
            chunk = images[start:start + batch]
            trace = (run_integer(model, chunk) if reader is None
                     else run_crossbar(model, chunk, reader, count_energy=False)[0])
            preds.append(trace.predictions)
            done.update(len(chunk))
            if after_batch is not None:
                after_batch()
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)


BACKENDS: dict[str, Backend] = {backend.name: backend for backend in (
    Backend("torch", "trained model", _predict_torch),
    Backend("golden", "exact integer", _predict_golden),
    Backend("physics", "crossbar model of the build's chip", _predict_physics),
    Backend("spice", "SPICE (--engine) on the build's netlists (see --mode for how reads are solved)",
            _predict_spice),
)}
"""The back ends by name: ``evaluate --backend`` offers exactly these (a new one is one entry)."""
BackendName = Literal["torch", "golden", "physics", "spice"]
"""The names of :data:`BACKENDS`, as a type (``evaluate --backend``'s choices; a test keeps them equal)."""


def predict_backend(build_dir: Path, images: np.ndarray, backend: str, *, solved: dict | None = None,
                    **options: Any) -> np.ndarray:
    """Predicted classes of ``images`` with the back end named ``backend`` (:data:`BACKENDS`);
    ``options`` are :class:`PredictOptions` fields. ``solved``, if given, receives the physics
    executor's nonlinear read counts (:meth:`~bmcnn_hw.golden.tile_reader.PhysicsReader.nonlinear_reads`).

    Raises:
        ConfigError: for a name that is not a back end.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    from .artefact import load_model

    model = load_model(build_dir)
    return BACKENDS[backend].predict(Path(build_dir), model, images, PredictOptions(**options),
                                     solved if solved is not None else {})


def tile_reads_per_batch(model) -> int:
    """About the tile reads of one batch on the crossbar executor: one per tile and input bit plane
    (planes read together, or extra reads, make it differ; :class:`TileReadProgress` corrects it)."""
    return sum(layer.tiling.n_row_tiles * layer.tiling.n_col_tiles * layer.input_bits
               for layer in model.layers if layer.tiling is not None)


class TileReadProgress:
    """A :class:`PhysicsReader` that counts its tile reads on a progress bar, so a slow (nonlinear)
    read path shows life and a time estimate within seconds instead of once per batch."""

    def __init__(self, reader: PhysicsReader, reads_per_batch: int, batches: int, enabled: bool = True):
        from .progress import bar

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
