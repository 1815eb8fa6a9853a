"""Static timing and power of a synthesised netlist with OpenSTA."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import SimulationError
from .liberty import clock_gate_outputs
from .synth import SynthResult
from .tools import require_tool, run_tool
from .vcd import NetActivity


@dataclass(frozen=True)
class StaResult:
    """Timing at the requested clock and power at the measured activity."""

    period_ns: float
    critical_path_ns: float
    """The shortest clock period at which every setup and clock-gating check is met (for
    full-cycle paths: the worst path's arrival plus setup)."""
    slack_ns: float
    """Worst setup slack at ``period_ns`` (negative: the design fails timing)."""
    fmax_mhz: float
    """1 / ``critical_path_ns``: the fastest clock every path allows."""
    power_w: dict[str, float]
    """Internal, switching, leakage and total power (W) at ``period_ns`` with the annotated activity."""
    annotated_nets: int
    """Nets whose measured activity OpenSTA accepted (counted by OpenSTA; 0 without activity)."""
    annotated_pins: int = 0
    """Cell pins of those nets that received the activity."""
    nets_sent: int = 0
    """Nets of the gate-level VCD the activity script sent (besides the clock)."""


TIMING_TAG = "bmcnn-timing:"
"""Prefix of the lines where the script prints the shortest period and the worst slack."""

_TIMING_PROCS = """\
proc bmcnn_clock {period} {
  create_clock -name clk -period $period [get_ports clk]
  set_input_delay 0 -clock clk [delete_from_list [all_inputs] [get_ports clk]]
  set_output_delay 0 -clock clk [all_outputs]
}
# The shortest period every setup and clock-gating check meets, by bisection: a design with
# half-cycle paths (a negative-edge clock-gate enable) has no single 'period - slack'.
proc bmcnn_min_period {hi} {
  bmcnn_clock $hi
  while {[worst_slack -max] < 0} { set hi [expr {2.0 * $hi}]; bmcnn_clock $hi }
  set lo 0.0
  for {set k 0} {$k < 30} {incr k} {
    set mid [expr {0.5 * ($lo + $hi)}]
    bmcnn_clock $mid
    if {[worst_slack -max] >= 0} { set hi $mid } else { set lo $mid }
  }
  return $hi
}
"""


def sta_script(synth: SynthResult, period_ns: float, activity_file: Path | None, work_dir: Path,
               gated_clocks: tuple[str, ...] = ()) -> str:
    """OpenSTA commands: link; shortest period (bisection); clock, I/O delays of zero, worst setup
    path and worst slack at ``period_ns``; measured activity; power.

    ``gated_clocks`` are the output pins of the cells that gate the clock: with measured activity,
    clock propagation stops there for the power report (after every timing check), so the gated
    clock nets are priced at the toggles the gate-level simulation counted; OpenSTA would
    otherwise give every pin of a clock network the full clock activity. Files in ``work_dir``
    (where OpenSTA runs) are named relative to it, so the script still runs by hand after the
    output directory is moved into place.
    """
    lines = [
        f"read_liberty {synth.liberty}",
        f"read_verilog {_relative(Path(synth.netlist), work_dir)}",
        f"link_design {synth.top}",
        _TIMING_PROCS,
        f'puts "{TIMING_TAG} min_period [bmcnn_min_period {period_ns!r}]"',
        f"bmcnn_clock {period_ns!r}",
        f'puts "{TIMING_TAG} worst_slack [worst_slack -max]"',
        "report_checks -path_delay max -digits 4",
    ]
    if activity_file is not None:
        lines.append(f"source {_relative(activity_file, work_dir)}")
        if gated_clocks:
            lines.append("set_sense -type clock -stop_propagation [get_pins [list "
                         + " ".join("{" + pin + "}" for pin in gated_clocks) + "]]")
    lines += ["report_power -digits 8", "exit"]
    return "\n".join(lines) + "\n"


def _relative(path: Path, base: Path) -> str:
    path, base = Path(path).resolve(), Path(base).resolve()
    return str(path.relative_to(base)) if path.is_relative_to(base) else str(path)


ACTIVITY_TAG = "bmcnn-activity:"
"""Prefix of the line the activity script prints: what OpenSTA accepted (nets, pins, ports)."""

_ACTIVITY_PROCS = """\
# Per-pin activity. Debian's OpenSTA 2.0.17 breaks `set_power_activity -pins` (it calls a
# missing get_pins_error and sets nothing), so the pins go to the command underneath it when
# it exists. Every accepted net, pin and port is counted; the counts come back in the log.
set bmcnn_nets 0; set bmcnn_pins 0; set bmcnn_ports 0
proc bmcnn_pin_activity {pins a d} {
  if {[llength [info commands sta::set_power_pin_activity]]} {
    foreach p $pins { sta::set_power_pin_activity $p $a $d }
  } else {
    set_power_activity -pins $pins -activity $a -duty $d
  }
}
proc bmcnn_act {names a d} {
  global bmcnn_nets bmcnn_pins
  set nets [get_nets -quiet $names]
  if {![llength $nets]} { return }
  set pins [get_pins -quiet -of_objects $nets]
  if {[llength $pins]} { bmcnn_pin_activity $pins $a $d }
  incr bmcnn_nets [llength $nets]; incr bmcnn_pins [llength $pins]
}
proc bmcnn_port {name a d} {
  global bmcnn_ports
  set ports [get_ports -quiet $name]
  if {![llength $ports]} { return }
  set_power_activity -input_ports $ports -activity $a -duty $d
  incr bmcnn_ports [llength $ports]
}
"""


def activity_tcl(activity: dict[str, NetActivity], cycles: int, inputs: set[str]) -> tuple[str, int]:
    """Tcl that sets every simulated net's activity on all its pins (and on input ports); skips the clock.

    Nets with the same activity and duty are annotated in one command (most register-bank nets
    hold still), which keeps OpenSTA's Tcl time small on large layers. The script ends by
    printing :data:`ACTIVITY_TAG` with the nets, pins and ports OpenSTA found and annotated.

    Returns:
        The script and the number of nets it sends (what was accepted comes from the log).
    """
    lines = [_ACTIVITY_PROCS]
    groups: dict[tuple[float, float], list[str]] = {}
    for name, act in sorted(activity.items()):
        if name == "clk":
            continue
        a, d = act.toggles / max(cycles, 1), act.high_fraction
        if name.split("[")[0] in inputs:
            lines.append(f"bmcnn_port {{{name}}} {a!r} {d!r}")
        groups.setdefault((a, d), []).append(name)
    for (a, d), names in groups.items():
        lines.append("bmcnn_act [list " + " ".join("{" + n + "}" for n in names) + f"] {a!r} {d!r}")
    lines.append(f'puts "{ACTIVITY_TAG} nets $bmcnn_nets pins $bmcnn_pins ports $bmcnn_ports"')
    return "\n".join(lines) + "\n", sum(len(n) for n in groups.values())


def parse_activity(text: str) -> dict[str, int]:
    """Nets, pins and ports OpenSTA annotated, from the activity script's :data:`ACTIVITY_TAG` line.

    Raises:
        SimulationError: the line is missing (the script did not run to its end).
    """
    found = re.search(re.escape(ACTIVITY_TAG) + r" nets (\d+) pins (\d+) ports (\d+)", text)
    if found is None:
        raise SimulationError("OpenSTA did not finish the activity script (no per-net activity was confirmed)")
    return dict(zip(("nets", "pins", "ports"), (int(x) for x in found.groups()), strict=True))


def tool_errors(text: str) -> list[str]:
    """The lines of an OpenSTA log that report an error (OpenSTA goes on after a failed Tcl command)."""
    return [line.strip() for line in text.splitlines() if line.lstrip().startswith("Error")]


def parse_sta(text: str) -> tuple[float, float, dict[str, float]]:
    """(shortest period, worst slack at the script's period, power by group) from the script's output.

    Raises:
        SimulationError: a figure is missing (e.g. the clock port is not named clk).
    """
    period = re.search(re.escape(TIMING_TAG) + r" min_period ([-0-9.eE+]+)", text)
    slack = re.search(re.escape(TIMING_TAG) + r" worst_slack ([-0-9.eE+]+)", text)
    total = re.search(r"^Total\s+([-0-9.eE+]+)\s+([-0-9.eE+]+)\s+([-0-9.eE+]+)\s+([-0-9.eE+]+)", text, re.MULTILINE)
    if period is None or slack is None or total is None:
        raise SimulationError("OpenSTA printed no timing or power report (is the clock port named clk?)")
    power = dict(zip(("internal", "switching", "leakage", "total"), (float(x) for x in total.groups()), strict=True))
    return float(period.group(1)), float(slack.group(1)), power


def run_sta(synth: SynthResult, period_ns: float, work_dir: Path, activity: dict[str, NetActivity] | None = None,
            cycles: int = 0, inputs: set[str] | None = None) -> StaResult:
    """Time and power ``synth`` at ``period_ns`` with OpenSTA; activity from a gate-level VCD.

    Raises:
        ToolNotFound: sta missing.
        SimulationError: OpenSTA failed, logged an error, printed no report, or did not find every
            simulated net (a partial activity annotation).
    """
    sta = require_tool("sta")
    work_dir = Path(work_dir)
    act_file, sent = None, 0
    if activity is not None:
        text, sent = activity_tcl(activity, cycles, inputs or set())
        act_file = work_dir / "activity.tcl"
        act_file.write_text(text)
    script = work_dir / "sta.tcl"
    gated = clock_gate_outputs(Path(synth.netlist).read_text(), synth.liberty) if activity is not None else ()
    script.write_text(sta_script(synth, period_ns, act_file, work_dir, gated))
    log = work_dir / "sta.log"
    out = run_tool([sta, "-no_splash", "-exit", str(script.resolve())], work_dir, log, f"{synth.top}: static timing")
    errors = tool_errors(out)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise SimulationError(f"{synth.top}: OpenSTA reported an error: {errors[0]}{more}; see {log}")
    accepted = parse_activity(out) if activity is not None else {"nets": 0, "pins": 0}
    if accepted["nets"] < sent:
        raise SimulationError(f"{synth.top}: OpenSTA found {accepted['nets']} of the {sent} simulated nets in the "
                              f"netlist; the activity would be partial; see {log}")
    min_period, slack, power = parse_sta(out)
    return StaResult(period_ns, min_period, slack, 1e3 / min_period, power, accepted["nets"],
                     accepted["pins"], sent)
