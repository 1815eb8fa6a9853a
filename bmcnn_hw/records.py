"""Finished points of a campaign (``sweep``, ``lifetime``), kept as they complete so that an
interrupted run can resume: ``DIR/<name>.json`` per point, holding a key (SHA-256 of everything
the point's result depends on) and the result. A re-run reuses a record whose key matches and
measures every other point afresh, so a record of other inputs is never taken for this run's."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .io_utils import sha256_file, write_json_atomic


def fingerprint(*parts: Any) -> str:
    """SHA-256 over arrays (their dtype, shape and bytes) and JSON-able values, in order."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            digest.update(f"{part.dtype}{part.shape}".encode() + np.ascontiguousarray(part).tobytes())
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()


class PointRecords:
    """The records of one campaign's points in ``directory``.

    Args:
        directory: where the records go (created on the first record).
        context: a fingerprint of the inputs every point shares (build, images, settings).
        name: a file stem for a job (unique within the campaign).
    """

    def __init__(self, directory: Path, context: str, name: Callable[[Any], str]):
        self.directory, self.context, self.name = Path(directory), context, name

    def key(self, job: Any) -> str:
        """The key of ``job``'s result: the shared context and the job itself."""
        return fingerprint(self.context, job)

    def finished(self, jobs: Sequence[Any]) -> dict[int, Any]:
        """Job index -> recorded result, for the jobs finished by an earlier run on the same inputs."""
        done = {}
        for k, job in enumerate(jobs):
            try:
                record = json.loads((self.directory / f"{self.name(job)}.json").read_text())
            except (OSError, ValueError):
                continue
            if isinstance(record, dict) and record.get("key") == self.key(job):
                done[k] = record["result"]
        return done

    def save(self, job: Any, result: Any) -> None:
        """Record ``job``'s result (atomically: a record is whole or absent)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.directory / f"{self.name(job)}.json", {"key": self.key(job), "result": result})


def build_records(directory: Path | None, build_dir: Path, test_set: Any, calib_images: np.ndarray,
                  calib_labels: np.ndarray | None, name: Callable[[Any], str]) -> PointRecords | None:
    """The records of a campaign over one build (``sweep``, ``lifetime``): keyed by the build's
    manifest, the test images and labels and the calibration images and labels; None without
    ``directory`` (nothing recorded)."""
    if directory is None:
        return None
    context = fingerprint(sha256_file(Path(build_dir) / "manifest.json"), test_set.images, test_set.labels,
                          calib_images, calib_labels if calib_labels is not None else "no labels")
    return PointRecords(directory, context, name)


def run_recorded(records: PointRecords | None, jobs: list, run: Callable[..., list],
                 say: Callable[[str], None]) -> list:
    """``run(todo, on_result)`` on the jobs without a record, each result recorded as it arrives;
    returns every job's result in job order (recorded ones as recorded)."""
    if records is None:
        return run(jobs, None)
    done = records.finished(jobs)
    todo = [k for k in range(len(jobs)) if k not in done]
    if done:
        say(f"{len(done)} of {len(jobs)} points finished by an earlier run (records in {records.directory}); "
            "reusing them")
    fresh = run([jobs[k] for k in todo], lambda i, result: records.save(jobs[todo[i]], result)) if todo else []
    results = dict(done)
    results.update(zip(todo, fresh, strict=True))
    return [results[k] for k in range(len(jobs))]
