"""Layer periphery RTL: construction checks, the checked-in rtl/, and cocotb testbenches
against the golden model on Icarus and Verilator."""

from __future__ import annotations

import gc
import json
import shutil

import numpy as np
import pytest
from amaranth.hdl import Const

from bmcnn_hw.cosim.rtl_check import check_rtl
from bmcnn_hw.cosim.runner import run_stream_tb
from bmcnn_hw.cosim.scenarios import PERIPHERY_IN
from bmcnn_hw.errors import ConfigError, MismatchError, ToolNotFound
from bmcnn_hw.rtl.emit import emit_layer, layer_texts
from bmcnn_hw.rtl.layer import layer_top_for
from bmcnn_hw.rtl.periphery import ERROR_BITS, LayerPeriphery, layer_registers, periphery_for_layer
from bmcnn_hw.rtl.reference import reference_model
from bmcnn_hw.rtl.regs import RegisterMap, RegisterSpec
from bmcnn_hw.rtl.simulators import check_simulator
from bmcnn_hw.rtl.streams import stream_fields
from tests.helpers import REPO, gated, needs, windowed


@pytest.mark.parametrize("kwargs, message", [
    ({"channels": 0}, "channels must be a positive integer"),
    ({"adc_bits": 0}, "adc_bits must be a positive integer"),
    ({"acc_width": 4}, "cannot hold the accumulator bound"),
    ({"acc_width": 40}, "exceeds the 32-bit register bus"),
    ({"thetas": [1 << 20, 0], "flips": [0, 0]}, "threshold 1048576 out of range"),
    ({"thetas": [1], "flips": [0]}, "need 2 thresholds"),
    ({"thetas": [1, 2], "flips": [0, 2]}, "flips must be 0 or 1"),
])
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")  # construction fails on purpose
def test_bad_parameters_raise_one_sentence(kwargs, message):
    args = dict(channels=2, adc_bits=6, planes=8, acc_width=16)
    args.update(kwargs)
    with pytest.raises(ConfigError, match=message) as info:
        LayerPeriphery(**args)
    del info  # its traceback holds the half-built component: collect it under this test's filter
    gc.collect()


def test_register_offset_collision_and_bad_specs():
    a = RegisterSpec("a", 0x10, 8, "rw", (0, 0, 0), "a", count=3)
    with pytest.raises(ConfigError, match="register offset collision at 0x12: a and b"):
        RegisterMap("x", (a, RegisterSpec("b", 0x12, 8, "rw", (0,), "b")))
    with pytest.raises(ConfigError, match="width must be an integer in"):
        RegisterSpec("c", 0, 0, "rw", (0,), "c")
    with pytest.raises(ConfigError, match="reset value 300 out of range"):
        RegisterSpec("d", 0, 8, "rw", (300,), "d")


def test_checked_in_rtl_is_current(tmp_path):
    model = reference_model()
    for layer in model.layers:
        for name, text in layer_texts(layer).items():
            checked_in = REPO / "rtl" / name
            assert checked_in.is_file(), f"rtl/{name} missing: run `make rtl`"
            assert checked_in.read_text() == text, f"rtl/{name} is stale: run `make rtl`"


def test_emitted_verilog_is_readable(compiled):
    text = emit_layer(compiled.layers[0])
    assert "module periphery_conv0(" in text
    for port in ("i__valid", "i__ready", "i__payload", "o__valid", "o__ready", "o__payload", "bus__addr",
                 "bus__wdata", "bus__we", "bus__rdata", "clk", "rst"):
        assert f"put {port};" in text or f"] {port};" in text, port
    for field in ("i__payload.code", "i__payload.first", "i__payload.group_last", "o__payload.acc"):
        assert f"\\{field} " in text, field  # payload fields keep their names as wires


def _register_scenario(layer):
    """Write then read back every rw register, read every ro register, write it and read it
    unchanged (the map document's claims)."""
    registers = layer_registers(layer)
    rng = np.random.default_rng(0)
    steps = []
    for reg in registers.registers:
        for k, addr in enumerate(reg.addresses):
            if reg.access == "ro":
                steps += [{"read": [addr, int(reg.reset[k])]}, {"write": [addr, ~int(reg.reset[k]) & 1]},
                          {"read": [addr, int(reg.reset[k])]}]
                continue
            if reg.access == "w1c":  # nothing set it: writing ones clears nothing and sets nothing
                steps += [{"read": [addr, 0]}, {"write": [addr, (1 << reg.width) - 1]}, {"read": [addr, 0]}]
                continue
            lo, hi = (-(1 << (reg.width - 1)), (1 << (reg.width - 1)) - 1) if reg.signed else (0, (1 << reg.width) - 1)
            value = int(rng.integers(lo, hi + 1))
            steps += [{"read": [addr, int(reg.reset[k])]}, {"write": [addr, value]}, {"read": [addr, value]}]
    steps.append({"read": [max(r.offset + r.count for r in registers.registers), 0]})  # unmapped reads 0
    return {"fields": {}, "inputs": [], "outputs": [], "steps": steps, "expected": []}


@pytest.mark.icarus
@needs("iverilog")
@pytest.mark.parametrize("clock_gating, hardwired", [(False, False), (True, False), (True, True)],
                         ids=["plain", "clock-gated", "clock-gated+hardwired"])
@pytest.mark.slow
def test_every_register_of_the_map_writes_and_reads_back(compiled, tmp_path, clock_gating, hardwired):
    from bmcnn_hw.rtl.emit import write_rtl

    compiled = gated(compiled) if clock_gating else compiled
    compiled = compiled.replace_layer(0, hardwired_thresholds=hardwired)
    assert (layer_registers(compiled.layers[0])["theta"].access == "ro") == hardwired
    write_rtl(compiled, tmp_path / "rtl")
    for layer in compiled.layers[::2]:  # conv0 (hidden: theta, flip, tune_offset) and fc2 (output)
        name = f"periphery_{layer.name}"
        run_stream_tb(tmp_path / "rtl" / f"{name}.v", name, _register_scenario(layer), tmp_path / name)
    doc = json.loads((tmp_path / "rtl" / "regmap_conv0.json").read_text())
    assert [r["name"] for r in doc["registers"]] == ["id", "channels", "error", "theta", "flip", "tune_offset"]


def _protocol_scenario(component, groups: list) -> dict:
    """Beats that break the protocol, each group followed by a read of the sticky error bits it
    must set and a write-1-to-clear. ``groups``: (beats, output channels, error bits)."""
    error = component.registers["error"].offset if hasattr(component, "registers") else \
        component.periphery.registers["error"].offset
    steps, expected = [], []
    for beats, channels, bits in groups:
        steps += [{"beat": b} for b in beats]
        steps += [{"idle": 3}, {"read": [error, bits]}, {"write": [error, bits]}, {"read": [error, 0]}]
        expected += [[c] for c in channels]
    return {"fields": stream_fields(component), "inputs": PERIPHERY_IN, "outputs": ["channel"], "steps": steps,
            "expected": expected, "idle_prob": 0.0, "stall_prob": 0.0, "seed": 0}


@pytest.mark.icarus
@needs("iverilog")
def test_protocol_errors_set_sticky_bits_and_clear_on_write(compiled, tmp_path):
    """Out-of-range channel and plane, broken first/last framing and a short pool window each set
    their bit of the error register (the result still goes out); writing the bit clears it."""
    from amaranth.back import verilog

    fc2 = compiled.layers[2]  # 10 channels (4-bit index), binary input (1 plane, 1-bit index)
    bit = {name: 1 << b for name, (b, _) in ERROR_BITS.items()}
    periphery = periphery_for_layer(fc2)
    scenario = _protocol_scenario(periphery, [
        ([[0, 0, 12, 1, 1, 0]], [12], bit["channel"]),
        ([[0, 1, 3, 1, 1, 0]], [3], bit["plane"]),
        ([[0, 0, 3, 0, 1, 0]], [3], bit["frame"]),  # no first: nothing is open
        ([[0, 0, 3, 1, 0, 0], [0, 0, 3, 1, 1, 0]], [3], bit["frame"]),  # first while open
        ([[0, 0, 3, 1, 0, 0], [0, 0, 4, 0, 1, 0]], [4], bit["frame"]),  # channel changes inside a frame
        ([[0, 0, 5, 1, 1, 1]], [5], 0),  # a well-framed beat sets nothing
    ])
    path = tmp_path / "periphery_fc2.v"
    path.write_text(verilog.convert(periphery, name="periphery_fc2", emit_src=False))
    assert run_stream_tb(path, "periphery_fc2", scenario, tmp_path / "periphery") == 6
    conv0 = compiled.layers[0]  # pool 2: windows of 4 results; 8 planes, 1 row tile
    top = layer_top_for(conv0)
    channel = [[0, plane, 7, int(plane == 0), int(plane == 7), 0] for plane in range(8)]
    closing = [row[:5] + [int(row[4])] for row in channel]  # the same beats, closing the window
    scenario = _protocol_scenario(top, [
        (channel * 2 + closing, [7], bit["group"]),  # a window of 3 results
        (channel * 3 + closing, [7], 0),  # the pool re-synchronised: a window of 4 is clean
        (channel * 4 + closing, [7], bit["group"]),  # 5 results
    ])
    path = tmp_path / "layer_conv0.v"
    path.write_text(verilog.convert(top, name="layer_conv0", emit_src=False))
    assert run_stream_tb(path, "layer_conv0", scenario, tmp_path / "top") == 3


@pytest.mark.icarus
@needs("iverilog")
@pytest.mark.parametrize("clock_gating", [False, True], ids=["plain", "clock-gated+windowed-adcs"])
@pytest.mark.slow
def test_every_layer_and_top_matches_golden_on_icarus(compiled, mnist_test, tmp_path, clock_gating):
    """Every periphery, its protocol scenario and every layer top = golden; the second variant
    clock-gates the peripheries and gives every tile column its own ADC window (codes unsigned,
    the lows added back per channel)."""
    compiled = windowed(gated(compiled)) if clock_gating else compiled
    assert compiled.layers[0].adc_window == clock_gating
    checks = check_rtl(compiled, mnist_test.images[:3], tmp_path, sim="icarus", per_layer=300, seed=4)
    assert [c.module for c in checks] == [
        "periphery_conv0", "periphery_conv0 (protocol)", "layer_conv0", "periphery_fc1", "periphery_fc1 (protocol)",
        "layer_fc1", "periphery_fc2", "periphery_fc2 (protocol)", "layer_fc2"]
    assert all(c.passed for c in checks), [c.message for c in checks if not c.passed]


@pytest.mark.icarus
@needs("iverilog")
@pytest.mark.slow
def test_a_binary_pixel_build_matches_golden_on_icarus(mnist_test, tmp_path):
    """conv0 of a 1-bit-pixel model reads once per position: one beat per channel, a 7-bit
    accumulator and tuning register (the directed scenario's tuning values once overflowed it)."""
    import dataclasses

    import torch

    from bmcnn_hw.compile import compile_checkpoint
    from bmcnn_hw.config import HardwareConfig
    from bmcnn_hw.train.model import BMCNN
    from bmcnn_hw.train.registry import resolve_model

    torch.manual_seed(0)
    hardware = HardwareConfig()
    hardware = dataclasses.replace(hardware, readout=dataclasses.replace(hardware.readout, skip_zero_reads=True))
    compiled = compile_checkpoint(BMCNN(resolve_model("bmcnn-compact-1bit")).eval(), hardware)
    assert compiled.layers[0].acc_width == 7 and compiled.layers[0].input_shift == 7
    checks = check_rtl(compiled, mnist_test.images[:2], tmp_path, sim="icarus", per_layer=200, seed=1)
    assert all(c.passed for c in checks), [c.message for c in checks if not c.passed]


@pytest.mark.slow
@pytest.mark.parametrize("sim", [pytest.param("icarus", marks=[pytest.mark.icarus, needs("iverilog")]),
                                 pytest.param("verilator", marks=pytest.mark.verilator)])
@pytest.mark.parametrize("hardwired", [False, True], ids=["rewritable", "hardwired"])
def test_a_sense_read_out_layer_matches_golden(sim, hardwired, mnist_test, tmp_path):
    """conv0 of a 1-bit-pixel model read out by sense amplifiers, half its flips set: the
    periphery in sense mode under cocotb (random theta / tune_offset / flip writes move the
    comparators' references between beats; with hard-wired thresholds only tune_offset writes
    do, and the directed threshold edges come from tune_offset), its protocol scenario and its
    layer top; with hard-wired thresholds the ADC peripheries of fc1 and fc2 too."""
    import dataclasses

    import numpy as np
    import torch

    from bmcnn_hw.compile import compile_checkpoint
    from bmcnn_hw.config import HardwareConfig
    from bmcnn_hw.rtl.simulators import simulator_path
    from bmcnn_hw.train.model import BMCNN
    from bmcnn_hw.train.registry import resolve_model

    if sim == "verilator":
        simulator_path()
        if shutil.which("verilator") is None:
            pytest.skip("verilator not installed")
    torch.manual_seed(0)
    hardware = HardwareConfig()
    hardware = dataclasses.replace(hardware, readout=dataclasses.replace(hardware.readout, sense_layers="conv0"),
                                   digital=dataclasses.replace(hardware.digital, hardwired_thresholds=hardwired))
    compiled = compile_checkpoint(BMCNN(resolve_model("bmcnn-compact-1bit")).eval(), hardware)
    conv0 = compiled.layers[0]
    compiled = compiled.replace_layer(0, flip=(np.arange(conv0.cols) % 2).astype(conv0.flip.dtype))
    assert compiled.layers[0].sense and not compiled.layers[1].sense
    assert compiled.layers[1].hardwired_thresholds == hardwired
    checks = check_rtl(compiled, mnist_test.images[:2], tmp_path, sim=sim, per_layer=200, seed=2)
    assert [c.module for c in checks if c.layer == "conv0"] and all(c.passed for c in checks), \
        [c.message for c in checks if not c.passed]


@pytest.mark.icarus
@needs("iverilog")
def test_pool_and_argmax_components(tmp_path):
    from amaranth.back import verilog

    from bmcnn_hw.cosim.scenarios import argmax_scenario, pool_scenario
    from bmcnn_hw.rtl.argmax import Argmax
    from bmcnn_hw.rtl.pool import BinaryMaxPool

    for name, component, scenario in (
            ("pool4", BinaryMaxPool(group=4, channel_width=5), pool_scenario(4, 150, 5, seed=1)),
            ("argmax10", Argmax(classes=10, score_width=12), argmax_scenario(10, 80, 12, seed=2))):
        path = tmp_path / f"{name}.v"
        path.write_text(verilog.convert(component, name=name, emit_src=False))
        assert run_stream_tb(path, name, scenario, tmp_path / name) == len(scenario["expected"])


@pytest.mark.icarus
@needs("iverilog")
def test_simulator_builds_are_cached_by_the_verilogs_content(tmp_path):
    """A second scenario on the same Verilog reuses its simulator build (not rebuilt, same
    files); the same module with other content gets a build of its own; where the cache cannot
    be written, the build is made beside the run."""
    from amaranth.back import verilog

    from bmcnn_hw.cosim.scenarios import pool_scenario
    from bmcnn_hw.rtl.pool import BinaryMaxPool

    cache, path = tmp_path / "cache", tmp_path / "pool4.v"
    path.write_text(verilog.convert(BinaryMaxPool(group=4, channel_width=5), name="pool4", emit_src=False))
    for seed in (1, 2):
        scenario = pool_scenario(4, 20, 5, seed=seed)
        assert run_stream_tb(path, "pool4", scenario, tmp_path / f"run{seed}", cache=cache) == 20
        if seed == 1:
            (build,) = cache.iterdir()
            stamp = (build / "sim.vvp").stat().st_mtime_ns
    assert [p.name for p in cache.iterdir()] == [build.name] and (build / "sim.vvp").stat().st_mtime_ns == stamp
    path.write_text(verilog.convert(BinaryMaxPool(group=4, channel_width=6), name="pool4", emit_src=False))
    run_stream_tb(path, "pool4", pool_scenario(4, 20, 6, seed=3), tmp_path / "run3", cache=cache)
    assert len(list(cache.iterdir())) == 2
    (tmp_path / "a_file").write_text("")  # a cache that cannot be made: built beside the run
    unwritable = tmp_path / "a_file" / "cache"
    assert run_stream_tb(path, "pool4", pool_scenario(4, 20, 6, seed=4), tmp_path / "run4", cache=unwritable) == 20
    assert (tmp_path / "run4" / "sim_build" / "sim.vvp").is_file()


@pytest.mark.icarus
@needs("iverilog")
@pytest.mark.slow
def test_a_wrong_golden_value_fails_and_leaves_a_vcd(compiled, mnist_test, tmp_path):
    check_rtl(compiled, mnist_test.images[:1], tmp_path, sim="icarus", per_layer=20, tops=False)
    sim_dir = tmp_path / "sim" / "icarus_periphery_fc1"
    scenario = json.loads((sim_dir / "scenario.json").read_text())
    scenario["expected"][5][1] += 1
    with pytest.raises(MismatchError, match="output 5: RTL") as info:
        run_stream_tb(tmp_path / "rtl" / "periphery_fc1.v", "periphery_fc1", scenario, tmp_path / "again")
    vcd = tmp_path / "again" / "periphery_fc1.vcd"
    assert vcd.is_file() and "$enddefinitions" in vcd.read_text() and "o__payload" in vcd.read_text()
    assert str(vcd) in str(info.value) and (tmp_path / "again" / "sim.log").is_file()


@pytest.mark.icarus
@pytest.mark.slow
@needs("iverilog")
def test_regression_of_10000_vectors_through_one_layer(compiled, mnist_test, tmp_path):
    from bmcnn_hw.cosim.rtl_check import layer_codes
    from bmcnn_hw.cosim.scenarios import periphery_scenario
    from bmcnn_hw.golden.chip import Chip
    from bmcnn_hw.golden.crossbar import run_crossbar
    from bmcnn_hw.golden.tile_reader import PhysicsReader
    from bmcnn_hw.rtl.emit import write_rtl

    images = mnist_test.images[:100]
    trace, acc = run_crossbar(compiled, images, PhysicsReader(Chip(compiled)), record=True)
    layer = compiled.layers[2]
    golden = trace.accumulators[2].reshape(-1, layer.cols)
    picks = np.stack([np.repeat(np.arange(100), 100), np.tile(np.arange(10), 1000)], axis=1)
    scenario = periphery_scenario(layer, golden, layer_codes(acc.reads, 2), picks, seed=9)
    write_rtl(compiled, tmp_path / "rtl")
    n = run_stream_tb(tmp_path / "rtl" / "periphery_fc2.v", "periphery_fc2", scenario, tmp_path / "reg")
    assert n == 10002


def test_missing_simulator_is_tool_not_found(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ToolNotFound, match="apt-get install iverilog"):
        check_simulator("icarus")


@pytest.mark.verilator
@pytest.mark.slow
def test_every_clock_gated_windowed_periphery_matches_golden_on_verilator(compiled, mnist_test, tmp_path):
    """The clock-gated, windowed variant under cocotb on Verilator (the plain RTL runs under cocotb
    on Icarus above and through the Verilator stream harness in cosim and rtl-regress, on every
    beat of the test set; a cocotb Verilator run of it here cost 175 s of the full tier)."""
    from bmcnn_hw.rtl.simulators import simulator_path

    simulator_path()
    if shutil.which("verilator") is None:
        pytest.skip("verilator not installed")
    checks = check_rtl(windowed(gated(compiled)), mnist_test.images[:2], tmp_path, sim="verilator", per_layer=200,
                       tops=False)
    assert all(c.passed for c in checks), [c.message for c in checks if not c.passed]


@pytest.mark.verilator
def test_reference_rtl_is_lint_clean_and_has_cell_counts():
    from bmcnn_hw.rtl.quality import cell_stats, lint

    for path in sorted((REPO / "rtl").glob("*.v")):
        assert lint(path) == [], path.name
    stats = cell_stats(REPO / "rtl" / "periphery_fc2.v", "periphery_fc2")
    assert stats["cells"] > 100 and any("DFF" in k for k in stats["by_type"])


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_scenario_payload_fields_are_the_components():
    """The testbench packs beats with fields computed from the layer; they equal the RTL's layouts."""
    from bmcnn_hw.rtl.layer import layer_stream_fields

    for layer in reference_model().layers:
        assert layer_stream_fields(layer, top=False) == stream_fields(periphery_for_layer(layer))
        assert layer_stream_fields(layer, top=True) == stream_fields(layer_top_for(layer))
    gc.collect()  # the components built only for their layouts are collected under this test's filter


def test_gated_configuration_registers_take_a_gated_clock(compiled):
    """The gate: registers on ``cfg_clk = clk & enable``, the enable on the falling edge; the
    ungated periphery (the reference rtl/) has neither."""
    text = emit_layer(gated(compiled).layers[0])
    assert "assign cfg_clk = clk & cfg_enable_q;" in text
    assert "always @(negedge clk)" in text
    assert text.count("always @(posedge cfg_clk)") == 3 * compiled.layers[0].cols  # theta, flip, tune_offset
    assert "cfg_clk" not in emit_layer(compiled.layers[0])


@pytest.mark.icarus
@needs("iverilog")
def test_a_clock_gate_that_drops_writes_is_caught(compiled, tmp_path, monkeypatch):
    """A gate whose enable ignores bus writes (opens only in reset) fails the register test."""
    import bmcnn_hw.rtl.periphery as periphery
    from bmcnn_hw.rtl.clock_gate import add_gated_domain

    def broken_gate(m, name, enable):
        add_gated_domain(m, name, Const(0) if name == "cfg" else enable)

    monkeypatch.setattr(periphery, "add_gated_domain", broken_gate)
    layer = gated(compiled).layers[2]
    path = tmp_path / "periphery_fc2.v"
    path.write_text(emit_layer(layer))
    with pytest.raises(MismatchError, match="register 0x"):
        run_stream_tb(path, "periphery_fc2", _register_scenario(layer), tmp_path / "sim")
