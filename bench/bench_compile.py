"""Benchmark (c): compile time of the largest shipped model, and the share of each step.

Trains nothing: the model's latent weights are random (compile cost does not depend on them).
Baseline for the ratios: the bare compiler passes (to_crossbar, fold_bn, tile).

    python bench/bench_compile.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from common import timed

from bmcnn_hw.compile import compile_checkpoint
from bmcnn_hw.config import HardwareConfig
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.rtl.emit import write_rtl
from bmcnn_hw.spice.netlist import write_netlists
from bmcnn_hw.train.model import BMCNN, ModelConfig


def main() -> None:
    torch.manual_seed(0)
    net = BMCNN(ModelConfig()).eval()
    hardware = HardwareConfig()
    model, passes_s = timed(compile_checkpoint, net, hardware)
    chip, chip_s = timed(Chip, model)
    with tempfile.TemporaryDirectory() as tmp:
        _, netlist_s = timed(write_netlists, model, chip, Path(tmp) / "netlists")
        _, rtl_s = timed(write_rtl, model, Path(tmp) / "rtl")
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
    total = passes_s + chip_s + netlist_s + rtl_s
    tiles = model.tile_count
    print(f"model {net.config.name}: {len(model.layers)} layers, {tiles} tiles; output {size / 1e6:.1f} MB")
    for name, seconds in (("compiler passes", passes_s), ("chip sampling", chip_s),
                          ("netlists", netlist_s), ("Verilog", rtl_s), ("total", total)):
        print(f"{name:16s} {seconds:7.2f} s   {seconds / passes_s:7.1f}x the passes")


if __name__ == "__main__":
    main()
