"""The exact integer executor of a CompiledModel (the reference for every back end)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..artefact import CompiledLayer, CompiledModel
from .layers import walk_layers

Accumulate = Callable[[int, CompiledLayer, np.ndarray], np.ndarray]
"""``f(layer_index, layer, rows) -> acc``: a layer's accumulators (N, P, cols) for crossbar input ``rows``."""
TuningOffsets = Sequence[np.ndarray | None]
"""Per layer, integer corrections (cols,) added to the accumulator, or None (untuned layer)."""


@dataclass
class Trace:
    """Every interface of one run: per layer the accumulators and outputs, then scores."""

    accumulators: list[np.ndarray] = field(default_factory=list)
    """Per layer (N, P, cols) int64."""
    outputs: list[np.ndarray] = field(default_factory=list)
    """Per layer: bits (hidden) or integer scores (output layer)."""

    @property
    def scores(self) -> np.ndarray:
        """(N, classes) int64 integer class scores."""
        return self.outputs[-1]

    def same_as(self, other: Trace) -> bool:
        """True when every accumulator and every output equals ``other``'s."""
        return all(np.array_equal(a, b) for a, b in zip(self.accumulators + self.outputs,
                                                        other.accumulators + other.outputs, strict=True))

    @property
    def predictions(self) -> np.ndarray:
        """(N,) predicted class (first maximum, like torch.argmax)."""
        predicted: np.ndarray = np.argmax(self.scores, axis=1)
        return predicted


def exact_matmul(rows: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Integer ``rows @ weight`` computed through float64 BLAS.

    Exact: every partial sum is an integer below 2**53 (|x| < 2**16, fan-in < 2**30).
    """
    return np.rint(rows.astype(np.float64) @ weight.astype(np.float64)).astype(np.int64)


def run_integer(model: CompiledModel, images: np.ndarray, accumulate: Accumulate | None = None,
                tuning: TuningOffsets | None = None) -> Trace:
    """Run uint8 images (N, H, W) or (N, C, H, W) through the model.

    Args:
        accumulate: ``f(layer_index, layer, rows) -> acc``; the integer matmul by
            default. Crossbar executors pass their own (tiles, ADC, bit planes).
        tuning: per layer, integer corrections (cols,) added to the accumulator before the
            threshold or score (the tuning registers), or None.
    """
    trace = Trace()
    for step in walk_layers(model, images):
        if accumulate is None:
            acc = exact_matmul(step.rows, step.layer.weight)
        else:
            acc = accumulate(step.index, step.layer, step.rows)
        if tuning is not None and tuning[step.index] is not None:
            acc = acc + np.asarray(tuning[step.index], dtype=np.int64)
        trace.accumulators.append(acc)
        trace.outputs.append(step.finish(acc))
    return trace


def run_batched(model: CompiledModel, images: np.ndarray, batch: int = 500, accumulate: Accumulate | None = None,
                tuning: TuningOffsets | None = None) -> np.ndarray:
    """Predictions for many images, in batches (bounded memory)."""
    preds = [run_integer(model, images[i:i + batch], accumulate, tuning).predictions
             for i in range(0, len(images), batch)]
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)
