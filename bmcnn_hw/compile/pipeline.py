"""The compiler pipeline: the list of named passes and the driver that runs them."""

from __future__ import annotations

import dataclasses

from ..artefact import CompiledModel
from ..config import HardwareConfig
from .fold_bn import fold_bn
from .tile import tile
from .to_crossbar import to_crossbar

PASSES = ("to_crossbar", "fold_bn", "tile")
"""Pass names in execution order (each is a module of this package)."""


def compile_checkpoint(torch_model, hardware: HardwareConfig, provenance: dict | None = None) -> CompiledModel:
    """Run every pass on a trained BMCNN (eval mode) and return the CompiledModel."""
    model = to_crossbar(torch_model, hardware)
    model = fold_bn(model, torch_model)
    model = tile(model)
    if provenance:
        model = dataclasses.replace(model, provenance=provenance)
    return model
