"""Yosys synthesis, gate-level simulation against golden, OpenSTA timing and power, VCD activity."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bmcnn_hw.cosim.rtl_check import layer_codes
from bmcnn_hw.cosim.scenarios import full_layer_scenario
from bmcnn_hw.errors import ConfigError, MismatchError, SimulationError
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.golden.crossbar import run_crossbar
from bmcnn_hw.golden.tile_reader import PhysicsReader
from bmcnn_hw.ppa.flow import _choose_clock, truncate_scenario
from bmcnn_hw.ppa.gatesim import run_gate_level
from bmcnn_hw.ppa.sta import StaResult, run_sta, tool_errors
from bmcnn_hw.ppa.synth import parse_stat, synthesize
from bmcnn_hw.ppa.tools import DEFAULT_CELL_MODELS, DEFAULT_LIBERTY
from bmcnn_hw.ppa.vcd import NetActivity, net_activity
from bmcnn_hw.rtl.emit import top_name, write_rtl
from tests.helpers import needs


def ppa_tools(test):
    """Skip ``test`` without Yosys, OpenSTA, Icarus or the OSU 0.18 um library (CI installs them)."""
    for mark in (needs("yosys"), needs("sta"), needs("iverilog"),
                 pytest.mark.skipif(not DEFAULT_LIBERTY.is_file(), reason="qflow-tech-osu018 not installed")):
        test = mark(test)
    return test


def liberty_areas(path: Path) -> dict[str, float]:
    """Cell name -> area, read straight from the Liberty text (independent of Yosys)."""
    text = path.read_text()
    cells = re.split(r"\n\s*cell\s*\(", text)[1:]
    return {chunk.split(")")[0].strip(): float(re.search(r"\barea\s*:\s*([0-9.]+)", chunk).group(1)) for chunk in cells}


COUNTER = """module counter(input clk, input rst, input en, output reg [7:0] q);
  always @(posedge clk) if (rst) q <= 0; else if (en) q <= q + 1;
endmodule
"""


@ppa_tools
def test_synthesis_area_is_the_sum_of_liberty_cell_areas(tmp_path):
    src = tmp_path / "counter.v"
    src.write_text(COUNTER)
    result = synthesize(src, "counter", DEFAULT_LIBERTY, tmp_path / "synth")
    areas = liberty_areas(DEFAULT_LIBERTY)
    assert result.cells == sum(result.cell_counts.values())
    assert result.cell_counts["DFFPOSX1"] == 8
    assert result.area_um2 == pytest.approx(sum(n * areas[c] for c, n in result.cell_counts.items()))
    assert "n_" in result.netlist.read_text()


def _stat_json(counts: dict[str, int]) -> str:
    return json.dumps({"modules": {"\\top": {"num_cells": sum(counts.values()), "num_cells_by_type": counts}}})


def test_stat_without_liberty_areas_is_a_clear_error():
    text = "Number of cells: 3\n  FOO 3\n   Area for cell type \\FOO is unknown!\nChip area for module '\\top': 0\n"
    with pytest.raises(SimulationError, match="lacks cells the design needs"):
        parse_stat(_stat_json({"FOO": 3}), text, "top")
    unmapped = "Number of cells: 2\n  $_DFF_P_ 2\nChip area for module '\\top': 0.000000\n"
    with pytest.raises(SimulationError, match=r"no cell for \$_DFF_P_"):
        parse_stat(_stat_json({"$_DFF_P_": 2}), unmapped, "top")
    with pytest.raises(SimulationError, match="stat -json gave no cell counts"):
        parse_stat("{}", unmapped, "top")


def test_stat_counts_come_from_json_and_the_area_from_json_where_yosys_gives_it():
    text = "Chip area for module '\\top': 12.5\n"
    assert parse_stat(_stat_json({"A": 2, "B": 1}), text, "top") == (3, 12.5, {"A": 2, "B": 1})
    newer = json.loads(_stat_json({"A": 2}))
    newer["modules"]["\\top"]["area"] = 7.0
    assert parse_stat(json.dumps(newer), text, "top")[1] == 7.0


@pytest.mark.icarus
@ppa_tools
@pytest.mark.parametrize("index", [0, 2])
@pytest.mark.slow
def test_gate_level_layer_equals_golden_and_gives_activity(tmp_path, compiled, mnist_test, index):
    """The synthesised layer top, simulated from its cells' Verilog, reproduces golden on real beats."""
    layer = compiled.layers[index]
    images = mnist_test.images[:3]
    trace, acc = run_crossbar(compiled, images, PhysicsReader(Chip(compiled)), record=True)
    scenario, _ = full_layer_scenario(layer, trace.outputs[index], layer_codes(acc.reads, index), len(images))
    scenario = truncate_scenario(scenario, 3000)
    write_rtl(compiled, tmp_path / "rtl")
    top = top_name(layer)
    synth = synthesize(tmp_path / "rtl" / f"{top}.v", top, DEFAULT_LIBERTY, tmp_path / "synth")
    sim = run_gate_level(synth.netlist, top, DEFAULT_CELL_MODELS, scenario, tmp_path / "gates")
    assert sim.outputs_checked == len(scenario["expected"]) > 0
    assert sim.beats <= 3000
    assert sum(a.toggles for a in sim.activity.values()) > 0
    nominal = run_sta(synth, 10.0, tmp_path / "synth")
    annotated = run_sta(synth, 10.0, tmp_path / "synth", sim.activity, sim.cycles, {"i__payload", "i__valid"})
    assert annotated.annotated_nets == annotated.nets_sent == len(sim.activity) - 1  # all but the clock
    assert annotated.annotated_pins > annotated.annotated_nets
    assert annotated.power_w["total"] != nominal.power_w["total"]
    assert nominal.fmax_mhz == pytest.approx(1e3 / (10.0 - nominal.slack_ns))
    tight = run_sta(synth, nominal.critical_path_ns / 2, tmp_path / "synth")
    assert tight.slack_ns < 0
    bad = {**scenario, "expected": [list(e) for e in scenario["expected"]]}
    bad["expected"][-1][-1] += 1
    with pytest.raises(MismatchError, match=f"{top}: gate-level output"):
        run_gate_level(synth.netlist, top, DEFAULT_CELL_MODELS, bad, tmp_path / "gates_bad")


def test_vcd_activity_counts_toggles_and_time_high(tmp_path):
    vcd = tmp_path / "a.vcd"
    vcd.write_text("$timescale 10ps $end\n$scope module tb $end\n$scope module dut $end\n"
                   "$var wire 1 ! a $end\n$var wire 2 \" bus [1:0] $end\n$upscope $end\n$upscope $end\n"
                   "$enddefinitions $end\n#0\n0!\nb00 \"\n#10\n1!\n#20\n0!\nb11 \"\n#30\n1!\nb01 \"\n#40\n")
    act = net_activity(vcd, 10, 40)
    assert act["a"].toggles == 3 and act["a"].high_fraction == pytest.approx(20 / 30)
    assert act["bus[1]"].toggles == 2 and act["bus[1]"].high_fraction == pytest.approx(10 / 30)
    assert act["bus[0]"].toggles == 1 and act["bus[0]"].high_fraction == pytest.approx(20 / 30)


def test_truncated_scenario_keeps_whole_outputs():
    scenario = {"steps": [{"beat": [k]} for k in range(12)], "expected": [[0], [1], [2], [3]]}
    cut = truncate_scenario(scenario, 7)
    assert cut["expected"] == [[0], [1]] and len(cut["steps"]) == 6
    assert truncate_scenario(scenario, 100) is scenario
    assert len(truncate_scenario(scenario, 1)["expected"]) == 1


def _timing(fmax: float, slack: float) -> StaResult:
    return StaResult(10.0, 10.0 - slack - 0.2, slack, fmax, {}, 0)


def test_clock_is_the_slowest_fmax_or_a_checked_request():
    timings = [("a", _timing(150.0, 3.3)), ("b", _timing(23.9, -31.8))]
    assert _choose_clock(timings, None) == pytest.approx(1e3 / 23)
    assert _choose_clock(timings, 20.0) == pytest.approx(50.0)
    assert _choose_clock([], None) == 10.0
    with pytest.raises(ConfigError, match=r"layer b fails timing \(slack -8\.\d+ ns"):
        _choose_clock(timings, 30.0)


def test_numbers_in_the_vcd_window_are_clipped(tmp_path):
    vcd = tmp_path / "b.vcd"
    vcd.write_text("$scope module tb $end\n$scope module dut $end\n$var wire 1 ! a $end\n$upscope $end\n"
                   "$upscope $end\n$enddefinitions $end\n#0\n1!\n#5\n0!\n#50\n1!\n#100\n")
    act = net_activity(vcd, 10, 60)
    assert act["a"].toggles == 1 and act["a"].high_fraction == pytest.approx(10 / 50)
    assert np.isclose(net_activity(vcd, 0, 100)["a"].high_fraction, (5 + 50) / 100)


@ppa_tools
def test_a_liberty_file_that_does_not_parse_is_one_clear_error(tmp_path, monkeypatch):
    src = tmp_path / "counter.v"
    src.write_text(COUNTER)
    bad = tmp_path / "bad.lib"
    bad.write_text("library (x) { cell (INV) { area : ; \n")
    monkeypatch.chdir(tmp_path)  # relative work directories work too
    with pytest.raises(SimulationError, match=r"counter: synthesis: yosys failed \(ERROR"):
        synthesize(src, "counter", bad, Path("synth"))
    assert synthesize(src, "counter", DEFAULT_LIBERTY, Path("synth_ok")).cells > 8


def _netlist_bits(netlist: Path) -> list[str]:
    """Every single-bit net and port bit a gate-level netlist declares (the names a VCD gives)."""
    names = []
    for rng, name in re.findall(r"^\s*(?:wire|input|output)\s+(\[\d+:\d+\]\s+)?(\w+);", netlist.read_text(),
                                re.MULTILINE):
        if rng:
            hi, lo = (int(x) for x in rng.strip(" []").split(":"))
            names += [f"{name}[{k}]" for k in range(min(hi, lo), max(hi, lo) + 1)]
        else:
            names.append(name)
    return sorted(set(names))


@ppa_tools
def test_measured_activity_is_what_opensta_uses(tmp_path):
    """A design measured idle (every data net still) has no data switching power in OpenSTA: the
    per-net activity reached the tool (Debian's OpenSTA drops `set_power_activity -pins`)."""
    src = tmp_path / "counter.v"
    src.write_text(COUNTER)
    synth = synthesize(src, "counter", DEFAULT_LIBERTY, tmp_path / "synth")
    idle = {name: NetActivity(0, 0.0) for name in _netlist_bits(synth.netlist)}
    default = run_sta(synth, 10.0, tmp_path / "synth")
    held = run_sta(synth, 10.0, tmp_path / "synth", idle, 100, {"rst", "en"})
    assert held.annotated_nets == held.nets_sent == len(idle) - 1 > 8  # the clock keeps its clock activity
    assert held.annotated_pins > held.annotated_nets
    assert held.power_w["switching"] < 0.05 * default.power_w["switching"]
    assert held.power_w["internal"] < default.power_w["internal"]
    assert "bmcnn-activity: nets" in (tmp_path / "synth" / "sta.log").read_text()


TIED_PORTS = """module tied(input clk, input [3:0] d, output [7:0] r);
  reg [3:0] a;
  always @(posedge clk) a <= d;
  assign r[7:4] = a;
  assign r[3] = a[3];  // output bits that copy other output bits, between bits driven by gates
  assign r[2] = ~d[0];
  assign r[1] = a[1];
  assign r[0] = ~d[1];
endmodule
"""


@ppa_tools
def test_output_bits_tied_together_reach_opensta(tmp_path):
    """Output port bits that alias one another (a hard-wired register's equal constant bits did) were
    written as `assign {r[2], r[0]} = {r[3], r[1]}`, which OpenSTA 2.0 rejects ("no network has been
    linked"); the netlist now has one simple assignment per bit and OpenSTA times and prices it."""
    src = tmp_path / "tied.v"
    src.write_text(TIED_PORTS)
    synth = synthesize(src, "tied", DEFAULT_LIBERTY, tmp_path / "synth")
    assert not re.search(r"assign\s*\{", synth.netlist.read_text())
    assert run_sta(synth, 10.0, tmp_path / "synth").power_w["internal"] > 0


@ppa_tools
def test_a_net_opensta_does_not_find_or_a_tool_error_fails(tmp_path):
    src = tmp_path / "counter.v"
    src.write_text(COUNTER)
    synth = synthesize(src, "counter", DEFAULT_LIBERTY, tmp_path / "synth")
    foreign = {name: NetActivity(1, 0.5) for name in [*_netlist_bits(synth.netlist), "no_such_net"]}
    with pytest.raises(SimulationError, match=r"counter: OpenSTA found \d+ of the \d+ simulated nets"):
        run_sta(synth, 10.0, tmp_path / "synth", foreign, 10, {"rst", "en"})
    assert tool_errors("Warning: x\nError: activity.tcl, 5 invalid command name \"y\"\nok") == [
        'Error: activity.tcl, 5 invalid command name "y"']


@pytest.mark.icarus
@ppa_tools
@pytest.mark.slow
def test_clock_gated_periphery_is_golden_at_gate_level_and_cheaper_per_beat(tmp_path, compiled, mnist_test):
    """conv0's layer top with clock-gated configuration registers: the gate-level netlist equals
    golden on real beats, STA finds the gate, and the measured power per beat drops well below
    the ungated periphery's on the same beats (same Liberty, same activity method)."""
    images = mnist_test.images[:1]
    trace, acc = run_crossbar(compiled, images, PhysicsReader(Chip(compiled)), record=True)
    scenario, _ = full_layer_scenario(compiled.layers[0], trace.outputs[0], layer_codes(acc.reads, 0), 1)
    scenario = truncate_scenario(scenario, 2000)
    power = {}
    for gated in (False, True):
        model = compiled.replace_layer(0, clock_gating=gated)
        write_rtl(model, tmp_path / f"rtl{gated}")
        top = top_name(model.layers[0])
        synth = synthesize(tmp_path / f"rtl{gated}" / f"{top}.v", top, DEFAULT_LIBERTY, tmp_path / f"synth{gated}")
        sim = run_gate_level(synth.netlist, top, DEFAULT_CELL_MODELS, scenario, tmp_path / f"gates{gated}")
        assert sim.outputs_checked == len(scenario["expected"])
        sta = run_sta(synth, 10.0, tmp_path / f"synth{gated}", sim.activity, sim.cycles, {"i__payload", "i__valid"})
        assert sta.annotated_nets == sta.nets_sent and sta.slack_ns > 0
        script = (tmp_path / f"synth{gated}" / "sta.tcl").read_text()
        assert ("-stop_propagation" in script) == gated
        power[gated] = sta.power_w["total"]
    assert power[True] < 0.25 * power[False]


def _liberty_table(liberty: Path, cell: str, pin: str, kind: str) -> tuple[list[float], list[float]]:
    """(index_1, values) of a one-dimensional ``kind`` (rise_power / fall_power) table of ``cell``/``pin``."""
    chunk = re.split(r"\n\s*cell\s*\(", liberty.read_text())
    body = next(c for c in chunk if c.split(")")[0].strip() == cell)
    pin_body = body.split(f"pin({pin})", 1)[1]
    table = re.search(kind + r"\s*\(\w+\)\s*\{\s*index_1\s*\(\"([^\"]+)\"\);\s*values\s*\(\"([^\"]+)\"\)", pin_body)
    return [float(x) for x in table.group(1).split(",")], [float(x) for x in table.group(2).split(",")]


@needs("sta")
@pytest.mark.skipif(not DEFAULT_LIBERTY.is_file(), reason="qflow-tech-osu018 not installed")
def test_opensta_counts_clock_pin_energy_twice_against_the_liberty_tables(tmp_path):
    """Documents a defect of the OpenSTA the flow uses (docs/ppa_method.md): an idle DFFPOSX1
    clocked at 10 ns with a 0.24 ns clock slew (a table point, no interpolation) costs
    rise + fall energy of its CLK pin per cycle by the Liberty definition (energy per
    transition); Debian's OpenSTA 2.0.17 reports twice that. A newer OpenSTA fails this test."""
    slews, rise = _liberty_table(DEFAULT_LIBERTY, "DFFPOSX1", "CLK", "rise_power")
    _, fall = _liberty_table(DEFAULT_LIBERTY, "DFFPOSX1", "CLK", "fall_power")
    k = slews.index(0.24)
    liberty_w = (rise[k] + fall[k]) * 1e-12 / 10e-9  # pJ per cycle at 10 ns
    (tmp_path / "dff.v").write_text("module dff_top (clk, d, q);\n  input clk;\n  input d;\n  output q;\n"
                                    "  DFFPOSX1 r0 (.CLK(clk), .D(d), .Q(q));\nendmodule\n")
    (tmp_path / "dff.tcl").write_text(
        f"read_liberty {DEFAULT_LIBERTY}\nread_verilog dff.v\nlink_design dff_top\n"
        "create_clock -name clk -period 10 [get_ports clk]\nset_input_transition 0.24 [get_ports {clk d}]\n"
        "set_load 0 [get_ports q]\nset_power_activity -input_ports [get_ports d] -activity 0 -duty 0.5\n"
        "report_power -digits 10\n")
    out = subprocess.run(["sta", "-no_splash", "-exit", "dff.tcl"], cwd=tmp_path, capture_output=True, text=True).stdout
    sequential = re.search(r"^Sequential\s+([-0-9.eE+]+)", out, re.MULTILINE)
    assert sequential is not None, out
    assert float(sequential.group(1)) == pytest.approx(2 * liberty_w, rel=1e-6)
