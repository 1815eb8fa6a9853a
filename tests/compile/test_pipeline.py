"""The pass driver: one signature ``model = run(model, ctx)``, the passes in order, their times recorded."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from bmcnn_hw.compile.pipeline import PASSES, CompilerPass, compile_checkpoint, run_passes
from bmcnn_hw.compile.to_crossbar import PassContext, empty_model
from bmcnn_hw.config import HardwareConfig
from bmcnn_hw.errors import ArtefactError
from bmcnn_hw.train.model import BMCNN
from bmcnn_hw.train.registry import resolve_model


@pytest.fixture(scope="module")
def network():
    """An untrained bmcnn-compact-1bit (its weights and norms are enough to lower)."""
    return BMCNN(resolve_model("bmcnn-compact-1bit")).eval()


def test_the_build_records_every_pass_in_order_with_its_time(build_dir):
    passes = json.loads((build_dir / "manifest.json").read_text())["provenance"]["passes"]
    assert [p["name"] for p in passes] == ["to_crossbar", "fold_bn", "tile"] == [p.name for p in PASSES]
    assert all(isinstance(p["seconds"], float) and p["seconds"] >= 0 for p in passes)


def test_each_pass_takes_the_previous_pass_s_model(network):
    """A user's pass between the stock ones sees fold_bn's output and tile sees the user's."""
    seen = []

    def smaller_tiles(model, ctx):
        seen.append(model.layers[0].theta is not None and model.layers[0].tiling is None)
        geometry = dataclasses.replace(model.hardware.geometry, tile_rows=32, tile_cols=32)
        return dataclasses.replace(model, hardware=dataclasses.replace(model.hardware, geometry=geometry))

    passes = (*PASSES[:2], CompilerPass("smaller_tiles", smaller_tiles), PASSES[2])
    ctx = PassContext(HardwareConfig(), network)
    model, timings = run_passes(empty_model(ctx.hardware), ctx, passes)
    assert seen == [True] and [t["name"] for t in timings] == ["to_crossbar", "fold_bn", "smaller_tiles", "tile"]
    stock = compile_checkpoint(network, HardwareConfig())
    assert model.tile_count > stock.tile_count  # tile cut the user's smaller tiles
    assert all(layer.tiling.tile_rows == 32 for layer in model.layers if not layer.digital)
    for a, b in zip(model.layers, stock.layers, strict=True):
        assert np.array_equal(a.weight, b.weight) and np.array_equal(a.theta, b.theta)


def test_provenance_given_is_kept_beside_the_pass_times(network):
    model = compile_checkpoint(network, HardwareConfig(), {"chip_seed": 4})
    assert model.provenance["chip_seed"] == 4 and len(model.provenance["passes"]) == len(PASSES)


def test_lowering_into_a_model_that_has_layers_is_refused(network):
    model = compile_checkpoint(network, HardwareConfig())
    with pytest.raises(ArtefactError, match="to_crossbar: lowers a network into an empty model"):
        PASSES[0].run(model, PassContext(HardwareConfig(), network))
