"""Atomic file writes (temp file + rename) and hashing."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path


def umask() -> int:
    """The process's umask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same directory and a rename.

    The file gets the permissions a plain ``open`` would give (0666 less the umask), not the
    temp file's 0600, so others on a shared machine can read results as they expect.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a file", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            os.fchmod(handle.fileno(), 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def replaced_directory(target: Path):
    """Yield a temp directory beside ``target``; when the block finishes, it replaces ``target``.

    An interrupted or failing block leaves ``target`` as it was (the temp directory is
    removed). The new directory gets the permissions ``mkdir`` would give (the umask).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        yield staging
        if target.exists():
            shutil.rmtree(target)
        staging.chmod(0o777 & ~umask())  # mkdtemp's 0700 -> what mkdir would give
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def write_text_atomic(path: Path, text: str) -> None:
    """Atomically write UTF-8 text."""
    write_atomic_bytes(path, text.encode())


def write_json_atomic(path: Path, obj) -> None:
    """Atomically write ``obj`` as indented, key-sorted JSON."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_figure(fig, out_stem: Path, dpi: int = 120) -> list[Path]:
    """A matplotlib figure as ``out_stem.png`` and ``out_stem.svg``, each written atomically."""
    import io

    paths = []
    for ext in ("png", "svg"):
        path, buffer = Path(f"{out_stem}.{ext}"), io.BytesIO()
        fig.savefig(buffer, format=ext, dpi=dpi)
        write_atomic_bytes(path, buffer.getvalue())
        paths.append(path)
    return paths


def read_toml(path: Path, what: str = "file") -> dict:
    """A parsed TOML file.

    Raises:
        ConfigError: naming ``path`` when it is missing (``<what> not found``), unreadable, or not
            valid TOML.
    """
    import tomllib

    from .errors import ConfigError

    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
