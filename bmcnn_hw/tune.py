"""Tuning without reprogramming: per-column corrections written to the tuning registers.

A chip is "programmed" once; its devices are never rewritten. A calibration set (training
images, never test images) runs through the chip's readout layer by layer. For each column,
a least-squares fit relates the chip's accumulator to the ideal one on the same inputs,
``acc_chip ~= g * acc_ideal + b``. Hidden layers only need the threshold crossing right:
the correction ``theta - round(g * theta + b)`` makes ``acc_chip + correction >= theta``
switch where ``acc_ideal >= theta`` does. The output layer gets the mean offset. The
corrections are integers for the ``tune_offset`` registers (clipped to their width); the
next layer is calibrated on the tuned activations of this one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .artefact import CompiledLayer, CompiledModel
from .errors import ArtefactError
from .golden.chip import Chip
from .golden.crossbar import CrossbarAccumulator, PhysicsReader
from .golden.integer import exact_matmul
from .golden.layers import walk_layers
from .io_utils import write_json_atomic

SCHEMA = "bmcnn-hw/tuning"


@dataclass
class Tuning:
    """Per-layer integer corrections (``tune_offset`` register values) and how they were fitted."""

    offsets: list
    meta: dict = field(default_factory=dict)


def fit_column_corrections(layer: CompiledLayer, acc_chip: np.ndarray, acc_ideal: np.ndarray) -> np.ndarray:
    """Integer correction per column from (samples, cols) chip and ideal accumulators."""
    chip, ideal = acc_chip.astype(np.float64), acc_ideal.astype(np.float64)
    mean_c, mean_i = chip.mean(axis=0), ideal.mean(axis=0)
    var_i = ((ideal - mean_i) ** 2).mean(axis=0)
    cov = ((ideal - mean_i) * (chip - mean_c)).mean(axis=0)
    offset_only = mean_i - mean_c
    if layer.is_output:
        correction = offset_only
    else:
        usable = (var_i > 0) & (cov > 0)
        gain = np.where(usable, cov / np.where(var_i > 0, var_i, 1.0), 1.0)
        bias = mean_c - gain * mean_i
        assert layer.theta is not None  # hidden layers have thresholds
        theta = layer.theta.astype(np.float64)
        correction = np.where(usable, theta - (gain * theta + bias), offset_only)
    limit = 2 ** (layer.acc_width - 1) - 1
    return np.clip(np.rint(correction), -limit - 1, limit).astype(np.int64)


def calibrate(model: CompiledModel, chip: Chip, images: np.ndarray, reader: PhysicsReader | None = None) -> Tuning:
    """Fit the tuning corrections of ``chip`` on calibration ``images`` (uint8, N x H x W); ``reader``
    shares its characterised tiles with other runs on the same chip."""
    accumulate = CrossbarAccumulator(model, reader or PhysicsReader(chip))
    offsets = []
    for step in walk_layers(model, images):
        layer = step.layer
        acc_chip = accumulate(step.index, layer, step.rows)
        acc_ideal = exact_matmul(step.rows, layer.weight)
        correction = fit_column_corrections(layer, acc_chip.reshape(-1, layer.cols), acc_ideal.reshape(-1, layer.cols))
        offsets.append(correction)
        step.finish(acc_chip + correction)
    return Tuning(offsets, {"calibration_images": len(images), "chip": chip.describe()})


def save_tuning(path: Path, model: CompiledModel, tuning: Tuning) -> None:
    """Write the tuning file: corrections per layer and the register writes that apply them."""
    from .rtl.periphery import tune_offset_writes

    layers, writes = {}, {}
    for layer, offsets in zip(model.layers, tuning.offsets, strict=True):
        layers[layer.name] = [int(v) for v in offsets]
        writes[f"periphery_{layer.name}"] = [list(w) for w in tune_offset_writes(layer, offsets)]
    write_json_atomic(path, {"schema": SCHEMA, "version": 1, **tuning.meta, "tune_offset": layers,
                             "register_writes": writes})


def check_tuning_chip(path: Path, tuning: Tuning, chip: Chip) -> None:
    """Refuse corrections fitted on another chip: the file records the chip it was fitted on
    (seed, encoding, device parameters), and corrections only fit that chip's devices.

    Raises:
        ArtefactError: naming the file and every field that differs.
    """
    fitted = tuning.meta.get("chip")
    current = json.loads(json.dumps(chip.describe()))
    if not isinstance(fitted, dict):
        raise ArtefactError(f"{path}: records no chip; refit it with `bmcnn-hw tune` for this chip")
    differ = [f"{key} {_shown(key, fitted.get(key))} (this chip: {_shown(key, current.get(key))})"
              for key in sorted(set(fitted) | set(current)) if fitted.get(key) != current.get(key)]
    if differ:
        raise ArtefactError(f"{path}: fitted on another chip: " + "; ".join(differ)
                            + " - fit this chip with `bmcnn-hw tune` (same --chip-seed and device options)")


def _shown(key: str, value) -> str:
    """A chip field as a message shows it: ages as durations, the rest as Python literals."""
    if key != "age":
        return repr(value)
    if not isinstance(value, dict):
        return "none (as programmed)"
    from .golden.aging import format_duration

    return (f"{format_duration(value.get('age_s', 0.0))} at {value.get('reads_per_s', 0.0):g} reads/s "
            "(or its retention parameters)")


def load_tuning(path: Path, model: CompiledModel) -> Tuning:
    """Read a tuning file for ``model``.

    Raises:
        ArtefactError: naming the file when it is not a tuning file of this model's layers.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise ArtefactError(f"{path}: field 'schema' must be {SCHEMA!r}")
        table = data["tune_offset"]
        names = [layer.name for layer in model.layers]
        if not isinstance(table, dict) or sorted(table) != sorted(names):
            found = sorted(table) if isinstance(table, dict) else type(table).__name__
            raise ArtefactError(f"{path}: tune_offset has layers {found}, this build has {names}: a tuning file "
                                "of another build")
        offsets = [np.asarray(table[name], dtype=np.int64) for name in names]
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ArtefactError(f"{path}: not a tuning file for this build ({type(exc).__name__}: {exc})") from None
    for layer, off in zip(model.layers, offsets, strict=True):
        if off.shape != (layer.cols,):
            raise ArtefactError(f"{path}: tune_offset[{layer.name}] needs {layer.cols} values, has {off.size}")
    return Tuning(offsets, {k: v for k, v in data.items() if k not in ("tune_offset", "register_writes")})
