"""A tile circuit by content: the netlist and every file it includes, and one digest over them."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ..errors import SimulationError

_INCLUDE = re.compile(r"^\s*\.(?:include|inc|lib)\s+\"?([^\"\s]+)\"?", re.IGNORECASE | re.MULTILINE)


def circuit_files(netlist: Path) -> dict[str, bytes]:
    """The netlist and every file it includes (recursively), by path relative to the netlist's
    folder, in the order they are met.

    Raises:
        SimulationError: an included file is missing or lies outside the netlist's folder.
    """
    root = Path(netlist).resolve().parent
    files: dict[str, bytes] = {}

    def add(path: Path, by: str) -> None:
        path = path.resolve()
        if not path.is_file():
            raise SimulationError(f"{by}: includes {path}, which does not exist")
        try:
            name = path.relative_to(root).as_posix()
        except ValueError:
            raise SimulationError(f"{by}: includes {path}, outside {root}; cannot send it to a worker") from None
        if name in files:
            return
        files[name] = path.read_bytes()
        for included in _INCLUDE.findall(files[name].decode(errors="replace")):
            add(path.parent / included, str(path))

    add(Path(netlist), str(netlist))
    return files


def files_digest(files: dict[str, bytes]) -> str:
    """sha256 over the names and contents of ``files``."""
    digest = hashlib.sha256()
    for name, data in files.items():
        digest.update(f"{name}\0{len(data)}\0".encode() + data)
    return digest.hexdigest()
