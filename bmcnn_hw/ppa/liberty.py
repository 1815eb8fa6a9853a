"""What the PPA flow reads from a Liberty library and a gate-level netlist by itself: which cells
store state, which pins drive, and which cells gate the clock."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

_INSTANCE = re.compile(r"^\s*(\w+)\s+(\S+)\s*\((.*?)\);", re.MULTILINE | re.DOTALL)
_CONNECTION = re.compile(r"\.(\w+)\(\s*([^()]*?)\s*\)")


@lru_cache(maxsize=8)
def liberty_cells(path: Path) -> dict[str, tuple[bool, tuple[str, ...]]]:
    """Cell name -> (stores state: has an ``ff`` or ``latch`` group, its output pins)."""
    cells = {}
    for chunk in re.split(r"\n\s*cell\s*\(", Path(path).read_text())[1:]:
        name = chunk.split(")", 1)[0].strip().strip('"')
        sequential = re.search(r"\n\s*(ff|latch)\s*\(", chunk) is not None
        outputs = tuple(pin for pin, body in re.findall(r"\n\s*pin\s*\(\s*\"?(\w+)\"?\s*\)\s*\{(.*?)\}", chunk,
                                                        re.DOTALL) if re.search(r"direction\s*:\s*output", body))
        cells[name] = (sequential, outputs)
    return cells


def clock_gate_outputs(netlist_text: str, liberty: Path, clock: str = "clk") -> tuple[str, ...]:
    """Output pins (``instance/pin``) of the combinational cells that take the clock port as an
    input: the clock gates of a gated register bank (and any clock buffer or inverter)."""
    cells = liberty_cells(Path(liberty))
    pins = []
    for cell, instance, body in _INSTANCE.findall(netlist_text):
        if cell not in cells or cells[cell][0]:
            continue
        connections = dict(_CONNECTION.findall(body))
        outputs = cells[cell][1]
        if any(net == clock for pin, net in connections.items() if pin not in outputs):
            pins += [f"{instance}/{pin}" for pin in outputs if pin in connections]
    return tuple(pins)
