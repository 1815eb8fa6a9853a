"""Tuning without reprogramming: per-column corrections written to the tuning registers.

A chip is "programmed" once; its devices are never rewritten. A calibration set (training
images, never test images) runs through the chip's readout layer by layer. For each column,
a least-squares fit relates the chip's accumulator to the target one on the same inputs,
``acc_chip ~= g * acc_target + b``. Hidden layers only need the threshold crossing right:
the correction ``theta - round(g * theta + b)`` makes ``acc_chip + correction >= theta``
switch where ``acc_target >= theta`` does. The output layer gets the mean offset. The
corrections are integers for the ``tune_offset`` registers (clipped to their width); the
next layer is calibrated on the tuned activations of this one.

Two methods:

* ``lsq``: the fit on every calibration image, every correction kept (the original method);
* ``guarded`` (default): each hidden column's correction is the integer that makes the fewest
  activations differ from the target's on the first half of the calibration images (a
  direct count, :func:`count_corrections`, not the least-squares proxy); the output layer's
  is the mean offset. A column keeps its correction only where it lowers that column's
  error on the held-out second half (hidden layers: activations that differ from the
  target's; output layer: squared score error), and the whole tuning is kept only if, on the
  held-out images (with their training labels), it fixes significantly more images than it
  breaks (:data:`SIGNIFICANCE`), so it is never worse than untuned there.

The target accumulator is the ideal integer one, except for a network trained
variation-aware (its batch norms learned noisy accumulators): there it is the expected
accumulator under the training noise model, ``k * acc_ideal`` with ``k`` the mean
effective weight of that model's device samples (:func:`training_gain`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .artefact import CompiledLayer, CompiledModel
from .errors import ArtefactError
from .golden.chip import Chip
from .golden.crossbar import CrossbarAccumulator
from .golden.integer import exact_matmul
from .golden.layers import walk_layers
from .golden.tile_reader import PhysicsReader
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


METHODS = ("guarded", "lsq")
HOLDOUT = 0.5
"""Fraction of the calibration images the guarded method holds out (the last ones)."""
SIGNIFICANCE = 1.5
"""The accuracy guard keeps a tuning when, on the held-out images, the images it fixes (b) exceed
those it breaks (c) by more than SIGNIFICANCE * sqrt(b + c) (a one-sided McNemar criterion):
below that the difference is indistinguishable from calibration noise, and untuned is kept."""
GAIN_SAMPLES = 1 << 20
GAIN_SEED = 20261129


def training_gain(model: CompiledModel) -> float:
    """Mean effective weight magnitude of the variation-aware training's device model (1 when the
    network was trained plainly): ``E[(G_on' - G_off') / (G_on - G_off)]`` over GAIN_SAMPLES draws of
    its sampler with a fixed seed (differential; reference: the mean of both states' factors)."""
    variation = model.provenance.get("train_variation")
    if not variation:
        return 1.0
    from .config import DeviceParams
    from .golden.chip import sample_state
    from .golden.device_map import reference_resistance

    params = DeviceParams(**variation["device"])
    rng = np.random.default_rng(GAIN_SEED)
    g_on = 1.0 / sample_state(True, (GAIN_SAMPLES,), params, rng)
    g_off = 1.0 / sample_state(False, (GAIN_SAMPLES,), params, rng)
    unit = 1.0 / params.r_on_ohm - 1.0 / params.r_off_ohm
    if variation.get("encoding") == "reference":
        g_ref = 1.0 / reference_resistance(params.r_on_ohm, params.r_off_ohm)
        return float(((g_on - g_ref).mean() - (g_off - g_ref).mean()) / unit)
    return float((g_on - g_off).mean() / unit)


def count_corrections(layer: CompiledLayer, acc_chip: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per hidden column, the integer correction with the fewest activations differing from the
    target's on (samples, cols) accumulators (ties: the smallest |correction|)."""
    assert layer.theta is not None  # hidden layers have thresholds
    corrections = np.zeros(layer.cols, dtype=np.int64)
    for c in range(layer.cols):
        corrections[c] = _best_correction(acc_chip[:, c], target[:, c] >= layer.theta[c], int(layer.theta[c]))
    return corrections


def _best_correction(acc: np.ndarray, want: np.ndarray, theta: int) -> int:
    """The correction k minimising #((acc + k >= theta) != want), smallest |k| among the minima.

    With the chip threshold t = theta - k, every t in (v[j-1], v[j]] (v: the distinct
    accumulators, sorted) activates the same samples; the count is evaluated once per interval.
    """
    order = np.argsort(acc, kind="stable")
    acc_sorted, want_sorted = acc[order], want[order]
    values = np.unique(acc_sorted)
    highs = np.concatenate([values, [np.iinfo(np.int64).max // 4]]).astype(np.int64)  # t <= high
    lows = np.concatenate([[np.iinfo(np.int64).min // 4], values + 1]).astype(np.int64)  # t >= low
    below = np.searchsorted(acc_sorted, highs, side="left")  # inactive samples for t in [low, high]
    wanted_below = np.concatenate([[0], np.cumsum(want_sorted)])[below]
    unwanted_above = (len(acc) - below) - (int(want_sorted.sum()) - wanted_below)
    errors = wanted_below + unwanted_above
    best = np.flatnonzero(errors == errors.min())
    k_low, k_high = theta - highs[best], theta - lows[best]  # k = theta - t over each interval
    nearest = np.clip(0, k_low, k_high)  # the smallest |k| inside each best interval
    return int(nearest[np.argmin(np.abs(nearest))])


def column_errors(layer: CompiledLayer, acc: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per column, the error of accumulators (samples, cols) against the target ones: activations
    that differ (hidden layers) or the summed squared difference (output layer)."""
    if layer.is_output:
        return np.asarray(((acc - target) ** 2).sum(axis=0))
    assert layer.theta is not None  # hidden layers have thresholds
    return np.asarray(((acc >= layer.theta) != (target >= layer.theta)).sum(axis=0))


def guard_columns(layer: CompiledLayer, acc_chip: np.ndarray, target: np.ndarray, correction: np.ndarray) -> np.ndarray:
    """``correction`` where it lowers the column's error on held-out (samples, cols) accumulators, else 0."""
    better = column_errors(layer, acc_chip + correction, target) < column_errors(layer, acc_chip, target)
    return np.where(better, correction, 0).astype(np.int64)


def calibrate(model: CompiledModel, chip: Chip, images: np.ndarray, reader: PhysicsReader | None = None,
              labels: np.ndarray | None = None, method: str = "guarded") -> Tuning:
    """Fit the tuning corrections of ``chip`` on calibration ``images`` (uint8, N x H x W; see the
    module doc for ``method``); ``labels`` (the images' training labels) enable the guarded
    method's final accuracy check; ``reader`` shares its characterised tiles with other runs.

    Raises:
        ConfigError: an unknown method, or fewer than 2 images for the guarded one.
    """
    from .errors import ConfigError

    if method not in METHODS:
        raise ConfigError(f"tuning method must be one of {', '.join(METHODS)}, not {method!r}")
    guarded = method == "guarded"
    if guarded and len(images) < 2:
        raise ConfigError(f"guarded tuning needs at least 2 calibration images (it holds some out), not {len(images)}")
    reader = reader or PhysicsReader(chip)
    fit = len(images) - max(1, round(len(images) * HOLDOUT)) if guarded else len(images)
    gain = training_gain(model)
    accumulate = CrossbarAccumulator(model, reader, count_energy=False)
    offsets, kept = [], 0
    for step in walk_layers(model, images):
        layer = step.layer
        acc_chip = accumulate(step.index, layer, step.rows)
        target = exact_matmul(step.rows, layer.weight) * gain
        fit_chip, fit_target = acc_chip[:fit].reshape(-1, layer.cols), target[:fit].reshape(-1, layer.cols)
        if guarded and not layer.is_output:
            correction = count_corrections(layer, fit_chip, fit_target)
        else:
            correction = fit_column_corrections(layer, fit_chip, fit_target)
        if guarded:
            correction = guard_columns(layer, acc_chip[fit:].reshape(-1, layer.cols),
                                       target[fit:].reshape(-1, layer.cols), correction)
        kept += int(np.count_nonzero(correction))
        offsets.append(correction)
        step.finish(acc_chip + correction)
    meta = {"calibration_images": len(images), "chip": chip.describe(), "method": method, "target_gain": gain}
    if guarded:
        meta.update(fit_images=fit, held_out_images=len(images) - fit, corrections_kept=kept)
        if labels is not None:
            offsets = _accuracy_guard(model, chip, images[fit:], labels[fit:], offsets, reader, meta)
    return Tuning(offsets, meta)


def _accuracy_guard(model: CompiledModel, chip: Chip, images: np.ndarray, labels: np.ndarray, offsets: list,
                    reader: PhysicsReader, meta: dict) -> list:
    """``offsets`` if they fix significantly more held-out images than they break (SIGNIFICANCE), else zeros."""
    from .golden.crossbar import physics_predictions_shared

    untuned, tuned = physics_predictions_shared(model, chip, images, [None, offsets], reader=reader)
    fixed = int(((tuned == labels) & (untuned != labels)).sum())
    broken = int(((untuned == labels) & (tuned != labels)).sum())
    keep = fixed - broken > SIGNIFICANCE * np.sqrt(fixed + broken)
    meta["held_out_accuracy"] = {"untuned": float((untuned == labels).mean()), "tuned": float((tuned == labels).mean())}
    meta["held_out_fixed_broken"] = [fixed, broken]
    meta["tuning_kept"] = bool(keep)
    if keep:
        return offsets
    meta["corrections_kept"] = 0
    return [np.zeros_like(o) for o in offsets]


def accuracy_before_after(model: CompiledModel, chip: Chip, images: np.ndarray, labels: np.ndarray,
                          offsets: list) -> tuple[float, float]:
    """Physics accuracy of ``chip`` on ``images`` untuned and with tuning ``offsets``, each run on its
    own (with read noise, sharing the first layer's reads would change the noise draws)."""
    from .golden.crossbar import physics_predictions

    before, after = (float((physics_predictions(model, chip, images, tuning) == labels).mean())
                     for tuning in (None, offsets))
    return before, after


def save_tuning(path: Path, model: CompiledModel, tuning: Tuning) -> None:
    """Write the tuning file: corrections per layer and the register writes that apply them."""
    layers = {layer.name: [int(v) for v in offsets] for layer, offsets in zip(model.layers, tuning.offsets,
                                                                                strict=True)}
    write_json_atomic(path, {"schema": SCHEMA, "version": 1, **tuning.meta, "tune_offset": layers,
                             "register_writes": register_writes(model, tuning.offsets)})


def register_writes(model: CompiledModel, offsets: list) -> dict[str, list[list[int]]]:
    """Per periphery, the [word address, value] writes that load ``offsets`` into tune_offset."""
    from .rtl.periphery import tune_offset_writes

    return {f"periphery_{layer.name}": [list(w) for w in tune_offset_writes(layer, off)]
            for layer, off in zip(model.layers, offsets, strict=True)}


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


def _check_register_values(path: Path, layer: CompiledLayer, values: list[int]) -> None:
    """One correction per column, each within the signed ``acc_width``-bit tune_offset register."""
    if len(values) != layer.cols:
        raise ArtefactError(f"{path}: tune_offset[{layer.name}] needs {layer.cols} values, has {len(values)}")
    low, high = -(2 ** (layer.acc_width - 1)), 2 ** (layer.acc_width - 1) - 1
    for k, value in enumerate(values):
        if not low <= value <= high:
            raise ArtefactError(f"{path}: tune_offset[{layer.name}][{k}] = {value} does not fit the "
                                f"{layer.acc_width}-bit signed register [{low}, {high}]")


def tuning_for_chip(path: Path, model: CompiledModel, chip: Chip) -> Tuning:
    """The tuning file at ``path`` for ``model``, refused unless it was fitted on ``chip``
    (:func:`load_tuning`, :func:`check_tuning_chip`)."""
    tuning = load_tuning(path, model)
    check_tuning_chip(path, tuning, chip)
    return tuning


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
        for name in names:
            if not isinstance(table[name], list) or not all(type(v) is int for v in table[name]):
                raise ArtefactError(f"{path}: tune_offset[{name}] must be a list of whole numbers")
        values = [table[name] for name in names]
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ArtefactError(f"{path}: not a tuning file for this build ({type(exc).__name__}: {exc})") from None
    for layer, column_values in zip(model.layers, values, strict=True):
        _check_register_values(path, layer, column_values)
    offsets = [np.asarray(v, dtype=np.int64) for v in values]
    if data.get("register_writes") != register_writes(model, offsets):
        raise ArtefactError(f"{path}: register_writes do not load tune_offset (edited by hand?); write the file "
                            "again with `bmcnn-hw tune`")
    return Tuning(offsets, {k: v for k, v in data.items() if k not in ("tune_offset", "register_writes")})
