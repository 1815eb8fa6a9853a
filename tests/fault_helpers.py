"""What the fault tests share: the CLI as a subprocess, root-only faults (a private tmpfs, a
read-only directory), temp leftovers, and a run's process group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "bmcnn_hw.cli"]
IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="mknod and mount need root (CI runs as root)")


def leftovers(directory: Path) -> list[str]:
    """Hidden temp or lock entries that an output write left in ``directory`` (none if it is not there)."""
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


@contextlib.contextmanager
def tmpfs(path: Path, size: str, *options: str):
    """A private tmpfs of ``size`` mounted at ``path`` for the block."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}", *options]), "tmpfs", str(path)],
                   check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextlib.contextmanager
def read_only_dir(path: Path):
    """A directory nobody may write: a read-only tmpfs as root (root ignores modes), else mode 0555."""
    if IS_ROOT:
        with tmpfs(path, "1m", "ro") as mounted:
            yield mounted
    else:
        path.mkdir()
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)


def assert_group_gone(pgid: int, grace_s: float = 10.0) -> None:
    """Nothing of a run's process group is left once ``grace_s`` has passed (multiprocessing's
    resource tracker exits on its own shortly after the process that started it)."""
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"processes of group {pgid} still running {grace_s:.0f} s after the command ended")


def default_sigint() -> None:
    """In the child before exec: Ctrl-C at its default, unblocked, whatever the test process
    inherited or set (an ignored or blocked SIGINT survives exec, and Python then never raises
    KeyboardInterrupt: the full tier saw lifetime finish its work after the signal, twice)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
