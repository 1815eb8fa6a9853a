"""RTL units under Amaranth's own simulator (``amaranth.sim``): no external tool, fast tier.

The periphery of a random layer is driven through its register bus and its beat stream: the
tuning register encoding round-trips through the bus (two's complement in a 32-bit word, read
back sign-extended), and a channel's bit-serial beats come out as the shift-added sum plus the
correction, thresholded with the written theta and flip.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from amaranth.sim import Simulator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bmcnn_hw.artefact import CompiledLayer, Tiling
from bmcnn_hw.compile.tile import tile
from bmcnn_hw.config import ReadoutParams
from bmcnn_hw.cosim.scenarios import beat_order, pack_words
from bmcnn_hw.rtl.periphery import ERROR_BITS, layer_registers, periphery_code_bits, periphery_for_layer
from bmcnn_hw.rtl.pool import LaneMaxPool
from bmcnn_hw.rtl.regs import DATA_WIDTH
from tests.helpers import hidden_fc_model

WORD = (1 << DATA_WIDTH) - 1


def _register_values(reg) -> st.SearchStrategy[int]:
    """Every value a register holds: signed or unsigned over its full width."""
    if reg.signed:
        return st.integers(-(1 << (reg.width - 1)), (1 << (reg.width - 1)) - 1)
    return st.integers(0, (1 << reg.width) - 1)


def one_column_layer(rows, cols, adc_bits, planes, n_row_tiles, bipolar):
    """A tiled fc layer of all +1 weights: ``n_row_tiles`` tiles of ``rows`` rows, ``planes``-bit inputs."""
    weight = np.ones((rows * n_row_tiles, cols), dtype=np.int8)
    peak = (2 ** planes - 1) * rows * n_row_tiles
    return CompiledLayer(name="l", kind="fc", in_shape=(rows * n_row_tiles,), out_shape=(cols,), kernel=0, pool=1,
                         input_bits=planes, weight=weight, acc_min=-peak, acc_max=peak,
                         theta=np.zeros(cols, dtype=np.int64), flip=np.zeros(cols, dtype=np.uint8),
                         tiling=Tiling(rows, cols, n_row_tiles, 1, 0, 0), adc_bits=adc_bits, bipolar=bipolar)


async def _write(ctx, bus, addr: int, value: int) -> None:
    ctx.set(bus.addr, addr)
    ctx.set(bus.wdata, value & WORD)
    ctx.set(bus.we, 1)
    await ctx.tick()
    ctx.set(bus.we, 0)


async def _read(ctx, bus, addr: int) -> int:
    ctx.set(bus.addr, addr)
    await ctx.tick()
    return int(ctx.get(bus.rdata))


async def _beat(ctx, dut, code: int, plane: int, channel: int, first: int, last: int) -> None:
    payload = dut.i.payload
    for name, value in (("code", code), ("plane", plane), ("channel", channel), ("first", first),
                        ("last", last), ("group_last", 0)):
        ctx.set(getattr(payload, name), value)
    ctx.set(dut.i.valid, 1)
    await ctx.tick().until(dut.i.ready)
    ctx.set(dut.i.valid, 0)


def _run(dut, bench) -> None:
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.integers(2, 40), cols=st.integers(1, 5), input_bits=st.integers(1, 4), tile_rows=st.integers(2, 16),
       seed=st.integers(0, 2**16), data=st.data())
def test_tuning_writes_round_trip_and_beats_shift_add_into_the_threshold(rows, cols, input_bits, tile_rows, seed,
                                                                         data):
    """Random signed tune_offset, theta and flip values (full register range) written through
    the bus read back sign-extended; the channel's beats, twice (random codes over every plane and
    row tile, in beat order), give acc = sum(code << plane) + tune_offset and act = (acc >= theta) ^ flip
    each time (nothing of the first sum is left in the second)."""
    layer = hidden_fc_model(rows, cols, input_bits, tile_rows, seed).layers[0]
    regs = layer_registers(layer)
    channel = data.draw(st.integers(0, cols - 1), "channel")
    values = {name: data.draw(_register_values(regs[name]), name) for name in ("tune_offset", "theta", "flip")}
    bits = periphery_code_bits(layer)
    order = beat_order(layer)
    code = st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    frames = data.draw(st.lists(st.lists(code, min_size=len(order), max_size=len(order)), min_size=2, max_size=2),
                       "codes of two results of the channel")
    seen: dict = {}
    dut = periphery_for_layer(layer)  # after the draws: a draw that ends the example leaves none unused

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for name, value in values.items():
            await _write(ctx, dut.bus, regs[name].offset + channel, value)
            word = await _read(ctx, dut.bus, regs[name].offset + channel)
            seen[name] = word
        for frame in frames:
            for k, ((plane, _), code) in enumerate(zip(order, frame, strict=True)):
                await _beat(ctx, dut, code & ((1 << bits) - 1), plane, channel, int(k == 0), int(k == len(order) - 1))
            await ctx.tick().until(dut.o.valid)
            out = dut.o.payload
            seen.setdefault("results", []).append((int(ctx.get(out.channel)), int(ctx.get(out.acc)),
                                                   int(ctx.get(out.act))))

    _run(dut, bench)
    assert {k: seen[k] for k in values} == {k: v & WORD for k, v in values.items()}  # sign-extended words
    expected = []
    for frame in frames:
        acc = sum(code << plane for (plane, _), code in zip(order, frame, strict=True)) + values["tune_offset"]
        expected.append((channel, acc, int((acc >= values["theta"]) ^ values["flip"])))
    assert seen["results"] == expected


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.integers(2, 40), cols=st.integers(2, 5), clock_gating=st.booleans(), seed=st.integers(0, 2**16),
       data=st.data())
def test_hardwired_thresholds_ignore_writes_and_threshold_with_the_compiled_values(rows, cols, clock_gating, seed,
                                                                                   data):
    """With ``hardwired_thresholds`` theta and flip are read-only: writes to them change nothing,
    they read back the compiled values, and a channel thresholds its sum plus the written
    tune_offset against the compiled theta and flip; tune_offset stays read-write."""
    layer = dataclasses.replace(hidden_fc_model(rows, cols, 1, 64, seed).layers[0], hardwired_thresholds=True,
                                clock_gating=clock_gating)
    regs = layer_registers(layer)
    assert regs["theta"].access == regs["flip"].access == "ro" and regs["tune_offset"].access == "rw"
    channel = data.draw(st.integers(0, cols - 1), "channel")
    writes = {name: data.draw(_register_values(regs[name]), name) for name in ("theta", "flip", "tune_offset")}
    codes = data.draw(st.lists(st.integers(-rows, rows), min_size=1, max_size=1), "code of the one beat")
    seen: dict = {}
    dut = periphery_for_layer(layer)

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for name, value in writes.items():
            await _write(ctx, dut.bus, regs[name].offset + channel, value)
            seen[name] = await _read(ctx, dut.bus, regs[name].offset + channel)
        bits = periphery_code_bits(layer)
        await _beat(ctx, dut, codes[0] & ((1 << bits) - 1), 0, channel, 1, 1)
        await ctx.tick().until(dut.o.valid)
        seen["result"] = (int(ctx.get(dut.o.payload.acc)), int(ctx.get(dut.o.payload.act)))

    _run(dut, bench)
    theta, flip = int(layer.theta[channel]), int(layer.flip[channel])
    assert seen["theta"] == theta & WORD and seen["flip"] == flip  # the compiled values, whatever was written
    assert seen["tune_offset"] == writes["tune_offset"] & WORD
    acc = codes[0] + writes["tune_offset"]
    assert seen["result"] == (acc, int((acc >= theta) ^ flip))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.integers(1, 512), adc_bits=st.integers(2, 12), planes=st.integers(1, 8),
       n_row_tiles=st.integers(1, 12), bipolar=st.booleans())
def test_the_accumulator_holds_every_code_sequence_at_its_extremes(rows, adc_bits, planes, n_row_tiles, bipolar):
    """A channel whose every beat carries the lowest code, then one whose every beat carries the
    highest, come out as the exact sum (bipolar: (sum + offset) >> 1): acc_width never wraps."""
    layer = one_column_layer(rows, 1, adc_bits, planes, n_row_tiles, bipolar)
    order = beat_order(layer)
    extremes = (-(1 << (adc_bits - 1)), (1 << (adc_bits - 1)) - 1)
    offset = (2 ** planes - 1) * rows * n_row_tiles if bipolar else 0
    dut = periphery_for_layer(layer)
    seen = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for code in extremes:
            for k, (plane, _) in enumerate(order):
                await _beat(ctx, dut, code & ((1 << adc_bits) - 1), plane, 0, int(k == 0), int(k == len(order) - 1))
            await ctx.tick().until(dut.o.valid)
            seen.append(int(ctx.get(dut.o.payload.acc)))

    _run(dut, bench)
    exact = [sum(code << plane for plane, _ in order) for code in extremes]
    assert seen == [(total + offset) >> 1 if bipolar else total for total in exact]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.integers(2, 30), cols=st.integers(1, 6), clock_gating=st.booleans(), seed=st.integers(0, 2**16),
       data=st.data())
def test_a_sense_periphery_drives_its_references_and_flips_every_lane(rows, cols, clock_gating, seed, data):
    """A sense layer's periphery: after random theta and tune_offset writes, every channel's
    ``cmp_ref`` holds theta - tune_offset (what its comparator's DAC is set to), and each read's
    decision word comes out in one result as ``act = decisions XOR flips`` with ``acc`` = the
    decisions and ``last`` = the beat's ``group_last`` (ungated and clock-gated)."""
    model = hidden_fc_model(rows, cols, 1, 64, seed)
    hardware = dataclasses.replace(model.hardware, readout=ReadoutParams(sense_layers="fc0"))
    layer = tile(dataclasses.replace(model, hardware=hardware)).layers[0]
    layer = dataclasses.replace(layer, clock_gating=clock_gating)
    assert layer.sense and periphery_code_bits(layer) == 1
    regs = layer_registers(layer)
    writes = {name: [data.draw(_register_values(regs[name]), f"{name}[{c}]") for c in range(cols)]
              for name in ("theta", "tune_offset", "flip")}
    reads = data.draw(st.lists(st.tuples(st.integers(0, 2 ** cols - 1), st.integers(0, 1)), min_size=1, max_size=8),
                      "(decision word, group_last) beats")
    seen: dict = {"results": []}
    dut = periphery_for_layer(layer)

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for name, values in writes.items():
            for c, value in enumerate(values):
                await _write(ctx, dut.bus, regs[name].offset + c, value)
        seen["ref"] = [int(ctx.get(dut.cmp_ref[c])) for c in range(cols)]
        for word, group_last in reads:
            ctx.set(dut.i.payload.code, word)
            ctx.set(dut.i.payload.group_last, group_last)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
            await ctx.tick().until(dut.o.valid)
            out = dut.o.payload
            seen["results"].append((int(ctx.get(out.acc)), int(ctx.get(out.act)), int(ctx.get(out.last))))

    _run(dut, bench)
    flips = sum(f << c for c, f in enumerate(writes["flip"]))
    assert seen["ref"] == [t - o for t, o in zip(writes["theta"], writes["tune_offset"], strict=True)]
    assert seen["results"] == [(word, word ^ flips, last) for word, last in reads]


@pytest.mark.parametrize("clock_gating", [False, True])
def test_rdata_follows_the_register_it_shows_while_the_address_is_held(clock_gating):
    """``rdata`` one cycle after the register it shows changes, with the address held all along:
    the error bit a stray beat sets, its write-1-to-clear, and a tuning write (ungated and
    clock-gated peripheries)."""
    layer = hidden_fc_model(12, 3, 1, 16, 0).layers[0]
    layer = dataclasses.replace(layer, clock_gating=clock_gating)
    regs = layer_registers(layer)
    dut = periphery_for_layer(layer)
    seen: list[int] = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.bus.addr, regs["error"].offset)
        for _ in range(3):
            await ctx.tick()
        seen.append(int(ctx.get(dut.bus.rdata)))  # 0: no error yet
        await _beat(ctx, dut, 0, 0, 0, 0, 1)  # no `first`: sets the frame bit
        await ctx.tick()
        seen.append(int(ctx.get(dut.bus.rdata)))
        await _write(ctx, dut.bus, regs["error"].offset, WORD)  # clear every bit, address unchanged
        await ctx.tick()
        seen.append(int(ctx.get(dut.bus.rdata)))
        ctx.set(dut.bus.addr, regs["tune_offset"].offset)
        await ctx.tick().repeat(2)
        seen.append(int(ctx.get(dut.bus.rdata)))
        await _write(ctx, dut.bus, regs["tune_offset"].offset, 7)
        await ctx.tick()
        seen.append(int(ctx.get(dut.bus.rdata)))

    _run(dut, bench)
    assert seen == [0, 1 << ERROR_BITS["frame"][0], 0, 0, 7]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(group=st.integers(1, 5), lanes=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_the_lane_pool_ors_each_window_under_back_pressure(group, lanes, seed):
    """:class:`LaneMaxPool` gives the OR of each window's words, once per window, with the
    output held while ``o.ready`` is low (one register collects and offers the word); a window
    closed one item early still comes out and strobes ``error``."""
    rng = np.random.default_rng(seed)
    windows = [rng.integers(0, 2, (group, lanes)) * (rng.random((group, lanes)) < rng.choice([0.1, 0.5]))
               for _ in range(6)]
    short = max(1, group - 1)  # a last window closed early (the same length when group is 1)
    windows.append(rng.integers(0, 2, (short, lanes)))
    words = [[int(pack_words(member)) for member in window] for window in windows]
    dut = LaneMaxPool(group=group, lanes=lanes)
    stalls = np.random.default_rng(seed + 1)
    seen: dict = {"out": [], "errors": 0}

    async def consumer(ctx):  # random back-pressure, a new draw every cycle; records every transfer
        ctx.set(dut.o.ready, 0)
        async for _, _, valid, ready, bits, error in ctx.tick().sample(
                dut.o.valid, dut.o.ready, dut.o.payload.bits, dut.error):
            seen["errors"] += int(error)
            if valid and ready:
                seen["out"].append(int(bits))
            ctx.set(dut.o.ready, int(stalls.random() < 0.6))

    async def bench(ctx):
        for window in words:
            for k, word in enumerate(window):
                ctx.set(dut.i.payload.bits, word)
                ctx.set(dut.i.payload.last, int(k == len(window) - 1))
                ctx.set(dut.i.valid, 1)
                await ctx.tick().until(dut.i.ready)
                ctx.set(dut.i.valid, 0)
        for _ in range(40):  # the last window drains through the random stalls
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_process(consumer)  # processes run in the background
    sim.add_testbench(bench)
    sim.run()
    expected = [int(np.bitwise_or.reduce(np.asarray(w, dtype=np.uint64))) for w in words]
    assert seen["out"] == expected
    assert seen["errors"] == (1 if short != group else 0)
