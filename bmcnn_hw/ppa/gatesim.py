"""Gate-level simulation of a synthesised layer on real beats (Icarus + the cells' Verilog models).

The netlist runs the beats of real images in hardware order (one beat per cycle, outputs
always ready); its outputs are checked against the golden model, and the VCD of the DUT's
nets gives the switching activity OpenSTA's power analysis uses. Cell models are simulated
without delays, so the activity counts functional transitions, not glitches.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cosim.payload import pack, unpack
from ..errors import MismatchError, SimulationError, ToolNotFound
from .tools import run_tool
from .vcd import NetActivity, net_activity

PERIOD_NS = 10
"""Clock period of the simulation (ns); activity is per cycle, so it does not depend on it."""
RESET_CYCLES = 2
IDLE_CYCLES = 8
"""Quiet cycles (input ready, no output) that end a run of a design busy after its last input."""


@dataclass(frozen=True)
class GateSimResult:
    """Outputs checked and per-net activity of one gate-level run."""

    beats: int
    cycles: int
    outputs_checked: int
    activity: dict[str, NetActivity]


def port_widths(netlist_text: str, top: str) -> dict[str, tuple[str, int]]:
    """Port name -> (direction, width) from the gate-level netlist's declarations of ``top``."""
    body = netlist_text.split(f"module {top}(", 1)[1].split("endmodule", 1)[0]
    ports = {}
    for direction, rng, name in re.findall(r"^\s*(input|output)\s+(\[\d+:\d+\]\s+)?(\w+);", body, re.MULTILINE):
        width = 1
        if rng:
            hi, lo = (int(x) for x in rng.strip(" []").split(":"))
            width = abs(hi - lo) + 1
        ports[name] = (direction, width)
    return ports


def testbench(top: str, ports: dict[str, tuple[str, int]], busy_inputs: bool = False) -> str:
    """A Verilog testbench: payload words from ``beats.txt`` (one per line), result words to ``outputs.txt``.

    Inputs change 1 ns after the rising edge (a clock gate samples its enable on the falling
    edge, so nothing may change there); a beat is taken on the rising edge when ``i__valid``
    and ``i__ready`` hold (read on the falling edge, when both have settled); outputs are read
    1 ns after the rising edge; ``o__ready`` is always 1, so a valid result is held for
    exactly one cycle. The register bus (if any) stays idle. ``busy_inputs``: the design keeps working
    after its last input (a MAC engine), so the run ends only after :data:`IDLE_CYCLES` cycles
    with ``i__ready`` high and no output.
    """
    def decl(name: str, kind: str) -> str:
        width = ports[name][1]
        bus = f"[{width - 1}:0] " if width > 1 else ""
        return f"  {kind} {bus}{name};"

    regs = [decl(n, "reg") for n in ports if ports[n][0] == "input"]
    wires = [decl(n, "wire") for n in ports if ports[n][0] == "output"]
    conns = ", ".join(f".{n}({n})" for n in ports)
    half = PERIOD_NS // 2
    others = [n for n in ports if ports[n][0] == "input" and n not in ("clk", "rst", "i__valid", "o__ready")]
    return "\n".join([
        "`timescale 1ns/10ps", "module bmcnn_gate_tb;", *regs, *wires,
        f"  reg [{ports['i__payload'][1] - 1}:0] word;",
        "  integer fin, fout, got, beats, cycles, idle; reg take;",
        f"  {top} dut({conns});",
        f"  always #{half} clk = ~clk;",
        "  initial begin",
        '    fin = $fopen("beats.txt", "r"); fout = $fopen("outputs.txt", "w");',
        '    $dumpfile("activity.vcd"); $dumpvars(1, dut);',
        "    clk = 0; rst = 1; i__valid = 0; o__ready = 1; take = 0; beats = 0; cycles = 0; idle = 0;",
        *[f"    {n} = 0;" for n in others],
        f"    repeat ({RESET_CYCLES}) @(posedge clk);",
        "    #1 rst = 0;",
        "    forever begin",
        "      if (take || !i__valid) begin",
        '        got = $fscanf(fin, "%d\\n", word);',
        "        if (got == 1) begin i__payload = word; i__valid = 1; beats = beats + 1; end",
        "        else i__valid = 0;",
        "      end",
        "      @(negedge clk) take = i__valid & i__ready;",
        "      @(posedge clk); #1 cycles = cycles + 1;",
        '      if (o__valid) $fwrite(fout, "%0d\\n", o__payload);',
        *(["      if (!i__valid && !o__valid && i__ready) idle = idle + 1; else idle = 0;",
            f"      if (idle > {IDLE_CYCLES} && got != 1) begin"] if busy_inputs else
          ["      if (!i__valid && !o__valid && cycles > 8 && got != 1) begin"]),
        '        $fwrite(fout, "# beats %0d cycles %0d\\n", beats, cycles); $fclose(fout); $finish;',
        "      end",
        "    end",
        "  end",
        "endmodule", ""])


def run_gate_level(netlist: Path, top: str, cell_models: Path, scenario: dict[str, Any],
                   work_dir: Path, busy_inputs: bool = False) -> GateSimResult:
    """Simulate the gate-level ``netlist`` on the beats of ``scenario`` and check its outputs.

    ``scenario`` is a :func:`~bmcnn_hw.cosim.scenarios.full_layer_scenario` (beats only, no
    stalls; its payload ``fields`` pack the beats); a run cut short keeps its first expected
    outputs.

    Raises:
        ToolNotFound: iverilog missing.
        SimulationError: compile or run failed.
        MismatchError: the netlist disagrees with the golden model.
    """
    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        raise ToolNotFound("iverilog not found on PATH; gate-level simulation needs Icarus: `apt-get install iverilog`")
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    ports = port_widths(Path(netlist).read_text(), top)
    fields = scenario["fields"]
    beats = [step["beat"] for step in scenario["steps"] if "beat" in step]
    (work_dir / "beats.txt").write_text("".join(f"{pack(fields['i'], scenario['inputs'], b)}\n" for b in beats))
    (work_dir / "tb.v").write_text(testbench(top, ports, busy_inputs))
    compile_args = ["iverilog", "-o", "sim.vvp", "-s", "bmcnn_gate_tb", "tb.v", str(Path(netlist).resolve()),
                    str(Path(cell_models).resolve())]
    run_tool(compile_args, work_dir, work_dir / "compile.log", f"{top}: gate-level compile", timeout_s=None)
    run_tool(["vvp", "-n", "sim.vvp"], work_dir, work_dir / "run.log", f"{top}: gate-level run", timeout_s=None)
    got, cycles = _read_outputs(work_dir / "outputs.txt", fields["o"], scenario["outputs"])
    _compare(top, got, scenario["expected"])
    t_start = (RESET_CYCLES * PERIOD_NS)  # in ns; VCD time unit is 10 ps
    activity = net_activity(work_dir / "activity.vcd", t_start * 100, (RESET_CYCLES + cycles) * PERIOD_NS * 100)
    return GateSimResult(len(beats), cycles, len(got), activity)


def _read_outputs(path: Path, fields: dict[str, list[int]], names: list[str]) -> tuple[list[list[int]], int]:
    rows, cycles = [], None
    for line in path.read_text().splitlines():
        if line.startswith("# beats"):
            cycles = int(line.split()[-1])
            continue
        rows.append(unpack(fields, names, int(line)))
    if cycles is None:
        raise SimulationError(f"{path}: the gate-level simulation did not finish")
    return rows, cycles


def _compare(top: str, got: list[list[int]], expected: list[list[int]]) -> None:
    if len(got) != len(expected):
        raise MismatchError(f"{top}: the gate-level netlist gave {len(got)} outputs, golden expects {len(expected)}")
    for k, (g, e) in enumerate(zip(got, expected, strict=True)):
        if list(g) != list(e):
            raise MismatchError(f"{top}: gate-level output {k} is {g}, golden says {e}")
