"""Logic synthesis of a layer's Verilog with Yosys onto a Liberty standard-cell library."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import SimulationError
from .tools import require_file, require_tool, run_tool


@dataclass(frozen=True)
class SynthResult:
    """A synthesised netlist and what Yosys' ``stat -liberty`` says about it."""

    top: str
    netlist: Path
    """Gate-level Verilog (flattened; internal nets renamed n_<k>, one bit each)."""
    cells: int
    area_um2: float
    """Yosys ``stat -liberty`` chip area (the Liberty's area unit, um^2 for OSU 0.18 um)."""
    cell_counts: dict[str, int]
    liberty: Path


MAX_FANOUT = 8
ABC_SCRIPT = ("+strash;ifraig;scorr;dc2;dretime;strash;&get,-n;&dch,-f;&nf,{D};&put;"
              f"buffer,-N,{MAX_FANOUT};upsize,{{D}};dnsize,{{D}};stime,-p")
"""ABC's timing-driven Liberty mapping (Yosys' script for ``abc -D``) plus fan-out buffering:
without buffers the synchronous reset of fc1's 4,008 flip-flops alone made a 41 ns path that
any real flow would buffer (4.0 ns once buffered to a fan-out of 8)."""


def yosys_script(verilog: Path, top: str, liberty: Path, netlist: Path, target_ns: float = 10.0) -> str:
    """The Yosys commands: generic synthesis, flip-flop mapping, timing-driven logic mapping at
    ``target_ns`` with fan-out buffering and gate sizing, single-bit named nets.

    The nets are split to bits and renumbered so that every net of the netlist is a plain
    identifier the gate-level VCD and OpenSTA name the same way.
    """
    return "\n".join([
        f"read_verilog {verilog}",
        f"synth -flatten -top {top}",
        f"dfflibmap -liberty {liberty}",
        f"abc -D {target_ns * 1e3:.0f} -liberty {liberty} -script {ABC_SCRIPT}",
        "opt_clean -purge",
        "rename -hide w:*",
        "splitnets",
        "opt_clean -purge",  # aliases of split bits would be written as assign {a, b} = ..., which OpenSTA rejects
        "rename -enumerate -pattern n_%",
        "tee -q -o stat.json stat -json",  # cell counts, machine-readable
        f"tee -q -o stat.txt stat -liberty {liberty}",  # the area: Yosys 0.23's JSON has none
        f"write_verilog -noattr -noexpr -simple-lhs {netlist}",  # OpenSTA 2.0 rejects assign {a, b} = ...
    ]) + "\n"


def parse_stat(stat_json: str, stat_text: str, top: str) -> tuple[int, float, dict[str, int]]:
    """(cells, chip area, cell type -> count): the counts from ``stat -json``, the area from its
    ``area`` field where the Yosys is new enough to give one, else from ``stat -liberty``'s text.

    Raises:
        SimulationError: when a cell type has no Liberty area or was left unmapped, or Yosys
            reported nothing for ``top``.
    """
    unknown = re.findall(r"Area for cell type (\S+) is unknown", stat_text)
    if unknown:
        raise SimulationError(f"the Liberty library lacks cells the design needs ({', '.join(sorted(set(unknown)))}"
                              f" have no area): map them or pick another library")
    try:
        module = json.loads(stat_json)["modules"][f"\\{top}"]
        cells, counts = int(module["num_cells"]), {str(k): int(v) for k, v in module["num_cells_by_type"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise SimulationError(f"{top}: Yosys' stat -json gave no cell counts for the module") from None
    area = module.get("area")
    if area is None:
        found = re.search(r"Chip area for module '\\?" + re.escape(top) + r"':\s+([0-9.eE+-]+)", stat_text)
        if found is None:
            raise SimulationError(f"{top}: Yosys printed no chip area (stat -liberty)")
        area = found.group(1)
    unmapped = sorted(name for name in counts if name.startswith("$"))
    if unmapped:
        raise SimulationError(f"the Liberty library has no cell for {', '.join(unmapped)}: pick a library with "
                              "flip-flops and basic gates")
    return cells, float(area), counts


def synthesize(verilog: Path, top: str, liberty: Path, work_dir: Path, target_ns: float = 10.0) -> SynthResult:
    """Synthesise module ``top`` of ``verilog`` onto ``liberty`` in ``work_dir`` for a ``target_ns`` clock.

    Raises:
        ToolNotFound: yosys or the Liberty file missing.
        SimulationError: Yosys failed (e.g. the Liberty file does not parse) or cells are missing.
    """
    yosys = require_tool("yosys")
    liberty = require_file(Path(liberty), "Liberty file").resolve()
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    netlist = work_dir / f"{top}_gates.v"
    script = work_dir / "synth.ys"
    script.write_text(yosys_script(Path(verilog).resolve(), top, liberty, Path(netlist.name), target_ns))
    run_tool([yosys, "-q", "-s", str(script.resolve())], work_dir, work_dir / "yosys.log", f"{top}: synthesis")
    cells, area, counts = parse_stat((work_dir / "stat.json").read_text(), (work_dir / "stat.txt").read_text(), top)
    return SynthResult(top, netlist, cells, area, counts, liberty)
