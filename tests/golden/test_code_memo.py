"""Codes of nonlinear reads kept across batches: served reads equal solved ones, bit for bit."""

from __future__ import annotations

import threading

import numpy as np

from bmcnn_hw.config import DeviceParams
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.golden.code_memo import CodeMemo, packed_keys
from bmcnn_hw.golden.crossbar import CrossbarAccumulator
from bmcnn_hw.golden.tile_reader import PhysicsReader
from tests.helpers import random_fc_model

SINH_WIRES = DeviceParams(cell="sinh", sinh_v0_v=0.15, r_wire_ohm=2.0, sigma_on_rel=0.2, sigma_off_rel=0.2)


def _rows(seed: int, n: int, rows: int) -> np.ndarray:
    """(1, n, rows) binary input rows with repeats (a fifth of them all-zero)."""
    rng = np.random.default_rng(seed)
    bits = (rng.random((n, rows)) < 0.4).astype(np.int64)
    bits[rng.random(n) < 0.2] = 0
    return bits[None]


def test_memo_round_trip_keeps_codes_energy_and_type():
    memo = CodeMemo()
    bits = np.random.default_rng(0).integers(0, 2, (40, 70)).astype(np.uint8)  # 70 rows: a 9-byte key
    keys = packed_keys(bits)
    codes = np.random.default_rng(1).integers(-100, 100, (40, 5)).astype(np.int32)
    energy = np.arange(40) * 1e-12
    distinct = np.unique(keys, return_index=True)[1]
    memo.store("model", (0, 0, 0, 70, 5), keys[distinct], codes[distinct], energy[distinct])
    memo.store("model", (0, 0, 0, 70, 5), keys[distinct], codes[distinct] * 1000, energy[distinct])  # kept once
    found, got_codes, got_energy = memo.lookup("model", (0, 0, 0, 70, 5), keys[::-1])
    assert found.all() and memo.hits == 40
    assert np.array_equal(got_codes, codes[::-1]) and np.array_equal(got_energy, energy[::-1])
    assert memo.lookup("another model", (0, 0, 0, 70, 5), keys)[0].sum() == 0
    assert memo.lookup("model", (0, 1, 0, 70, 5), keys)[0].sum() == 0


def test_memo_widens_its_codes_and_stops_at_its_budget():
    memo = CodeMemo(budget_bytes=10 * (1 + 3 + 8))  # ten entries of a 1-byte key, 3 int8 codes, an energy
    bits = np.eye(8, dtype=np.uint8)
    memo.store("m", "t", packed_keys(bits[:4]), np.full((4, 3), 5), np.zeros(4))
    memo.store("m", "t", packed_keys(bits[4:]), np.full((4, 3), 3000), np.zeros(4))  # needs int16
    found, codes, _ = memo.lookup("m", "t", packed_keys(bits))
    assert found.all() and codes[:4].tolist() == [[5] * 3] * 4 and codes[4:].tolist() == [[3000] * 3] * 4
    more = np.random.default_rng(0).permutation(256)[:40].astype(np.uint8)[:, None]
    memo.store("m", "u", packed_keys(np.unpackbits(more, axis=1)), np.ones((40, 3)), np.zeros(40))
    assert memo.bytes <= memo.budget_bytes


def test_batches_served_by_the_memo_equal_batches_solved_afresh():
    """Second and third batches repeat the first one's inputs and add new ones: every accumulator
    equals a reader without a memo, repeated inputs are not solved again, and a memo shared by
    threads gives the same accumulators as one thread."""
    model = random_fc_model(20, 6, 3, tile_rows=10, tile_cols=6, device=SINH_WIRES)
    chip = Chip(model, SINH_WIRES, 4)
    layer = model.layers[0]
    batches = [_rows(0, 60, 20), _rows(0, 60, 20), np.concatenate([_rows(0, 60, 20), _rows(5, 60, 20)], axis=1)]
    fresh = PhysicsReader(chip, memo_bytes=0)
    want = [CrossbarAccumulator(model, fresh)(0, layer, rows) for rows in batches]
    reader = PhysicsReader(chip)
    assert reader.memo is not None
    got = [CrossbarAccumulator(model, reader)(0, layer, batches[0])]
    solved_first = reader.nonlinear_reads()["mesh"]
    got += [CrossbarAccumulator(model, reader)(0, layer, rows) for rows in batches[1:]]
    served = reader.nonlinear_reads()
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    assert served["memo"] >= solved_first * 2  # batch 2 and batch 3's first half: every distinct read served
    assert served["mesh"] < fresh.nonlinear_reads()["mesh"]
    shared = PhysicsReader(chip)
    results: dict[int, np.ndarray] = {}
    threads = [threading.Thread(target=lambda k=k: results.__setitem__(k, CrossbarAccumulator(model, shared)(
        0, layer, batches[k]))) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(np.array_equal(results[k], want[k]) for k in range(3))


def test_reads_the_sparse_path_solved_are_not_kept():
    """Strong cells behind heavy wires: the mesh settles few reads; only those enter the memo."""
    device = DeviceParams(cell="sinh", sinh_v0_v=0.15, r_on_ohm=50.0, r_off_ohm=500.0, r_wire_ohm=20.0)
    model = random_fc_model(24, 12, 1, tile_rows=24, tile_cols=12, device=device)
    reader = PhysicsReader(Chip(model, device, 0))
    CrossbarAccumulator(model, reader)(0, model.layers[0], _rows(2, 40, 24))
    served = reader.nonlinear_reads()
    assert served["sparse"] > 0 and reader.memo is not None and reader.memo.entries == served["mesh"]


def test_linear_readers_and_recorded_reads_use_no_memo():
    model = random_fc_model(20, 6, 3, tile_rows=10, tile_cols=6)
    assert PhysicsReader(Chip(model, model.hardware.device, 0)).memo is None
    reader = PhysicsReader(Chip(model, SINH_WIRES, 0))
    assert CrossbarAccumulator(model, reader, record=True).memo is None
