"""Checkpoint directories: ``model.pt`` (state dict), ``config.json``, ``metrics.json``,
``learning_curve.png`` (and ``train_state.pt``, written by the training loop to resume)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import torch

from ..errors import ArtefactError, BmcnnError
from ..io_utils import write_atomic_bytes, write_json_atomic
from .model import BMCNN, ModelConfig


def write_torch_atomic(path: Path, obj) -> None:
    """``torch.save`` of ``obj`` to ``path``, atomically (never a half-written file)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_atomic_bytes(Path(path), buffer.getvalue())


THRESHOLDS_FILE = "thresholds.json"
"""The integer thresholds an imported checkpoint carries (:mod:`bmcnn_hw.compile.thresholds`)."""


def save_checkpoint(directory: Path, model: BMCNN, train_params: dict, metrics: dict, plot: bool = True,
                    thresholds: dict | None = None) -> None:
    """Write a checkpoint directory (each file atomically); ``plot``: the learning curve too;
    ``thresholds``: the JSON of ``thresholds.json`` (an import), else an older one is removed (it
    belonged to other weights). A directory this call created is removed again when a write fails
    (a full disk, Ctrl-C), so no half checkpoint is left where none was."""
    directory = Path(directory)
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    try:
        (directory / THRESHOLDS_FILE).unlink(missing_ok=True)  # first: never beside weights it does not fit
        write_torch_atomic(directory / "model.pt", model.state_dict())
        write_json_atomic(directory / "config.json", {"model": model.config.to_dict(), "train": train_params})
        write_json_atomic(directory / "metrics.json", metrics)
        if thresholds is not None:
            write_json_atomic(directory / THRESHOLDS_FILE, thresholds)
        if plot:
            from .plots import plot_learning_curve

            plot_learning_curve(metrics.get("history", []), directory / "learning_curve.png",
                                f"{model.config.name}: test accuracy {100 * (metrics.get('test_acc') or 0):.2f} %")
    except BaseException:
        if created:
            shutil.rmtree(directory, ignore_errors=True)
        raise


def load_checkpoint(directory: Path) -> tuple[BMCNN, dict]:
    """Load a checkpoint directory; returns the model in eval mode and its config dict.

    Raises:
        ArtefactError: naming the file when it is missing, not JSON, or does not fit the model.
    """
    directory = Path(directory)
    config_path, weights_path = directory / "config.json", directory / "model.pt"
    for path in (config_path, weights_path):
        if not path.is_file():
            raise ArtefactError(f"{path}: missing (is {directory} a checkpoint directory from `bmcnn-hw train`?)")
    try:
        config = json.loads(config_path.read_text())
        model_config = ModelConfig.from_dict(config["model"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ArtefactError(f"{config_path}: malformed checkpoint config ({exc})") from None
    except BmcnnError as exc:
        raise ArtefactError(f"{config_path}: {exc}") from None
    model = BMCNN(model_config)
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files  # noqa: BLE001
        raise ArtefactError(f"{weights_path}: corrupt weights file ({str(exc).splitlines()[0]})") from None
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        # torch lists every mismatch on its own line after a header: keep them all, on one line
        details = "; ".join(line.strip() for line in str(exc).splitlines()[1:] if line.strip()) or str(exc)
        raise ArtefactError(f"{weights_path}: weights do not fit the model of {config_path} ({details})") from None
    model.eval()
    return model, config
