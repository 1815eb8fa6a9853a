"""The compiler pipeline: named passes of one signature and the driver that runs them.

Every pass is ``model = run(model, ctx)``: it takes the CompiledModel so far and the
:class:`PassContext` (the hardware target and the trained network being lowered) and returns
the next CompiledModel. The first pass, ``to_crossbar``, lowers the network into the empty
model :func:`empty_model` gives; ``fold_bn`` reads the network's norms; ``tile`` reads only the
model; an imported checkpoint's thresholds are set by ``set_thresholds`` instead of folded.
:func:`run_passes` runs a list of them and times each; ``compile_checkpoint`` records
those times in the build's provenance (``provenance["passes"]``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..artefact import CompiledModel
from ..config import HardwareConfig
from .fold_bn import fold_bn
from .thresholds import Thresholds, set_thresholds
from .tile import tile
from .to_crossbar import PassContext, empty_model, to_crossbar

PassFunction = Callable[[CompiledModel, PassContext], CompiledModel]
"""What a pass computes: the next CompiledModel from the present one and the context."""


@dataclass(frozen=True)
class CompilerPass:
    """A pass and the name it is reported under (provenance, errors)."""

    name: str
    run: PassFunction


PASSES: tuple[CompilerPass, ...] = (CompilerPass("to_crossbar", to_crossbar), CompilerPass("fold_bn", fold_bn),
                                    CompilerPass("tile", tile))
"""The passes ``compile_checkpoint`` runs, in order."""
IMPORTED_PASSES: tuple[CompilerPass, ...] = (CompilerPass("to_crossbar", to_crossbar),
                                             CompilerPass("set_thresholds", set_thresholds), CompilerPass("tile", tile))
"""The passes of a checkpoint that carries its thresholds (an import): they are set, not folded."""


def run_passes(model: CompiledModel, ctx: PassContext,
               passes: Sequence[CompilerPass] = PASSES) -> tuple[CompiledModel, list[dict[str, Any]]]:
    """Run ``passes`` in order on ``model``; the result and each pass's name and wall time (s)."""
    timings: list[dict[str, Any]] = []
    for compiler_pass in passes:
        start = time.perf_counter()
        model = compiler_pass.run(model, ctx)
        timings.append({"name": compiler_pass.name, "seconds": round(time.perf_counter() - start, 6)})
    return model, timings


def compile_checkpoint(torch_model, hardware: HardwareConfig, provenance: dict | None = None,
                       thresholds: Thresholds | None = None) -> CompiledModel:
    """Run every pass of :data:`PASSES` on a trained BMCNN (eval mode), or of :data:`IMPORTED_PASSES`
    with the ``thresholds`` an imported checkpoint carries, and return the CompiledModel, its
    provenance ``provenance`` plus ``passes``: each pass's name and wall time."""
    ctx = PassContext(hardware, torch_model, thresholds)
    passes = PASSES if thresholds is None else IMPORTED_PASSES
    model, timings = run_passes(empty_model(hardware), ctx, passes)
    return dataclasses.replace(model, provenance={**(provenance or {}), "passes": timings})
