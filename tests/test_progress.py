"""Progress that shows life: plain periodic lines without a terminal, heartbeats for long steps,
and per-tile-read progress on the slow (nonlinear) physics path."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from bmcnn_hw import progress


def test_without_a_terminal_a_bar_writes_plain_lines_not_carriage_returns(capsys, monkeypatch):
    """Captured stderr is not a TTY: each report is its own line with a time estimate, at most one
    per interval plus the last, and never a carriage return."""
    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.05)
    for _ in progress.bar(range(6), desc="work", unit="step"):
        time.sleep(0.03)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "\r" not in err
    assert 2 <= len(lines) <= 6
    assert all(line.startswith("work: ") and "left" in line for line in lines)
    assert lines[-1].startswith("work: 6/6 step (100%)")


def test_a_disabled_bar_is_silent(capsys):
    """``disable=True`` (``progress=False`` in the library) writes nothing."""
    for _ in progress.bar(range(3), desc="quiet", disable=True):
        pass
    assert capsys.readouterr().err == ""


def test_a_heartbeat_says_a_long_step_is_still_running(capsys):
    """A step longer than the beat interval gets "still running" lines; a short one gets none."""
    with progress.heartbeat("synthesis", every_s=0.05):
        time.sleep(0.23)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) >= 3 and all(line.startswith("synthesis: still running, 00:00 elapsed") for line in lines)
    with progress.heartbeat("quick", every_s=5):
        pass
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_nonlinear_physics_reports_tile_reads_with_an_estimate(checkpoint, mnist_dir, tmp_path):
    """`evaluate --backend physics` on sinh cells behind resistive wires (the slow nodal-solve path)
    logs tile reads with a time estimate, in plain lines, before the first image completes."""
    build = tmp_path / "build"
    cli = [sys.executable, "-m", "bmcnn_hw.cli"]
    subprocess.run([*cli, "compile", str(checkpoint), "-o", str(build), "--tile", "64x64", "--device", "rram-sinh",
                    "--r-wire", "1"], check=True, capture_output=True)
    proc = subprocess.run([*cli, "evaluate", str(build), "--backend", "physics", "--images", "1",
                           "--data-dir", str(mnist_dir)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr
    reads = [line for line in proc.stderr.splitlines() if line.startswith("physics: tile reads: ")]
    assert reads and "left" in reads[0], proc.stderr
    # the bar ends full: every tile read call counted (reads the code memo served make no call)
    assert re.match(r"physics: tile reads: (\d+)/\1 read \(100%\)", reads[-1]), proc.stderr
    assert any(line.startswith("physics: 1/1 image (100%)") for line in proc.stderr.splitlines()), proc.stderr
    # every distinct read settled on the mesh (sinh cells of 10 kOhm behind 1 ohm wires)
    assert "by the mesh iteration, 0 by the sparse factorisation" in proc.stdout, proc.stdout
