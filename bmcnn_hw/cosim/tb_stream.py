"""Generic cocotb testbench for bmcnn-hw stream components: driver -> monitor -> scoreboard.

The scenario (JSON, path in ``$BMCNN_TB_SCENARIO``) comes from the golden model
(:mod:`bmcnn_hw.cosim.scenarios`)::

    {"fields": {"i": {field: [offset, width, signed], ...}, "o": {...}},
     "inputs": [field of i, ...], "outputs": [field of o, ...],
     "steps": [{"beat": [v, ...]} | {"write": [addr, value]} | {"read": [addr, expected]}
               | {"beat_with_write": [[v, ...], addr, value]}  (both at one rising edge)
               | {"reset": n_outputs_before} | {"idle": cycles}, ...],
     "expected": [[v | null, ...], ...] (null: a field the spec leaves undefined),
     "idle_prob": p, "stall_prob": q, "seed": s,
     "drain_cycles": c (optional: cycles the DUT may compute after its last input, default 100)}

The DUT has the stream ports of :mod:`bmcnn_hw.rtl.streams` (``i__valid``/``i__ready``/
``i__payload``, ``o__...``) and, optionally, a register bus (``bus__addr``/``wdata``/``we``/
``rdata``). Payload fields are packed into and unpacked from ``*__payload`` with ``fields``.
When ``$BMCNN_TB_OUTPUT`` is set, the monitored outputs are also written there (JSON).

Driver: valid/ready handshake with random idle cycles; register writes and read-backs
between beats; resets after the outputs so far have drained. Every reset offers a beat and
asserts that ``i__ready`` stays low and ``o__valid`` falls while ``rst`` is high.
Back-pressure: ``o__ready`` is low with probability ``stall_prob`` each cycle. Monitor:
records the output fields on every transfer. Scoreboard: compares with ``expected`` in order.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from bmcnn_hw.cosim.payload import pack, unpack


class Bench:
    """Driver, monitor and scoreboard state of one run."""

    def __init__(self, dut, scenario: dict):
        self.dut, self.sc = dut, scenario
        self.rng = random.Random(scenario.get("seed", 0))
        self.seen: list = []
        self.has_bus = hasattr(dut, "bus__we")
        self.fields = scenario.get("fields", {})

    async def reset(self) -> None:
        """Two cycles of reset with a beat offered: it must not be taken, and no result may be valid."""
        self.dut.rst.value = 1
        self.dut.i__payload.value = 0
        self.dut.i__valid.value = 1
        if self.has_bus:
            self.dut.bus__we.value, self.dut.bus__addr.value, self.dut.bus__wdata.value = 0, 0, 0
        for cycle in range(2):
            await ReadOnly()
            assert int(self.dut.i__ready.value) == 0, f"i__ready is high during reset (cycle {cycle})"
            await RisingEdge(self.dut.clk)
        await ReadOnly()
        assert int(self.dut.o__valid.value) == 0, "o__valid is high after reset"
        await RisingEdge(self.dut.clk)
        self.dut.i__valid.value = 0
        self.dut.rst.value = 0

    async def backpressure(self) -> None:
        while True:
            self.dut.o__ready.value = int(self.rng.random() >= self.sc.get("stall_prob", 0.0))
            await RisingEdge(self.dut.clk)

    async def monitor(self) -> None:
        while True:
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            if int(self.dut.rst.value) == 0 and int(self.dut.o__valid.value) and int(self.dut.o__ready.value):
                self.seen.append(unpack(self.fields["o"], self.sc["outputs"], int(self.dut.o__payload.value)))

    async def beat(self, values: list) -> None:
        while self.rng.random() < self.sc.get("idle_prob", 0.0):
            self.dut.i__valid.value = 0
            await RisingEdge(self.dut.clk)
        self.dut.i__payload.value = pack(self.fields["i"], self.sc["inputs"], values)
        self.dut.i__valid.value = 1
        while True:
            await ReadOnly()
            ready = int(self.dut.i__ready.value)
            await RisingEdge(self.dut.clk)
            if ready:
                break
        self.dut.i__valid.value = 0

    async def write(self, addr: int, value: int) -> None:
        self.dut.bus__addr.value, self.dut.bus__wdata.value, self.dut.bus__we.value = addr, value & 0xFFFFFFFF, 1
        await RisingEdge(self.dut.clk)
        self.dut.bus__we.value = 0

    async def beat_with_write(self, values: list, addr: int, value: int) -> None:
        """A beat and a register write taken at the same rising edge (the beat must be accepted then)."""
        self.dut.i__payload.value = pack(self.fields["i"], self.sc["inputs"], values)
        self.dut.i__valid.value = 1
        self.dut.bus__addr.value, self.dut.bus__wdata.value, self.dut.bus__we.value = addr, value & 0xFFFFFFFF, 1
        await ReadOnly()
        assert int(self.dut.i__ready.value), "beat_with_write: the beat was not accepted at the write's edge"
        await RisingEdge(self.dut.clk)
        self.dut.i__valid.value = 0
        self.dut.bus__we.value = 0

    async def read(self, addr: int, expected: int) -> None:
        self.dut.bus__addr.value = addr
        await RisingEdge(self.dut.clk)
        await ReadOnly()
        got = self.dut.bus__rdata.value.to_signed() if expected < 0 else int(self.dut.bus__rdata.value)
        assert got == expected, f"register 0x{addr:x}: read {got}, expected {expected}"
        await RisingEdge(self.dut.clk)

    async def drain(self, count: int) -> None:
        for _ in range(self.sc.get("drain_cycles", 100) + 10 * count):
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
        elif "beat_with_write" in step:
            await bench.beat_with_write(*step["beat_with_write"])
        elif "read" in step:
            await bench.read(*step["read"])
        elif "reset" in step:
            await bench.drain(step["reset"])
            await bench.reset()
        elif "idle" in step:
            for _ in range(step["idle"]):
                await RisingEdge(dut.clk)
    await bench.drain(len(scenario["expected"]))
    if os.environ.get("BMCNN_TB_OUTPUT"):  # the co-simulation feeds these to the next layer
        with open(os.environ["BMCNN_TB_OUTPUT"], "w") as handle:
            json.dump(bench.seen, handle)
    for k, (got, want) in enumerate(zip(bench.seen, scenario["expected"], strict=False)):  # count checked below
        names = scenario["outputs"]
        same = all(w is None or g == w for g, w in zip(got, want, strict=True))  # None: undefined by the spec
        assert same, (f"output {k}: RTL {dict(zip(names, got, strict=True))}, "
                      f"golden {dict(zip(names, want, strict=True))}")
    expected = len(scenario["expected"])
    assert len(bench.seen) == expected, f"{len(bench.seen)} outputs, expected {expected}"
