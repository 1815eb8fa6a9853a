"""The external tools of the PPA flow (Yosys, OpenSTA) and the default standard-cell library."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ..errors import SimulationError, ToolNotFound

OSU018_DIR = Path("/usr/share/qflow/tech/osu018")
DEFAULT_LIBERTY = OSU018_DIR / "osu018_stdcells.lib"
"""OSU 0.18 um standard cells (Debian ``qflow-tech-osu018``): the default synthesis library."""
DEFAULT_CELL_MODELS = OSU018_DIR / "osu018_stdcells.v"
"""Verilog simulation models of the same cells (gate-level simulation for switching activity)."""
APT_LINE = "apt-get install yosys opensta qflow-tech-osu018"
TOOLS = {"yosys": "yosys", "sta": "opensta"}


def require_tool(binary: str) -> str:
    """Path of ``binary`` (``yosys`` or ``sta``).

    Raises:
        ToolNotFound: with the apt line that installs it.
    """
    path = shutil.which(binary)
    if path is None:
        raise ToolNotFound(f"{binary} not found on PATH; the PPA flow needs Yosys and OpenSTA: `{APT_LINE}`")
    return path


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a readable file, else a ToolNotFound naming ``what`` and the apt line."""
    path = Path(path)
    if not path.is_file():
        hint = f" (the default comes with `{APT_LINE}`)" if path.parent == OSU018_DIR else ""
        raise ToolNotFound(f"{what} {path} not found{hint}")
    return path


def run_tool(args: list[str], cwd: Path, log: Path, what: str, timeout_s: float | None = 600) -> str:
    """Run a tool, keep its output in ``log`` and return it (``timeout_s`` None: no limit).

    Raises:
        SimulationError: non-zero exit or timeout, quoting the tool's first error line.
    """
    try:
        proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise SimulationError(f"{what}: {args[0]} ran over {timeout_s:.0f} s; see {log}") from None
    output = proc.stdout + proc.stderr
    log.write_text(output)
    if proc.returncode != 0:
        raise SimulationError(f"{what}: {Path(args[0]).name} failed ({first_error(output)}); see {log}")
    return output


def first_error(output: str) -> str:
    """The first line of a tool's output that reads like an error (or its last line)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if line.lower().startswith(("error", "err:")) or "error:" in line.lower():
            return line
    return lines[-1] if lines else "no output"
