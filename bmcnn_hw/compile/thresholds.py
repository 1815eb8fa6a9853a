"""Integer thresholds and score codes carried by a checkpoint, and the pass that compiles them.

An imported network (``bmcnn-hw import MODEL.onnx``) has its thresholds read off the source
graph: per hidden layer and channel the integer ``theta`` and ``flip`` with activation
``(acc >= theta) XOR flip`` on every reachable accumulator, and the output layer's score codes
``S``, ``B``. The importer writes them to the checkpoint's ``thresholds.json``, and
:func:`set_thresholds` puts them into the CompiledModel as they are, instead of folding them
back out of the batch norms that encode them for the torch model (the BN round trip). The
pass then checks the checkpoint's two files against each other: the batch norms of
``model.pt`` (what ``evaluate --backend torch`` runs) must fold to exactly these thresholds and
score codes, or compile refuses the checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..artefact import CompiledModel
from ..errors import ArtefactError
from ..train.checkpoint import THRESHOLDS_FILE
from .fold_bn import fold_threshold
from .to_crossbar import PassContext

SCHEMA = "bmcnn-hw-thresholds/1"


@dataclass(frozen=True)
class Thresholds:
    """Per hidden layer ``theta`` (int64) and ``flip`` (uint8) per channel; the output layer's
    integer score codes ``score_scale`` and ``score_bias`` per class; ``path``: the file they were
    read from (errors name it)."""

    theta: tuple[np.ndarray, ...]
    flip: tuple[np.ndarray, ...]
    score_scale: np.ndarray
    score_bias: np.ndarray
    path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``thresholds.json``)."""
        return {"schema": SCHEMA,
                "hidden": [{"theta": t.tolist(), "flip": f.tolist()}
                           for t, f in zip(self.theta, self.flip, strict=True)],
                "score_scale": self.score_scale.tolist(), "score_bias": self.score_bias.tolist()}


def load_thresholds(directory: Path) -> Thresholds | None:
    """The thresholds a checkpoint carries (None: a trained checkpoint, folded from its batch norms).

    Raises:
        ArtefactError: ``thresholds.json`` is not JSON or not of this schema (names the field).
    """
    path = Path(directory) / THRESHOLDS_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtefactError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ArtefactError(f"{path}: schema must be {SCHEMA!r}")
    try:
        hidden = data["hidden"]
        return Thresholds(tuple(_integers(path, f"hidden[{k}].theta", h["theta"], np.int64)
                                for k, h in enumerate(hidden)),
                          tuple(_integers(path, f"hidden[{k}].flip", h["flip"], np.uint8)
                                for k, h in enumerate(hidden)),
                          _integers(path, "score_scale", data["score_scale"], np.int64),
                          _integers(path, "score_bias", data["score_bias"], np.int64), path)
    except (KeyError, TypeError) as exc:
        raise ArtefactError(f"{path}: lacks {exc}; expected hidden[k].theta/flip, score_scale, score_bias") from None


def _integers(path: Path, name: str, values: Any, dtype: type) -> np.ndarray:
    if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ArtefactError(f"{path}: {name} must be a list of whole numbers")
    if dtype is np.uint8 and any(v not in (0, 1) for v in values):
        raise ArtefactError(f"{path}: {name} must hold 0 or 1")
    return np.asarray(values, dtype=dtype)


def set_thresholds(model: CompiledModel, ctx: PassContext) -> CompiledModel:
    """Pass (instead of ``fold_bn`` for a checkpoint with ``thresholds.json``): attach the carried
    thresholds and score codes as they are, after checking that the torch model's batch norms and
    head fold to exactly the same values.

    Raises:
        ArtefactError: the layer or channel counts differ, or the batch norms disagree (names the
            layer and the first channel).
    """
    carried = ctx.thresholds
    if not isinstance(carried, Thresholds):
        raise ArtefactError("set_thresholds needs the checkpoint's thresholds (PassContext.thresholds)")
    where, hidden = carried.path or THRESHOLDS_FILE, len(model.layers) - 1
    if len(carried.theta) != hidden:
        raise ArtefactError(f"{where}: {len(carried.theta)} hidden layers, the model has {hidden}")
    for i, (theta, flip) in enumerate(zip(carried.theta, carried.flip, strict=True)):
        layer = model.layers[i]
        _check_folds_to(ctx.network.norms[i], layer, theta, flip, where)
        # a threshold outside the reachable range acts as the range's end (as a folded one sits)
        model = model.replace_layer(i, theta=np.clip(theta, layer.acc_min, layer.acc_max + 1), flip=flip)
    scale, bias = (t.numpy().astype(np.int64) for t in ctx.network.head.integer_params())
    if not (np.array_equal(scale, carried.score_scale) and np.array_equal(bias, carried.score_bias)):
        raise ArtefactError(f"{where}: the score codes differ from model.pt's head (S, B); the checkpoint's files "
                            "do not belong together")
    return model.replace_layer(hidden, score_scale=carried.score_scale, score_bias=carried.score_bias)


def _check_folds_to(norm: Any, layer: Any, theta: np.ndarray, flip: np.ndarray, where: Any) -> None:
    """The batch norm folds to ``theta``/``flip`` (thresholds outside the reachable range compare as clipped)."""
    if theta.shape != (layer.cols,) or flip.shape != (layer.cols,):
        raise ArtefactError(f"{where}: layer {layer.name} needs {layer.cols} thresholds and flips, has "
                            f"{theta.size} and {flip.size}")
    folded_theta, folded_flip = fold_threshold(norm, layer.acc_min, layer.acc_max)
    low, high = layer.acc_min, layer.acc_max + 1
    same = (np.clip(folded_theta, low, high) == np.clip(theta, low, high)) & (folded_flip == flip)
    if not same.all():
        channel = int(np.argmin(same))
        raise ArtefactError(f"{where}: layer {layer.name} channel {channel}: threshold {theta[channel]} flip "
                            f"{flip[channel]}, but model.pt's batch norm folds to {folded_theta[channel]} flip "
                            f"{folded_flip[channel]}; the checkpoint's files do not belong together")
