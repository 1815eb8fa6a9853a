"""The SPICE read cache: served reads equal solved ones, damaged entries are never trusted."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys

import numpy as np
import pytest

from bmcnn_hw.config import DeviceParams
from bmcnn_hw.errors import ConfigError
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.spice.netlist import write_netlists
from bmcnn_hw.spice.read_cache import ReadCache, circuit_digest
from bmcnn_hw.spice.run import SpiceReader
from tests.helpers import needs, random_fc_model


def _batch(seed: int, k: int = 6, rows: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(k, rows)), rng.normal(size=(k, 4)), rng.normal(size=(k, rows))  # distinct vectors


def test_stored_reads_are_served_and_counted(tmp_path):
    cache = ReadCache(tmp_path / "cache")
    volts, cols, drivers = _batch(0)
    cache.store("a" * 64, volts, cols, drivers)
    found = cache.lookup("a" * 64, np.concatenate([volts[:3], np.full((1, 5), 7.0)]))
    assert (cache.hits, cache.misses) == (3, 1)
    for v, c, d in zip(volts[:3], cols[:3], drivers[:3], strict=True):
        assert np.array_equal(found[v.tobytes()][0], c) and np.array_equal(found[v.tobytes()][1], d)
    assert not ReadCache(tmp_path / "cache").lookup("b" * 64, volts)  # another context sees nothing


def test_truncated_foreign_and_altered_entries_are_rejected(tmp_path):
    cache = ReadCache(tmp_path / "cache")
    volts, cols, drivers = _batch(1)
    cache.store("a" * 64, volts, cols, drivers)
    cache.store("c" * 64, volts, cols + 1, drivers)
    entry = next((tmp_path / "cache").glob("aa/*/*.npz"))
    foreign = next((tmp_path / "cache").glob("cc/*/*.npz"))
    data = entry.read_bytes()
    entry.write_bytes(data[: len(data) // 2])  # truncated
    foreign.rename(entry.with_name(foreign.name))  # an entry of context c filed under context a
    fresh = ReadCache(tmp_path / "cache")
    assert fresh.lookup("a" * 64, volts) == {} and fresh.rejected == 2
    assert fresh.misses == len(np.unique(volts, axis=0))
    # an entry whose arrays were changed after it was named (same context, same length)
    cache.store("d" * 64, volts, cols, drivers)
    altered = next((tmp_path / "cache").glob("dd/*/*.npz"))
    with np.load(altered) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["cols"] = arrays["cols"] * 2
    with altered.open("wb") as f:
        np.savez(f, **arrays)
    again = ReadCache(tmp_path / "cache")
    assert again.lookup("d" * 64, volts) == {} and again.rejected == 1


def test_the_cache_keeps_to_its_size_by_dropping_the_least_recently_used(tmp_path):
    probe = ReadCache(tmp_path / "probe")
    probe.store("a" * 64, *_batch(0))
    size = next((tmp_path / "probe").glob("*/*/*.npz")).stat().st_size
    cache = ReadCache(tmp_path / "cache", max_bytes=int(2.5 * size))
    first, second, third = _batch(10), _batch(11), _batch(12)
    cache.store("a" * 64, *first)
    cache.store("a" * 64, *second)
    assert cache.lookup("a" * 64, first[0])  # first is now the most recently used
    cache.store("a" * 64, *third)
    assert len(list((tmp_path / "cache").glob("*/*/*.npz"))) == 2
    later = ReadCache(tmp_path / "cache")
    assert later.lookup("a" * 64, first[0]) and later.lookup("a" * 64, third[0])
    assert not later.lookup("a" * 64, second[0])


def _store_many(directory: str, seed: int) -> None:
    cache = ReadCache(directory)
    for k in range(20):
        cache.store("e" * 64, *_batch(seed * 100 + k % 5))  # the two writers share five batches


def test_concurrent_writers_leave_only_whole_entries(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_store_many, args=(str(tmp_path / "cache"), s)) for s in (0, 0, 1)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
        assert w.exitcode == 0
    cache = ReadCache(tmp_path / "cache")
    for seed in (0, 1):
        for k in range(5):
            volts = _batch(seed * 100 + k)[0]
            assert len(cache.lookup("e" * 64, volts)) == len(np.unique(volts, axis=0))
    assert cache.rejected == 0 and not list((tmp_path / "cache").rglob("*.tmp*"))


def test_the_circuit_digest_follows_included_files(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "cell.lib").write_text(".subckt cell a b\nR1 a b 1k\n.ends\n")
    (tmp_path / "t.cir").write_text("* tile\n.include lib/cell.lib\nX1 1 0 cell\n.end\n")
    before = circuit_digest(tmp_path / "t.cir")
    (tmp_path / "lib" / "cell.lib").write_text(".subckt cell a b\nR1 a b 2k\n.ends\n")
    assert circuit_digest(tmp_path / "t.cir") != before


def test_a_cache_path_that_is_a_file_is_one_clear_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match=r"--read-cache .*: not a directory"):
        ReadCache(tmp_path / "f")


@pytest.mark.ngspice
@needs("ngspice")
def test_a_second_reader_is_served_from_the_cache_exactly(tmp_path):
    device = DeviceParams(cell="sinh", sinh_v0_v=0.1, r_wire_ohm=3.0, sigma_on_rel=0.3, sigma_off_rel=0.3)
    model = random_fc_model(12, 5, 3, tile_rows=12, tile_cols=5, device=device)
    chip = Chip(model, device, 3)
    write_netlists(model, chip, tmp_path / "n")
    volts = np.random.default_rng(4).integers(0, 2, (20, 12)) * 0.2
    distinct = len(np.unique(volts, axis=0))
    first = SpiceReader(model, chip, tmp_path / "n", mode="per-vector", cache=ReadCache(tmp_path / "c"))
    want = first.read(0, 0, 0, volts, 5)
    assert first.solves == distinct and (first.cache.hits, first.cache.misses) == (0, distinct)
    second = SpiceReader(model, chip, tmp_path / "n", mode="per-vector", cache=ReadCache(tmp_path / "c"))
    got = second.read(0, 0, 0, volts, 5)
    assert second.solves == 0 and (second.cache.hits, second.cache.misses) == (distinct, 0)
    for a, b in ((got.i_plus, want.i_plus), (got.i_minus, want.i_minus), (got.i_drivers, want.i_drivers)):
        assert np.array_equal(a, b)
    other = Chip(model, device, 4)  # another chip: other netlists, other context, solved again
    write_netlists(model, other, tmp_path / "n")
    third = SpiceReader(model, other, tmp_path / "n", mode="per-vector", cache=ReadCache(tmp_path / "c"))
    third.read(0, 0, 0, volts, 5)
    assert third.solves == distinct and third.cache.hits == 0


@pytest.mark.ngspice
@needs("ngspice")
@pytest.mark.slow
def test_spice_command_reports_the_cache(tmp_path, tiny_build, mnist_dir):
    cmd = [sys.executable, "-m", "bmcnn_hw.cli", "spice", str(tiny_build), "--images", "1", "--mode", "per-vector",
           "--workers", "1", "--data-dir", str(mnist_dir), "--read-cache", str(tmp_path / "c")]
    first = subprocess.run(cmd, capture_output=True, text=True)
    second = subprocess.run(cmd, capture_output=True, text=True)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    line = next(x for x in second.stdout.splitlines() if x.startswith("SPICE read cache"))
    assert " 0 solved" in line and "read(s) served" in line, second.stdout
