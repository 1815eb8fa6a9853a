"""ADC codes of nonlinear tile reads kept across batches, so an input vector is solved once per chip.

Within one batch the accumulator already reads each distinct input row of a tile once. Across
batches the same rows come back: conv0's bit planes of the 10,000 MNIST test images hold
2.2 million distinct 25-bit patterns, but 6.7 million per-batch distinct ones at 256 images per
batch; a tuned run reads fc1's tiles again with inputs that mostly equal the untuned run's. A
nonlinear read costs about a millisecond, a look-up a fraction of a microsecond.

What is kept is what the accumulator derives from a read: the ADC codes of the tile's columns
and the read's energy, keyed by the tile, the model that turned currents into codes (its
readout, ADC widths and windows, comparator offsets) and the input bits. Only reads whose
currents are a function of their input vector alone are kept (:attr:`TileRead.reusable`: the
mesh iteration's settled reads, not the sparse path's, whose stopping point depends on the
other reads of its chunk), so a served read is bit for bit the read a fresh solve would give,
whatever the order of batches or threads. Entries are added until ``budget_bytes`` is reached,
then only looked up (the memo never evicts: its content, not only its size, then depends on
nothing but the inputs seen so far).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

BUDGET_BYTES = 1 << 30
"""Default size of a memo's keys, codes and energies (1 GiB: conv0 and fc1 of the compact model
on the whole test set take about 0.4 GiB)."""


@dataclass
class _TileTable:
    """The memo of one tile under one model: sorted packed-bit keys, codes and energies in key order."""

    keys: np.ndarray
    codes: np.ndarray
    energy: np.ndarray


def packed_keys(bits: np.ndarray) -> np.ndarray:
    """One comparable key per 0/1 input row of ``bits`` (M, R): the row's bits packed into bytes (void dtype)."""
    packed = np.ascontiguousarray(np.packbits(bits.astype(bool), axis=1, bitorder="little"))
    return packed.view(np.dtype((np.void, packed.shape[1]))).ravel()


class CodeMemo:
    """Codes and energies of reusable tile reads, per (model, tile), bounded by ``budget_bytes``.

    Safe for the threads that run batches side by side (one lock; a read solved twice by two
    threads at once is stored once, and both results are the same).
    """

    def __init__(self, budget_bytes: int = BUDGET_BYTES) -> None:
        self.budget_bytes = budget_bytes
        self.bytes = 0
        self.hits = 0
        """Reads served from the memo (those solved instead are counted by the tiles that solved them)."""
        self._tables: dict[tuple[int, Any], _TileTable] = {}
        self._models: dict[int, object] = {}  # keeps each model alive, so its id is not reused
        self._lock = threading.Lock()

    @property
    def entries(self) -> int:
        """Reads kept."""
        return sum(len(table.keys) for table in self._tables.values())

    def lookup(self, model: object, tile: Any, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(found mask (M,), codes of the found rows, their energies) for ``keys`` (:func:`packed_keys`)."""
        with self._lock:
            table = self._tables.get((id(model), tile))
            if table is None or not len(table.keys):
                return np.zeros(len(keys), dtype=bool), np.zeros((0, 0)), np.zeros(0)
            at = np.minimum(np.searchsorted(table.keys, keys), len(table.keys) - 1)
            found = table.keys[at] == keys
            self.hits += int(found.sum())
            return found, table.codes[at[found]], table.energy[at[found]]

    def store(self, model: object, tile: Any, keys: np.ndarray, codes: np.ndarray, energy: np.ndarray) -> None:
        """Keep the reads ``keys`` with their codes (M, C) and energies (M,), each once, as far as the
        budget allows (keys already kept are left as they are)."""
        if not len(keys):
            return
        keys, first = np.unique(keys, return_index=True)  # sorted, each once
        narrow, energy = codes[first].astype(_code_dtype(codes), copy=False), energy[first]
        with self._lock:
            self._models.setdefault(id(model), model)
            table = self._tables.get((id(model), tile))
            if table is None:
                table = self._tables[(id(model), tile)] = _TileTable(keys[:0], narrow[:0], energy[:0])
            if len(table.keys):  # another thread may have stored some of them meanwhile
                at = np.minimum(np.searchsorted(table.keys, keys), len(table.keys) - 1)
                fresh = table.keys[at] != keys
                keys, narrow, energy = keys[fresh], narrow[fresh], energy[fresh]
            dtype = np.promote_types(table.codes.dtype, narrow.dtype)
            widening = len(table.keys) * narrow.shape[1] * (dtype.itemsize - table.codes.dtype.itemsize)
            entry = keys.itemsize + narrow.shape[1] * dtype.itemsize + energy.itemsize
            room = max((self.budget_bytes - self.bytes - widening) // entry, 0)
            if not room or not len(keys):
                return
            keys, narrow, energy = keys[:room], narrow[:room].astype(dtype, copy=False), energy[:room]
            at = np.searchsorted(table.keys, keys)
            table.keys = np.insert(table.keys, at, keys)
            table.codes = np.insert(table.codes.astype(dtype, copy=False), at, narrow, axis=0)
            table.energy = np.insert(table.energy, at, energy)
            self.bytes += widening + len(keys) * entry

def _code_dtype(codes: np.ndarray) -> np.dtype:
    """The narrowest signed integer type that holds ``codes`` (ADC codes are a few bits wide)."""
    if not codes.size:
        return np.dtype(np.int16)
    low, high = int(codes.min()), int(codes.max())
    for kind in (np.int8, np.int16, np.int32):
        info = np.iinfo(kind)
        if info.min <= low and high <= info.max:
            return np.dtype(kind)
    return np.dtype(np.int64)
