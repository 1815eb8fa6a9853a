"""Check every layer's emitted periphery against the golden model on real images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..artefact import CompiledModel
from ..errors import BmcnnError
from ..golden.chip import Chip
from ..golden.crossbar import PhysicsReader, run_crossbar
from ..rtl.emit import module_name, write_rtl
from .runner import periphery_vectors, run_periphery_tb


@dataclass(frozen=True)
class LayerCheck:
    """Outcome of one layer's testbench."""

    layer: str
    outputs: int
    passed: bool
    message: str = ""


def layer_codes(reads: list, index: int) -> dict:
    """(plane, rt) -> codes (M, cols) of layer ``index`` from a recorded crossbar run."""
    out = {}
    for layer_index, rt, ct, plane, _bits, _ip, _im, codes in reads:
        if layer_index == index:
            if ct != 0:
                raise BmcnnError("RTL check supports layers with one column tile")
            out[(plane, rt)] = codes
    return out


def check_rtl(model: CompiledModel, images: np.ndarray, work_dir: Path, *, sim: str = "icarus",
              per_layer: int = 200, seed: int = 0, chip: Chip | None = None) -> list[LayerCheck]:
    """Emit each layer's Verilog and run its cocotb testbench with golden vectors.

    ``per_layer`` (vector, channel) outputs are sampled per layer with ``seed``.
    """
    work_dir = Path(work_dir)
    write_rtl(model, work_dir / "rtl")
    chip = chip or Chip(model)
    trace, accumulator = run_crossbar(model, images, PhysicsReader(chip), record=True)
    rng = np.random.default_rng(seed)
    results = []
    for i, layer in enumerate(model.layers):
        acc = trace.accumulators[i].reshape(-1, layer.cols)
        picks = np.stack([rng.integers(0, acc.shape[0], per_layer), rng.integers(0, layer.cols, per_layer)], axis=1)
        vectors = periphery_vectors(layer, acc, layer_codes(accumulator.reads, i), picks)
        vectors.update(idle_seed=seed, idle_prob=0.2)
        name = module_name(layer)
        try:
            n = run_periphery_tb(work_dir / "rtl" / f"{name}.v", name, vectors, work_dir / "sim" / f"{sim}_{name}", sim)
            results.append(LayerCheck(layer.name, n, True))
        except BmcnnError as exc:
            results.append(LayerCheck(layer.name, per_layer, False, str(exc)))
    return results
