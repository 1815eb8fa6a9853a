"""SPICE jobs that carry their circuit by content, for workers that cannot see the caller's files.

A tile netlist includes its subcircuit file and model libraries by relative path. A
:class:`ShippedJob` holds every one of those files (the netlist and, recursively, what it
``.include``s) with the sha256 over all of them; a worker writes them once per digest under
its temp directory (checking the digest of what it received), points the job at its own copy and
runs it (:func:`bmcnn_hw.spice.solver.run_shipped`).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SimulationError
from .circuit import circuit_files, files_digest


@dataclass(frozen=True)
class ShippedJob:
    """A VectorJob or ResponseJob (``job``, its ``cir`` the netlist's name) with its circuit's files."""

    job: Any
    """A ``VectorJob`` or ``ResponseJob`` of :mod:`bmcnn_hw.spice.solver`."""
    entry: str
    """The netlist's name among ``files``."""
    files: tuple[tuple[str, bytes], ...]
    digest: str


def ship(job: Any) -> ShippedJob:
    """``job`` (with a ``cir`` path) made self-contained."""
    files = circuit_files(job.cir)
    entry = next(iter(files))
    return ShippedJob(dataclasses.replace(job, cir=Path(entry)), entry, tuple(files.items()), files_digest(files))


def materialise(shipped: ShippedJob) -> Path:
    """This worker's copy of the job's circuit (written once per digest); the netlist's path."""
    folder = Path(tempfile.gettempdir()) / "bmcnn-hw-circuits" / shipped.digest
    done = folder / ".complete"
    if not done.exists():
        files = dict(shipped.files)
        if files_digest(files) != shipped.digest:
            raise SimulationError(f"{shipped.entry}: the circuit's files do not match their digest")
        for name, data in files.items():
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            temp = target.with_name(f".{target.name}.{os.getpid()}")
            temp.write_bytes(data)
            temp.replace(target)
        done.touch()
    return folder / shipped.entry


def no_setup() -> None:
    """Worker initializer of SPICE jobs: none needed (each job carries its circuit)."""
