"""MNIST-format datasets: the four standard files, loading and checksum verification."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .idx import load_idx_raw, read_idx_bytes

# Base name -> SHA-256 of the *uncompressed* canonical MNIST file.
MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


@dataclass(frozen=True)
class Dataset:
    """Images (N, H, W) uint8 and labels (N,) uint8 of one split."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def head(self, n: int | None) -> Dataset:
        """The first ``n`` samples (all when ``n`` is None)."""
        if n is None:
            return self
        return Dataset(self.images[:n], self.labels[:n])


def find_file(data_dir: Path, base: str) -> Path:
    """Locate ``base`` or ``base.gz`` in ``data_dir``.

    Raises:
        DataError: if neither exists.
    """
    for candidate in (data_dir / base, data_dir / f"{base}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"{data_dir}: missing {base} (or {base}.gz); run `bmcnn-hw data fetch` or pass --data-dir")


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data`` as hex."""
    return hashlib.sha256(data).hexdigest()


def _load_split(data_dir: Path, prefix: str, verify: bool) -> Dataset:
    arrays = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        base = f"{prefix}-{kind}"
        path = find_file(data_dir, base)
        raw = load_idx_raw(path)
        # Hashes only bind the canonical MNIST files; other MNIST-format sets
        # (Fashion-MNIST) are accepted when verify=False.
        if verify and sha256_hex(raw) != MNIST_FILES[base]:
            raise DataError(f"{path}: SHA-256 mismatch (not the canonical MNIST {base})")
        arrays.append(read_idx_bytes(raw, name=str(path)))
    images, labels = arrays
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{data_dir}: {prefix} images {images.shape} and labels {labels.shape} do not match")
    return Dataset(images, labels)


def load_mnist(data_dir: Path, split: str = "test", *, verify: bool = False) -> Dataset:
    """Load the ``train`` or ``test`` split of an MNIST-format directory.

    Args:
        data_dir: directory with the four IDX files (gzip or raw).
        split: ``"train"`` or ``"test"``.
        verify: check the canonical MNIST SHA-256 of each file.

    Raises:
        DataError: for missing or malformed files or a checksum mismatch.
    """
    if split not in ("train", "test"):
        raise DataError(f"split must be 'train' or 'test', not {split!r}")
    return _load_split(Path(data_dir), "train" if split == "train" else "t10k", verify)
