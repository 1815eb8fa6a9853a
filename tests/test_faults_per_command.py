"""Faults for every command that writes: its output in a read-only directory, on a full disk, or
naming a device node. Each command runs as a user's would (a subprocess of the CLI) and must end
with one clear line and exit 2, leave nothing half-written where its output goes, and leave the
device node a device.

``WRITERS`` is the table: one cheap invocation per command, its output at ``{out}`` (15 rows:
every command that writes), on the small network of ``tests/models/bmcnn-tiny.toml`` (what is
tested does not depend on its size), except the Ctrl-C test, whose random moment needs runs of a
few seconds and keeps the compact network. A new command that writes adds its row. ``tests/test_faults.py``
holds the deeper cases (signals at random points, FIFOs and links, a directory that vanishes) on
compile and evaluate.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.fault_helpers import CLI, assert_group_gone, default_sigint, leftovers, needs_root, read_only_dir, tmpfs


@dataclass(frozen=True)
class Writer:
    """``bmcnn-hw ARGV`` writes a directory or a file at ``{out}``."""

    argv: tuple[str, ...]
    kind: str  # "dir" or "file"
    tools: tuple[str, ...] = ()
    suffix: str = ".json"  # of a file output
    compact: bool = False  # on the compact network, whose simulator builds other tests share (else bmcnn-tiny)

    def out(self, directory: Path, stem: str = "out") -> Path:
        """Where this command's output goes in ``directory``."""
        return directory / (stem if self.kind == "dir" else stem + self.suffix)

    @property
    def id(self) -> str:
        """The command's name (and a distinguishing option)."""
        return self.argv[0] + ("-json" if self.kind == "file" and self.argv[0] in ("evaluate", "spice") else "")


FLOW = '[flow]\ncommand = "evaluate"\nargs = ["{build}"]\n[options]\nimages = 5\ndata_dir = "{data}"\njson = "{out}"\n'
GRID = ('[axes]\ntile = ["64x64"]\nadc_bits = [0]\n[accuracy]\nsigma = 0.1\nchips = 1\nimages = 50\n'
        '[ppa]\nimages = 1\ndigital = false\n')

WRITERS = [
    Writer(("train", "--data-dir", "{data}", "--train-images", "300", "--val-size", "100", "--epochs", "1",
            "--out", "{out}"), "dir"),
    Writer(("import", "{onnx}", "-o", "{out}"), "dir"),
    Writer(("compile", "{ckpt}", "-o", "{out}"), "dir"),
    Writer(("rtl", "{build}", "--out", "{out}"), "dir"),
    Writer(("evaluate", "{build}", "--images", "5", "--data-dir", "{data}", "--json", "{out}"), "file"),
    Writer(("spice", "{build}", "--images", "1", "--workers", "1", "--data-dir", "{data}", "--json", "{out}"),
           "file", ("ngspice",)),
    Writer(("tune", "{build}", "--calib", "64", "--images", "20", "--sigma-on", "0.1", "--sigma-off", "0.1",
            "--data-dir", "{data}", "-o", "{out}"), "file"),
    Writer(("export", "{build}", "--programming", "{out}"), "file", suffix=".csv"),
    Writer(("sweep", "{build}", "--sigmas", "0.1", "--chips", "1", "--images", "20", "--calib", "64",
            "--workers", "1", "--data-dir", "{data}", "--out", "{out}"), "dir"),
    Writer(("lifetime", "{build}", "--chips", "1", "--images", "20", "--times", "1s,1d", "--calib", "64",
            "--workers", "1", "--data-dir", "{data}", "--out", "{out}"), "dir"),
    Writer(("cosim", "{build}", "--images", "1", "--sim", "icarus", "--workers", "1", "--data-dir", "{data}",
            "--out", "{out}"), "dir", ("ngspice", "iverilog")),
    Writer(("rtl-regress", "{build}", "--images", "2", "--data-dir", "{data}", "--out", "{out}"), "dir",
           ("verilator",), compact=True),
    Writer(("ppa", "{build}", "--images", "1", "--no-digital", "-o", "{out}", "--data-dir", "{data}"), "dir",
           ("ngspice",)),
    Writer(("explore", "{ckpt}", "--grid", "{grid}", "-o", "{out}", "--data-dir", "{data}"), "dir", ("ngspice",)),
    Writer(("flow", "run", "{flow}"), "file"),
]


def _argv(writer: Writer, out: Path, build: Path, ckpt: Path, data: Path, tmp: Path,
          request: pytest.FixtureRequest | None = None) -> list[str]:
    """The row's argv, with the flow, grid or ONNX file it names written into ``tmp``; a
    ``compact`` row takes the compact network's build and checkpoint from ``request``."""
    if writer.compact and request is not None:
        build, ckpt = request.getfixturevalue("build_dir"), request.getfixturevalue("checkpoint")
    fields = {"out": out, "build": build, "ckpt": ckpt, "data": data, "flow": tmp / "flow.toml",
              "grid": tmp / "grid.toml", "onnx": tmp / "plain.onnx"}
    if "{flow}" in writer.argv:
        fields["flow"].write_text(FLOW.format(**fields))
    if "{grid}" in writer.argv:
        fields["grid"].write_text(GRID)
    if "{onnx}" in writer.argv:
        from tests.test_onnx_import import _plain_bnn

        _plain_bnn(fields["onnx"])
    return [a.format(**fields) for a in writer.argv]


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=900)


def _one_error_line(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 2, no traceback, and one ``bmcnn-hw: error:`` line on stderr naming ``needles``."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("bmcnn-hw:")]
    assert len(lines) == 1, proc.stderr[-2000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _skip_without(writer: Writer) -> None:
    for tool in writer.tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")


def _fill(disk: Path) -> None:
    """Write ``disk/filler`` until the file system is full."""
    with open(disk / "filler", "wb", buffering=0) as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 4096)


@pytest.mark.slow
@pytest.mark.parametrize("writer", WRITERS, ids=[w.id for w in WRITERS])
def test_an_output_in_a_read_only_directory_is_one_line(request, writer, tiny_build, tiny_checkpoint, mnist_dir,
                                                        tmp_path):
    _skip_without(writer)
    with read_only_dir(tmp_path / "ro") as ro:
        out = writer.out(ro)
        proc = _run(_argv(writer, out, tiny_build, tiny_checkpoint, mnist_dir, tmp_path, request))
        _one_error_line(proc, str(ro))
        assert not out.exists()


@needs_root
@pytest.mark.slow
@pytest.mark.parametrize("writer", WRITERS, ids=[w.id for w in WRITERS])
def test_an_output_on_a_full_disk_is_one_line_and_leaves_nothing(request, writer, tiny_build, tiny_checkpoint,
                                                                  mnist_dir, tmp_path):
    _skip_without(writer)
    with tmpfs(tmp_path / "disk", "1m") as disk:
        _fill(disk)
        out = writer.out(disk)
        proc = _run(_argv(writer, out, tiny_build, tiny_checkpoint, mnist_dir, tmp_path, request))
        _one_error_line(proc, "No space left on device")
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]


@needs_root
@pytest.mark.slow
@pytest.mark.parametrize("writer", WRITERS, ids=[w.id for w in WRITERS])
def test_an_output_that_is_a_device_stays_a_device(request, writer, tiny_build, tiny_checkpoint, mnist_dir, tmp_path):
    """A private /dev/full (``mknod c 1 7``) where the output goes: a directory output is refused in
    one line naming it; a file output is written through and its write error is the one line."""
    _skip_without(writer)
    node = writer.out(tmp_path, "full")
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    proc = _run(_argv(writer, node, tiny_build, tiny_checkpoint, mnist_dir, tmp_path, request))
    _one_error_line(proc, str(node))
    assert stat.S_ISCHR(node.stat().st_mode)


@pytest.mark.slow
@pytest.mark.parametrize("writer", WRITERS, ids=[w.id for w in WRITERS])
def test_a_non_ascii_directory_is_a_legal_output(request, writer, tiny_build, tiny_checkpoint, mnist_dir, tmp_path):
    _skip_without(writer)
    out = writer.out(tmp_path / "résultats ü")
    proc = _run(_argv(writer, out, tiny_build, tiny_checkpoint, mnist_dir, tmp_path, request))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.exists() and leftovers(out.parent) == []


FLAKY_CTRL_C = pytest.mark.xfail(strict=False, reason=(
    "failed once in four runs of this file on two loaded xdist workers (2026-12-05) and never when "
    "re-run alone or under a CPU burner; most likely the worker pool's exit race that made the explore "
    "row fail once on 2026-12-06 (a traceback after the Ctrl-C line; fixed in parallel.single_threaded_pool, "
    "asserted by tests/test_parallel.py); kept non-strict until it has run clean in CI a while"))


def _ctrl_c_rows() -> list:
    return [pytest.param(w, marks=FLAKY_CTRL_C) if w.argv[0] == "lifetime" else w for w in WRITERS]


@pytest.mark.slow
@pytest.mark.parametrize("writer", _ctrl_c_rows(), ids=[w.id for w in WRITERS])
def test_ctrl_c_at_a_random_point_is_one_line_and_leaves_no_temp(writer, build_dir, checkpoint, mnist_dir, tmp_path):
    """SIGINT at a seeded random moment of the run (0.5-6 s in): the command either finished or
    ends with exit 130 and one line; no temp or lock file is left beside the output, no process
    of its group survives, and an output that is there after an interrupt is not a partial one
    (a file parses, a directory is absent or the previous complete one)."""
    _skip_without(writer)
    out = writer.out(tmp_path / "o")
    delay = np.random.default_rng(len(writer.id)).uniform(0.5, 6.0)
    process = subprocess.Popen([*CLI, *_argv(writer, out, build_dir, checkpoint, mnist_dir, tmp_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=default_sigint)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode in (0, 130), (delay, process.returncode, stderr[-2000:])
    if process.returncode:
        assert "Traceback" not in stderr, stderr[-2000:]
        lines = [line for line in stderr.splitlines() if line.startswith("bmcnn-hw:")]
        assert len(lines) == 1 and "interrupted" in lines[0], stderr[-2000:]
    assert leftovers(out.parent) == [], delay
    assert_group_gone(process.pid)


@pytest.mark.slow
@pytest.mark.parametrize("writer", WRITERS, ids=[w.id for w in WRITERS])
def test_two_writers_of_one_output_never_mix(request, writer, tiny_build, tiny_checkpoint, mnist_dir, tmp_path):
    """The same command twice at once into one output: each run finishes or is refused in one line
    naming the lock; at least one finishes, and no temp or lock file is left."""
    _skip_without(writer)
    out = writer.out(tmp_path / "o")
    argv = _argv(writer, out, tiny_build, tiny_checkpoint, mnist_dir, tmp_path, request)
    runs = [subprocess.Popen([*CLI, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    results = [(run.wait(timeout=900), run.stderr.read()) for run in runs]
    assert 0 in [code for code, _ in results], results
    for code, stderr in results:
        if code:
            assert code == 2 and "Traceback" not in stderr, stderr[-2000:]
            lines = [line for line in stderr.splitlines() if line.startswith("bmcnn-hw:")]
            assert len(lines) == 1 and "another process is writing it" in lines[0], stderr[-2000:]
    assert out.exists() and leftovers(out.parent) == []
