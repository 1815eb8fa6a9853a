"""Invariants checked on random cases (hypothesis): tiling, bit-serial reads, beat order, tuning files.

Each is a property the whole flow rests on; a planted bug in the code under test breaks it on
some drawn case (hypothesis then shrinks it to the smallest).
"""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bmcnn_hw.cosim.scenarios import _beats, beat_order
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.golden.crossbar import CrossbarAccumulator
from bmcnn_hw.golden.device_map import padded_tile
from bmcnn_hw.golden.integer import exact_matmul
from bmcnn_hw.golden.tile_reader import PhysicsReader
from bmcnn_hw.rtl.periphery import layer_registers
from bmcnn_hw.tune import Tuning, load_tuning, save_tuning
from tests.helpers import hidden_fc_model, random_fc_model

SHAPES = {"rows": st.integers(1, 300), "cols": st.integers(1, 70), "tile_rows": st.integers(1, 130),
          "tile_cols": st.integers(1, 130), "seed": st.integers(0, 2**16)}


@settings(max_examples=60, deadline=None)
@given(**SHAPES)
def test_tiles_reassemble_the_weight_matrix(rows, cols, tile_rows, tile_cols, seed):
    """The padded tiles, laid side by side, are the weight matrix followed by zero padding, and
    the fewest tiles that cover it."""
    layer = random_fc_model(rows, cols, seed, tile_rows, tile_cols).layers[0]
    t = layer.tiling
    assert t is not None
    grid = np.block([[padded_tile(layer, rt, ct) for ct in range(t.n_col_tiles)] for rt in range(t.n_row_tiles)])
    assert grid.shape == (rows + t.pad_rows, cols + t.pad_cols)
    assert np.array_equal(grid[:rows, :cols], layer.weight)
    assert not grid[rows:].any() and not grid[:, cols:].any()
    assert 0 <= t.pad_rows < tile_rows and 0 <= t.pad_cols < tile_cols


class PerReadReader(PhysicsReader):
    """The physics reader without its linear map: every distinct input is read as a nonlinear
    or SPICE reader would be (the path that deduplicates inputs across bit planes)."""

    def linear_map(self, *key):
        return None


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(2, 90), cols=st.integers(1, 12), input_bits=st.integers(1, 8), tile_rows=st.integers(2, 40),
       seed=st.integers(0, 2**16), density=st.sampled_from([0.0, 0.3, 1.0]), per_read=st.booleans())
def test_bit_serial_reads_of_the_ideal_chip_equal_the_integer_dot_product(rows, cols, input_bits, tile_rows, seed,
                                                                            density, per_read):
    """Every plane of every row tile read, converted and shift-added on the ideal chip equals
    ``inputs @ weight`` for inputs of 1 to 8 bits (all-zero, sparse and dense vectors), through
    the linear map and through reads of each distinct input (planes deduplicated together)."""
    model = hidden_fc_model(rows, cols, input_bits, tile_rows, seed)
    layer = model.layers[0]
    rng = np.random.default_rng(seed)
    inputs = rng.integers(0, 2 ** input_bits, (64, 1, rows)) * (rng.random((64, 1, rows)) < density)
    reader = (PerReadReader if per_read else PhysicsReader)(Chip(model, model.hardware.device, 0))
    acc = CrossbarAccumulator(model, reader)(0, layer, inputs)
    assert np.array_equal(acc, exact_matmul(inputs, layer.weight))


@given(planes=st.integers(1, 8), row_tiles=st.integers(1, 40), cols=st.integers(1, 20), seed=st.integers(0, 2**16))
def test_beat_order_visits_every_plane_and_row_tile_once_between_one_first_and_one_last(planes, row_tiles, cols, seed):
    """A channel's beats are a permutation of (plane, row tile), framed by one first and one last."""
    layer = hidden_fc_model(row_tiles * 2, cols, planes, 2, seed).layers[0]
    order = beat_order(layer)
    assert sorted(order) == [(p, rt) for p in range(planes) for rt in range(row_tiles)]
    codes = {key: np.zeros((1, cols), dtype=np.int64) for key in order}
    beats = [step["beat"] for step in _beats(layer, codes, 0, cols - 1, group_last=1)]
    assert [b[3] for b in beats] == [1] + [0] * (len(beats) - 1)  # first
    assert [b[4] for b in beats] == [0] * (len(beats) - 1) + [1]  # last
    assert [b[5] for b in beats] == [0] * (len(beats) - 1) + [1]  # group_last rides on the last
    assert {b[2] for b in beats} == {cols - 1}


@settings(max_examples=25, deadline=None)
@given(cols=st.integers(1, 10), seed=st.integers(0, 2**16), data=st.data())
def test_tuning_files_round_trip_every_register_value(tmp_path_factory, cols, seed, data):
    """Any corrections that fit the tune_offset registers (extremes included) are written and read
    back unchanged, with register writes that load exactly the non-zero ones."""
    model = random_fc_model(40, cols, seed, 16, cols)
    layer = model.layers[0]
    width = layer_registers(layer)["tune_offset"].width
    value = st.integers(-(1 << (width - 1)), (1 << (width - 1)) - 1)
    offsets = [np.array(data.draw(st.lists(value, min_size=cols, max_size=cols)), dtype=np.int64)]
    path = tmp_path_factory.mktemp("tuning") / "tuning.json"
    save_tuning(path, model, Tuning(offsets, {"seed": seed}))
    back = load_tuning(path, model)
    base = layer_registers(layer)["tune_offset"].offset
    writes = json.loads(path.read_text())["register_writes"]["periphery_fc0"]
    assert writes == [[base + k, int(v)] for k, v in enumerate(offsets[0]) if v]
    assert [o.tolist() for o in back.offsets] == [o.tolist() for o in offsets] and back.meta["seed"] == seed
