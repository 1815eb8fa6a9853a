"""Generic cocotb testbench for bmcnn-hw stream components: driver -> monitor -> scoreboard.

The scenario (JSON, path in ``$BMCNN_TB_SCENARIO``) comes from the golden model
(:mod:`bmcnn_hw.cosim.scenarios`)::

    {"inputs": [port, ...], "outputs": [port, ...], "signed": [port, ...],
     "steps": [{"beat": [v, ...]} | {"write": [addr, value]} | {"read": [addr, expected]}
               | {"reset": n_outputs_before}, ...],
     "expected": [[v, ...], ...], "idle_prob": p, "stall_prob": q, "seed": s}

When ``$BMCNN_TB_OUTPUT`` is set, the monitored outputs are also written there (JSON).

Driver: ``in_valid``/``in_ready`` handshake with random idle cycles; register writes and
read-backs between beats; resets after the outputs so far have drained. Back-pressure:
``out_ready`` is low with probability ``stall_prob`` each cycle. Monitor: records the
output ports on every transfer. Scoreboard: compares with ``expected`` in order.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge


def _value(handle, signed: bool) -> int:
    return handle.value.to_signed() if signed else int(handle.value)


class Bench:
    """Driver, monitor and scoreboard state of one run."""

    def __init__(self, dut, scenario: dict):
        self.dut, self.sc = dut, scenario
        self.rng = random.Random(scenario.get("seed", 0))
        self.seen: list = []
        self.has_bus = hasattr(dut, "reg_we")

    async def reset(self) -> None:
        self.dut.rst.value = 1
        self.dut.in_valid.value = 0
        if self.has_bus:
            self.dut.reg_we.value = 0
        for _ in range(2):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0

    async def backpressure(self) -> None:
        while True:
            self.dut.out_ready.value = int(self.rng.random() >= self.sc.get("stall_prob", 0.0))
            await RisingEdge(self.dut.clk)

    async def monitor(self) -> None:
        signed = set(self.sc.get("signed", []))
        while True:
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            if int(self.dut.rst.value) == 0 and int(self.dut.out_valid.value) and int(self.dut.out_ready.value):
                self.seen.append([_value(getattr(self.dut, p), p in signed) for p in self.sc["outputs"]])

    async def beat(self, values: list) -> None:
        while self.rng.random() < self.sc.get("idle_prob", 0.0):
            self.dut.in_valid.value = 0
            await RisingEdge(self.dut.clk)
        for port, value in zip(self.sc["inputs"], values, strict=True):
            getattr(self.dut, port).value = value
        self.dut.in_valid.value = 1
        while True:
            await ReadOnly()
            ready = int(self.dut.in_ready.value)
            await RisingEdge(self.dut.clk)
            if ready:
                break
        self.dut.in_valid.value = 0

    async def write(self, addr: int, value: int) -> None:
        self.dut.reg_addr.value, self.dut.reg_wdata.value, self.dut.reg_we.value = addr, value & 0xFFFFFFFF, 1
        await RisingEdge(self.dut.clk)
        self.dut.reg_we.value = 0

    async def read(self, addr: int, expected: int) -> None:
        self.dut.reg_addr.value = addr
        await RisingEdge(self.dut.clk)
        await ReadOnly()
        got = self.dut.reg_rdata.value.to_signed() if expected < 0 else int(self.dut.reg_rdata.value)
        assert got == expected, f"register 0x{addr:x}: read {got}, expected {expected}"
        await RisingEdge(self.dut.clk)

    async def drain(self, count: int) -> None:
        for _ in range(100 + 10 * count):
            if len(self.seen) >= count:
                return
            await RisingEdge(self.dut.clk)
        raise AssertionError(f"only {len(self.seen)} of {count} outputs arrived")


@cocotb.test()
async def stream_matches_golden(dut):
    """Every output of the component equals the golden model's, bit for bit."""
    with open(os.environ["BMCNN_TB_SCENARIO"]) as handle:
        scenario = json.load(handle)
    bench = Bench(dut, scenario)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    await bench.reset()
    cocotb.start_soon(bench.backpressure())
    cocotb.start_soon(bench.monitor())
    for step in scenario["steps"]:
        if "beat" in step:
            await bench.beat(step["beat"])
        elif "write" in step:
            await bench.write(*step["write"])
        elif "read" in step:
            await bench.read(*step["read"])
        elif "reset" in step:
            await bench.drain(step["reset"])
            await bench.reset()
    await bench.drain(len(scenario["expected"]))
    if os.environ.get("BMCNN_TB_OUTPUT"):  # the co-simulation feeds these to the next layer
        with open(os.environ["BMCNN_TB_OUTPUT"], "w") as handle:
            json.dump(bench.seen, handle)
    for k, (got, want) in enumerate(zip(bench.seen, scenario["expected"], strict=False)):  # count checked below
        names = scenario["outputs"]
        assert got == want, (f"output {k}: RTL {dict(zip(names, got, strict=True))}, "
                             f"golden {dict(zip(names, want, strict=True))}")
    expected = len(scenario["expected"])
    assert len(bench.seen) == expected, f"{len(bench.seen)} outputs, expected {expected}"
