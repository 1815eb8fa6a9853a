"""cocotb testbench of a layer periphery: driver -> monitor -> scoreboard.

Stimulus and expected results come from the golden model through a JSON file
named by ``$BMCNN_TB_VECTORS``:
``{"beats": [[code, plane, channel, first, last], ...],
   "expected": [[channel, acc, act], ...], "idle_seed": int, "idle_prob": float}``.
Random idle cycles (``in_valid`` low) are inserted with ``idle_seed``.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge


def _load_vectors() -> dict:
    with open(os.environ["BMCNN_TB_VECTORS"]) as handle:
        return json.load(handle)


async def _reset(dut) -> None:
    dut.rst.value = 1
    dut.in_valid.value = 0
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


async def _drive(dut, beats: list, idle_prob: float, rng: random.Random) -> None:
    """Driver: one beat per cycle, random idle cycles in between."""
    for code, plane, channel, first, last in beats:
        while rng.random() < idle_prob:
            dut.in_valid.value = 0
            await RisingEdge(dut.clk)
        dut.in_valid.value = 1
        dut.in_code.value = code
        dut.in_plane.value = plane
        dut.in_channel.value = channel
        dut.in_first.value = first
        dut.in_last.value = last
        await RisingEdge(dut.clk)
    dut.in_valid.value = 0


async def _monitor(dut, seen: list, count: int) -> None:
    """Monitor: record (channel, acc, act) on every cycle with out_valid."""
    while len(seen) < count:
        await RisingEdge(dut.clk)
        await ReadOnly()
        if int(dut.out_valid.value):
            seen.append([int(dut.out_channel.value), dut.out_acc.value.to_signed(), int(dut.out_act.value)])


@cocotb.test()
async def periphery_matches_golden(dut):
    """Every output of the periphery equals the golden model's, bit for bit."""
    vectors = _load_vectors()
    expected = vectors["expected"]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    await _reset(dut)
    seen: list = []
    monitor = cocotb.start_soon(_monitor(dut, seen, len(expected)))
    await _drive(dut, vectors["beats"], vectors.get("idle_prob", 0.0), random.Random(vectors.get("idle_seed", 0)))
    for _ in range(4):
        if len(seen) >= len(expected):
            break
        await RisingEdge(dut.clk)
    monitor.cancel()
    assert len(seen) == len(expected), f"got {len(seen)} outputs, expected {len(expected)}"
    for k, (got, want) in enumerate(zip(seen, expected)):
        # Scoreboard: the first difference names the output index and both values.
        assert got == want, f"output {k}: RTL (channel, acc, act) = {got}, golden = {want}"
