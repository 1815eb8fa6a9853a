"""Faults while writing outputs: full disks, signals at random points, two writers at once,
read-only and vanished directories, odd paths, and outputs that are devices, FIFOs or links.

Each run is a subprocess of the CLI, as a user's would be. Every fault must end with one clear
line and a non-zero exit, leave a previous valid artefact intact and no temp files behind.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bmcnn_hw.artefact import _read_manifest as read_manifest
from bmcnn_hw.artefact import verify_files
from tests.fault_helpers import (
    CLI,
    assert_group_gone,
    default_sigint,
    leftovers,
    needs_root,
    read_only_dir,
    tmpfs,
)


def _cli(*args, **kwargs) -> subprocess.CompletedProcess:
    """Run the CLI to completion, capturing text output."""
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, **kwargs)


def _evaluate(build: Path, mnist_dir: Path, json_path: Path | str) -> list[str]:
    """argv of a quick golden evaluation that writes its report to ``json_path``."""
    return ["evaluate", str(build), "--backend", "golden", "--images", "10", "--data-dir", str(mnist_dir),
            "--json", str(json_path)]


def _one_error_line(stderr: str, *needles: str) -> str:
    """The single ``bmcnn-hw: ...`` line of ``stderr``; asserts no traceback and that it names ``needles``."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("bmcnn-hw:")]
    assert len(lines) == 1, stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _assert_valid_build(build: Path) -> None:
    """Every file the manifest lists is there with its hash."""
    verify_files(build, read_manifest(build))


# --- outputs that are special files --------------------------------------------------------


@needs_root
def test_a_report_to_a_full_device_fails_and_the_device_stays(build_dir, mnist_dir, tmp_path):
    """A private /dev/full (``mknod c 1 7``): the write error is an error and the node is not replaced."""
    node = tmp_path / "full"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    proc = _cli(*_evaluate(build_dir, mnist_dir, node))
    assert proc.returncode == 2
    _one_error_line(proc.stderr, str(node), "No space left on device")
    assert stat.S_ISCHR(node.stat().st_mode)


def test_a_report_through_a_link_to_stdout_is_written_through(build_dir, mnist_dir, tmp_path):
    """A link to the process's stdout (as /dev/stdout is) carries the JSON down the pipe after the
    lines printed before it, with Python's stdout block-buffered as in a plain pipe; the link stays."""
    link = tmp_path / "stdout"
    link.symlink_to("/proc/self/fd/1")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = _cli(*_evaluate(build_dir, mnist_dir, link), env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.index(" correct, accuracy ") < proc.stdout.index("{")
    report = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert report["images"] == 10
    assert link.is_symlink()


def test_a_report_into_a_fifo_is_written_through(build_dir, mnist_dir, tmp_path):
    """A FIFO gets the JSON, as a shell redirection would give it, and stays a FIFO."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    proc = _cli(*_evaluate(build_dir, mnist_dir, fifo), timeout=300)
    reader.join(timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(received[0])["images"] == 10
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_report_through_a_link_to_a_file_replaces_the_file_and_keeps_the_link(build_dir, mnist_dir, tmp_path):
    """The link's target gets the new report; the link itself is not replaced by a file."""
    target = tmp_path / "reports" / "eval.json"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    assert _cli(*_evaluate(build_dir, mnist_dir, link)).returncode == 0
    assert link.is_symlink() and json.loads(target.read_text())["images"] == 10
    assert leftovers(target.parent) == []


def test_a_build_onto_a_file_is_refused_before_any_work(checkpoint, tmp_path):
    """``compile -o`` naming something that is not a directory: one line, the thing untouched."""
    node = tmp_path / "not-a-dir"
    node.write_text("keep me")
    proc = _cli("compile", checkpoint, "-o", node)
    assert proc.returncode == 2
    _one_error_line(proc.stderr, str(node), "not a build directory")
    assert node.read_text() == "keep me"


# --- full disks ----------------------------------------------------------------------------


@needs_root
@pytest.mark.slow
def test_a_full_disk_keeps_the_previous_build(checkpoint, tmp_path):
    """A 150 MB tmpfs holds one ~100 MB build, not two: the second compile fails in one line and
    the first build is intact, with no temp directory left."""
    with tmpfs(tmp_path / "disk", "150m") as disk:
        build = disk / "build"
        assert _cli("compile", checkpoint, "-o", build).returncode == 0
        before = read_manifest(build)
        proc = _cli("compile", checkpoint, "-o", build, "--chip-seed", "3")
        assert proc.returncode == 2
        _one_error_line(proc.stderr, "No space left on device")
        assert read_manifest(build) == before
        _assert_valid_build(build)
        assert leftovers(disk) == []


def test_a_file_size_limit_is_one_line_and_leaves_nothing(checkpoint, tmp_path):
    """Without root: RLIMIT_FSIZE makes every large write fail (EFBIG), as a quota would."""
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, 1 << 16))

    proc = _cli("compile", checkpoint, "-o", tmp_path / "build", preexec_fn=limit)
    assert proc.returncode == 2
    _one_error_line(proc.stderr, "File too large")
    assert list(tmp_path.iterdir()) == []


# --- read-only and vanished directories ----------------------------------------------------


def test_outputs_in_a_read_only_directory_are_one_line(checkpoint, build_dir, mnist_dir, tmp_path):
    """A build and a report into a read-only directory: exit 2, one line naming the path."""
    with read_only_dir(tmp_path / "ro") as ro:
        proc = _cli("compile", checkpoint, "-o", ro / "build")
        assert proc.returncode == 2
        _one_error_line(proc.stderr, str(ro))
        proc = _cli(*_evaluate(build_dir, mnist_dir, ro / "eval.json"))
        assert proc.returncode == 2
        _one_error_line(proc.stderr, str(ro / "eval.json"))


@pytest.mark.slow
def test_an_output_directory_that_vanishes_mid_run_is_one_line(checkpoint, tmp_path):
    """The parent of ``-o`` removed while compile writes into it: exit 2, one line, no traceback."""
    parent = tmp_path / "vanishing"
    process = subprocess.Popen([*CLI, "compile", str(checkpoint), "-o", str(parent / "build")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(parent.glob(".build.*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    subprocess.run(["rm", "-rf", str(parent)], check=True)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 2
    _one_error_line(stderr, str(parent / "build"), "removed while it was being written")
    assert not (parent / "build").exists()


# --- signals and concurrent writers ---------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_at_a_random_point_keeps_the_previous_build(checkpoint, tmp_path, signum):
    """compile over an existing build, stopped at three seeded random moments: each run either
    finished or ended with one line and exit 128+signal; the build verifies and no temp is left."""
    build = tmp_path / "build"
    assert _cli("compile", checkpoint, "-o", build).returncode == 0
    for delay in np.random.default_rng(int(signum)).uniform(0.5, 8.0, size=3):
        process = subprocess.Popen([*CLI, "compile", str(checkpoint), "-o", str(build), "--chip-seed", "5"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        time.sleep(delay)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=300)
        assert process.returncode in (0, 128 + signum), (delay, stderr)
        if process.returncode:
            _one_error_line(stderr, "interrupted" if signum == signal.SIGINT else "terminated")
        _assert_valid_build(build)
        assert leftovers(tmp_path) == []
        assert_group_gone(process.pid)


@pytest.mark.slow
def test_ctrl_c_stops_a_campaign_at_once_with_its_workers(build_dir, mnist_dir, tmp_path):
    """Ctrl-C while lifetime's worker processes compute: the command ends within seconds (it took
    ~125 s, the workers finishing their chips, before the pool's workers were terminated) and
    no process of it is left."""
    args = ["lifetime", build_dir, "--chips", "2", "--images", "2000", "--sigma-on", "0.1", "--sigma-off", "0.1",
            "--data-dir", mnist_dir, "--out", tmp_path / "lt"]
    process = subprocess.Popen([*CLI, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, start_new_session=True, preexec_fn=default_sigint)
    time.sleep(15)  # the workers are calibrating their chips
    assert process.poll() is None, "lifetime finished before the signal: give it more work"
    state = _sigint_state(process.pid)
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and time.monotonic() - sent < 10, (time.monotonic() - sent, state, stderr)
    _one_error_line(stderr, "interrupted")
    assert_group_gone(process.pid)


def _sigint_state(pid: int) -> str:
    """Whether process ``pid`` ignores, blocks or catches SIGINT (for a failure message)."""
    fields = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if line.startswith(("SigIgn", "SigBlk", "SigCgt")))
    return ", ".join(f"{name} {bool(int(mask, 16) & 2)}" for name, mask in fields.items())


@pytest.mark.slow
def test_two_writers_of_one_build_never_mix(checkpoint, tmp_path):
    """Two compiles into one output at once: one wins (the other waits its turn or is refused in one
    line naming the lock), and the result is one valid build with no temp or lock file left."""
    build = tmp_path / "build"
    runs = [subprocess.Popen([*CLI, "compile", str(checkpoint), "-o", str(build), "--chip-seed", str(seed)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    results = [(run.wait(timeout=300), run.stderr.read()) for run in runs]
    assert sorted(code for code, _ in results)[0] == 0, results
    for code, stderr in results:
        if code:
            assert code == 2
            _one_error_line(stderr, "another process is writing it")
    _assert_valid_build(build)
    assert leftovers(tmp_path) == []


# --- odd but legal paths --------------------------------------------------------------------


def test_non_ascii_and_255_byte_names_are_legal_outputs(build_dir, mnist_dir, tmp_path):
    """A report under a non-ASCII directory and one whose name is 254 characters long are written."""
    unicode_dir = tmp_path / "résultats ü" / "évaluation"
    long_name = tmp_path / ("r" * 249 + ".json")
    for path in (unicode_dir / "eval.json", long_name):
        proc = _cli(*_evaluate(build_dir, mnist_dir, path))
        assert proc.returncode == 0, proc.stderr
        assert json.loads(path.read_text())["images"] == 10
    assert leftovers(tmp_path) == []
