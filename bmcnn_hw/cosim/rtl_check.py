"""Check every layer's emitted RTL against the golden model on real images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..artefact import CompiledLayer, CompiledModel
from ..errors import BmcnnError
from ..golden.chip import Chip
from ..golden.crossbar import run_crossbar
from ..golden.layers import layer_rows, network_input, periphery_inputs
from ..golden.tile_reader import PhysicsReader
from ..rtl.emit import emitted_rtl, module_name, top_name
from .directed import protocol_scenario
from .runner import run_stream_tb
from .scenarios import layer_top_scenario, periphery_scenario


@dataclass(frozen=True)
class LayerCheck:
    """Outcome of one testbench run."""

    layer: str
    module: str
    outputs: int
    passed: bool
    message: str = ""


def layer_codes(reads: list, index: int) -> dict:
    """(plane, rt) -> ADC codes (M, cols) of layer ``index`` from a recorded crossbar run.

    The column tiles of one (plane, row tile) read side by side: each tile's ADCs feed the
    periphery channels of its columns, so their codes are joined in column order.
    """
    tiles: dict = {}
    for read in reads:
        if read.layer == index:
            tiles.setdefault((read.plane, read.rt), {})[read.ct] = read.codes
    return {key: np.concatenate([parts[ct] for ct in sorted(parts)], axis=1) for key, parts in tiles.items()}


def _run(rtl_dir: Path, work_dir: Path, sim: str, layer: CompiledLayer, module: str, scenario: dict,
         tag: str = "") -> LayerCheck:
    label, sim_dir = (f"{module} ({tag})", f"{sim}_{module}_{tag}") if tag else (module, f"{sim}_{module}")
    try:
        n = run_stream_tb(rtl_dir / f"{module}.v", module, scenario, work_dir / "sim" / sim_dir, sim)
        return LayerCheck(layer.name, label, n, True)
    except BmcnnError as exc:
        return LayerCheck(layer.name, label, len(scenario["expected"]), False, str(exc))


def check_rtl(model: CompiledModel, images: np.ndarray, work_dir: Path, *, sim: str = "icarus",
              per_layer: int = 200, seed: int = 0, chip: Chip | None = None, tops: bool = True,
              rtl_dir: Path | None = None) -> list[LayerCheck]:
    """Run each layer's cocotb testbenches on the Verilog in ``rtl_dir`` (a build's verified
    ``rtl/``; None: the model's Verilog emitted into ``work_dir/rtl``) with golden vectors.

    Per layer: the periphery with ``per_layer`` sampled outputs plus directed extremes, random
    register writes/read-backs and resets; a crossbar layer's periphery also runs the directed
    protocol scenario (:mod:`bmcnn_hw.cosim.directed`); then (``tops``) the layer top (periphery + pool or
    argmax) on pooled outputs / predictions. A digital layer's periphery takes the golden dot
    products as single beats, and its top (MAC engine in front) random frames of its input.
    Stimuli and stalls are drawn with ``seed``.
    """
    work_dir = Path(work_dir)
    rtl_dir = emitted_rtl(model, work_dir, rtl_dir)
    chip = chip or Chip(model)
    trace, accumulator = run_crossbar(model, images, PhysicsReader(chip), record=True)
    rng = np.random.default_rng(seed)
    results = []
    layer_input = network_input(images, model.layers[0].input_shift)
    for i, layer in enumerate(model.layers):
        acc = trace.accumulators[i].reshape(-1, layer.cols)
        # A digital layer's periphery takes whole dot products; its top takes the layer's input.
        codes = {(0, 0): acc} if layer.digital else layer_codes(accumulator.reads, i)
        picks = np.stack([rng.integers(0, acc.shape[0], per_layer), rng.integers(0, layer.cols, per_layer)], axis=1)
        scenario = periphery_scenario(layer, acc, codes, picks, seed=seed + i)
        results.append(_run(rtl_dir, work_dir, sim, layer, module_name(layer), scenario))
        if not layer.digital and not layer.sense:  # the interface answers of rtl/README.md (a sense
            # layer's beats have no channel framing to break; its scenario moves the references between reads)
            results.append(_run(rtl_dir, work_dir, sim, layer, module_name(layer), protocol_scenario(layer),
                                "protocol"))
        if tops:
            stimulus = layer_rows(layer, layer_input) if layer.digital else periphery_inputs(layer, codes)
            top = layer_top_scenario(layer, trace.accumulators[i], trace.outputs[i], stimulus, len(images),
                                     _top_picks(layer, per_layer), seed=seed + i)
            results.append(_run(rtl_dir, work_dir, sim, layer, top_name(layer), top))
        layer_input = trace.outputs[i]
    return results


def _top_picks(layer: CompiledLayer, per_layer: int) -> int:
    """Items sent to a layer top: pool windows or images (crossbar), frames (digital: every
    frame yields all channels, so fewer frames give as many outputs)."""
    if layer.digital and not layer.is_output:
        return max(per_layer // (4 * layer.cols), 2)
    return max(per_layer // 4, 1)
