"""A content-addressed disk cache of SPICE tile reads (``--read-cache DIR``).

A tile read is a pure function of the circuit (the tile netlist and every file it includes,
by content), the engine that solved it (name, version, build date), the solve options
(stepped sweep or one operating point per vector, HSPICE-compatible parsing, columns read)
and the input vector. The first four make a tile's *context* key (sha256); each solved batch
of a context is one entry file, ``DIR/<context[:2]>/<context>/<sha256 of the payload>.npz``,
holding the vectors, their column and driver currents, the context and the payload's hash.

- Concurrent writers are safe: an entry is written to a temp file and renamed into place, and
  two processes that solve the same batch write the same name with the same bytes.
- Nothing is trusted: an entry that cannot be read, is truncated, names another context or
  whose arrays do not hash to its name is ignored (``rejected``) and its reads solved again.
- The cache keeps at most ``max_bytes``: after a write, the least recently used entries (by
  modification time; a hit touches its entry) are removed until it fits.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..io_utils import write_atomic_bytes
from .circuit import circuit_files, files_digest

DEFAULT_MAX_BYTES = 2 << 30
"""Default size limit of a read cache (2 GiB)."""

_ARRAYS = ("volts", "cols", "drivers")


def circuit_digest(netlist: Path) -> str:
    """sha256 over a netlist and, recursively, every file it includes."""
    return files_digest(circuit_files(netlist))


def _touch(path: Path) -> None:
    """Set ``path``'s modification time from the fine clock (the file system's own stamps are taken
    from a coarse one, so entries written within a few ms would tie in the least-recently-used order)."""
    now = time.time_ns()
    os.utime(path, ns=(now, now))


def _payload_digest(context: str, arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256(context.encode())
    for name in _ARRAYS:
        a = np.ascontiguousarray(arrays[name], dtype=np.float64)
        digest.update(f"{name}{a.shape}".encode() + a.tobytes())
    return digest.hexdigest()


@dataclass
class ReadCache:
    """Disk cache of solved tile reads (see the module docstring).

    Args:
        directory: where entries live (created on first write).
        max_bytes: size limit; least recently used entries are removed beyond it.

    Raises:
        ConfigError: ``directory`` exists and is not a writable directory.
    """

    directory: Path
    max_bytes: int = DEFAULT_MAX_BYTES
    hits: int = 0
    """Reads served from the cache."""
    misses: int = 0
    """Reads looked up and not found (then solved and stored)."""
    rejected: int = 0
    """Entries ignored as unreadable, truncated, foreign or not matching their hash."""
    _contexts: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise ConfigError(f"--read-cache {self.directory}: not a directory")
        if self.directory.is_dir() and not os.access(self.directory, os.W_OK | os.X_OK):
            raise ConfigError(f"--read-cache {self.directory}: directory is not writable")
        if self.max_bytes <= 0:
            raise ConfigError(f"read cache size must be positive, not {self.max_bytes}")

    def context(self, netlist: Path, engine: str, options: str) -> str:
        """The context key of reads of ``netlist`` solved by ``engine`` with ``options`` (memoised per netlist)."""
        memo = f"{Path(netlist).resolve()}|{engine}|{options}"
        if memo not in self._contexts:
            text = f"bmcnn-hw read cache 1|{circuit_digest(netlist)}|{engine}|{options}"
            self._contexts[memo] = hashlib.sha256(text.encode()).hexdigest()
        return self._contexts[memo]

    def _folder(self, context: str) -> Path:
        return self.directory / context[:2] / context

    def lookup(self, context: str, volts: np.ndarray) -> dict[bytes, tuple[np.ndarray, np.ndarray]]:
        """Cached (column currents, driver currents) of those vectors of ``volts`` (K, R) the cache
        holds for ``context``, keyed by ``vector.tobytes()``; counts hits and misses."""
        wanted = {np.ascontiguousarray(v, dtype=np.float64).tobytes() for v in volts}
        found: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
        folder = self._folder(context)
        for entry in sorted(folder.glob("*.npz")) if folder.is_dir() else []:
            arrays = self._read(entry, context)
            if arrays is None:
                continue
            used = False
            for v, c, d in zip(arrays["volts"], arrays["cols"], arrays["drivers"], strict=True):
                key = v.tobytes()
                if key in wanted and key not in found:
                    found[key] = (c, d)
                    used = True
            if used:
                with contextlib.suppress(OSError):  # another process removed or replaces it
                    _touch(entry)  # recently used: kept longest
            if len(found) == len(wanted):
                break
        self.hits += len(found)
        self.misses += len(wanted) - len(found)
        return found

    def _read(self, entry: Path, context: str) -> dict[str, np.ndarray] | None:
        """An entry's arrays if it is whole, of ``context`` and matches its name's hash; else None."""
        try:
            with np.load(entry, allow_pickle=False) as data:
                arrays = {name: data[name] for name in (*_ARRAYS, "context")}
        except Exception:  # noqa: BLE001  any unreadable entry is re-solved, never trusted
            self.rejected += 1
            return None
        ok = (str(arrays["context"]) == context and _payload_digest(context, arrays) == entry.stem
              and len(arrays["volts"]) == len(arrays["cols"]) == len(arrays["drivers"]))
        if not ok:
            self.rejected += 1
            return None
        return arrays

    def store(self, context: str, volts: np.ndarray, cols: np.ndarray, drivers: np.ndarray) -> None:
        """Record solved reads (K vectors) of ``context`` as one entry, then trim to ``max_bytes``."""
        arrays = {"volts": np.asarray(volts, dtype=np.float64), "cols": np.asarray(cols, dtype=np.float64),
                  "drivers": np.asarray(drivers, dtype=np.float64)}
        name = _payload_digest(context, arrays)
        buffer = io.BytesIO()
        np.savez(buffer, context=np.array(context), volts=arrays["volts"], cols=arrays["cols"],
                 drivers=arrays["drivers"])
        folder = self._folder(context)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--read-cache {self.directory}: cannot create {folder} ({exc.strerror})") from None
        write_atomic_bytes(folder / f"{name}.npz", buffer.getvalue())
        _touch(folder / f"{name}.npz")
        self._trim()

    def _trim(self) -> None:
        """Remove least recently used entries until the cache fits ``max_bytes``."""
        entries = []
        for path in self.directory.glob("*/*/*.npz"):
            with contextlib.suppress(OSError):  # another process removed or replaces it
                st = path.stat()
                entries.append((st.st_mtime_ns, st.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):  # another process removed or replaces it
                path.unlink()
                total -= size

    def summary(self) -> str:
        """One line: hits, misses and rejected entries."""
        text = f"SPICE read cache {self.directory}: {self.hits:,} read(s) served, {self.misses:,} solved"
        return text + (f", {self.rejected} damaged or foreign entr(y/ies) ignored" if self.rejected else "")

    def record(self) -> dict[str, object]:
        """The cache's figures for JSON reports."""
        return {"directory": str(self.directory), "hits": self.hits, "misses": self.misses, "rejected": self.rejected}

