"""MAC engine of a digital fixed-point layer: input buffer, weight ROM, ``lanes`` multiply-accumulate units.

A digital layer computes ``acc = sum_r x[r] * w[r, c]`` with unsigned ``input_bits``-bit inputs
and signed ``weight_bits``-bit weight codes, exactly like the golden model's integer matmul. The
engine takes the inputs of one *frame* (the im2col vectors of one pool window, member by member,
or the one input vector of an fc layer), then for each group of ``lanes`` output channels runs
every member's dot product, one input element per cycle on all lanes at once, and hands each
channel's sum on as one periphery beat (``first``, ``last`` and plane 0): the periphery adds the
tuning correction and applies the threshold and flip (or the score affine) exactly as for a
crossbar layer, and the pool or argmax behind it is unchanged.

Cycles per frame, with the producer and the consumer never stalling (:func:`frame_cycles`):
``F + G * (F + lanes * members)`` for ``F = members * rows`` input elements and
``G = channels / lanes`` channel groups (load, multiply-accumulate, hand on).
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Array, Module, Mux, ResetSignal, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..artefact import CompiledLayer
from ..errors import ConfigError
from .regs import DATA_WIDTH
from .streams import beat_layout, mac_input_layout, stream_signature

LOAD, MAC, HAND_ON = 1, 2, 3
"""Engine states: take a frame's inputs, multiply-accumulate, hand the sums to the periphery."""


def _counter(count: int, name: str) -> Signal:
    """A counter over ``count`` values (at least one bit wide)."""
    return Signal(range(max(count, 2)), name=name)


def frame_members(layer: CompiledLayer) -> int:
    """Im2col vectors per frame: a conv layer's pool window (pool**2), else 1."""
    return layer.pool * layer.pool if layer.kind == "conv" else 1


def frame_elements(layer: CompiledLayer) -> int:
    """Input elements of one frame: members x fan-in."""
    return frame_members(layer) * layer.rows


def frames_per_image(layer: CompiledLayer) -> int:
    """Frames of one image: pooled positions of a conv layer, 1 for fc."""
    if layer.kind != "conv":
        return 1
    h, w = layer.conv_hw
    return (h // layer.pool) * (w // layer.pool)


def frame_cycles(rows: int, channels: int, lanes: int, members: int) -> int:
    """Clock cycles of one frame without stalls: load, multiply-accumulate, hand on."""
    elements = members * rows
    return elements + (channels // lanes) * (elements + lanes * members)


def layer_cycles(layer: CompiledLayer) -> int:
    """Clock cycles of one image through a digital layer's engine (no stalls)."""
    members = frame_members(layer)
    return frames_per_image(layer) * frame_cycles(layer.rows, layer.cols, layer.mac_lanes, members)


class MacEngine(wiring.Component):
    """``lanes`` multiply-accumulate units over a weight ROM, fed one input element per beat.

    Args:
        weight: (rows, channels) signed integer weight codes (im2col row order for conv).
        weight_bits: width of a signed weight code.
        input_bits: width of an unsigned input element.
        lanes: MAC units; must divide ``channels``.
        members: im2col vectors per frame (a pool window's positions, else 1).
        acc_width: accumulator width; must hold every dot product (checked against the weights).
        close_on_last_channel: raise ``group_last`` on the last channel (output layer: an
            image's classes) instead of on each channel's last member (pool windows).
        name: the layer, for error messages.

    Ports:
        i: input elements (:func:`~bmcnn_hw.rtl.streams.mac_input_layout`), a frame's last one
            flagged ``last``; taken only while the engine loads.
        o: one periphery beat per (channel, member) (:func:`~bmcnn_hw.rtl.streams.beat_layout`
            with ``acc_width``-bit codes and one plane), channel by channel, a channel's members
            in turn.
        error: strobe when ``last`` comes before or after the frame's size (the frame is then
            computed on what arrived; the periphery's ``error`` register records it).
    """

    def __init__(self, *, weight, weight_bits: int, input_bits: int, lanes: int, members: int, acc_width: int,
                 close_on_last_channel: bool = False, name: str = "mac"):
        weight = np.asarray(weight, dtype=np.int64)
        if weight.ndim != 2 or weight.size == 0:
            raise ConfigError(f"layer {name}: the MAC engine needs a non-empty (rows, channels) weight matrix")
        rows, channels = weight.shape
        for label, value in (("weight_bits", weight_bits), ("input_bits", input_bits), ("lanes", lanes),
                             ("members", members), ("acc_width", acc_width)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"layer {name}: {label} must be a positive integer, not {value!r}")
        if members * rows < 2:
            raise ConfigError(f"layer {name}: a MAC frame needs at least two input elements (fan-in x pool "
                              f"window), not {members * rows}")
        if channels % lanes:
            raise ConfigError(f"layer {name}: {lanes} MAC lanes do not divide its {channels} output channels")
        bound = 1 << (weight_bits - 1)
        if weight.min() < -bound or weight.max() >= bound:
            raise ConfigError(f"layer {name}: weight codes outside the signed {weight_bits}-bit range")
        peak = (2 ** input_bits - 1) * max(int(np.clip(weight, 0, None).sum(axis=0).max()),
                                           int(-np.clip(weight, None, 0).sum(axis=0).min()))
        if acc_width > DATA_WIDTH:
            raise ConfigError(f"layer {name}: a {acc_width}-bit accumulator does not fit the RTL's "
                              f"{DATA_WIDTH}-bit registers")
        if peak.bit_length() + 1 > acc_width:
            raise ConfigError(f"layer {name}: its dot products reach +-{peak}, more than a {acc_width}-bit "
                              f"accumulator holds")
        self.weight, self.weight_bits, self.input_bits = weight, weight_bits, input_bits
        self.rows, self.channels, self.lanes, self.members = rows, channels, lanes, members
        self.acc_width, self.close_on_last_channel = acc_width, close_on_last_channel
        super().__init__({
            "i": In(stream_signature(mac_input_layout(input_bits))),
            "o": Out(stream_signature(beat_layout(acc_width, 1, channels))),
            "error": Out(1),
        })

    @property
    def frame(self) -> int:
        """Input elements of one frame (members x rows)."""
        return self.members * self.rows

    @property
    def groups(self) -> int:
        """Channel groups, one pass over the frame each."""
        return self.channels // self.lanes

    def rom_words(self) -> list[int]:
        """ROM word ``g * rows + r``: the weights of row ``r`` for the lanes of group ``g``, lane 0 lowest."""
        mask, width = (1 << self.weight_bits) - 1, self.weight_bits
        words = []
        for g in range(self.groups):
            for r in range(self.rows):
                codes = self.weight[r, g * self.lanes:(g + 1) * self.lanes]
                words.append(sum((int(c) & mask) << (lane * width) for lane, c in enumerate(codes)))
        return words

    def elaborate(self, platform):
        """Input buffer, weight ROM, lane accumulators, result registers and the load/MAC/hand-on FSM."""
        m = Module()
        frame, lanes, members, width = self.frame, self.lanes, self.members, self.acc_width
        m.submodules.inputs = buffer = Memory(shape=unsigned(self.input_bits), depth=frame, init=[])
        m.submodules.weights = rom = Memory(shape=unsigned(lanes * self.weight_bits),
                                            depth=self.groups * self.rows, init=self.rom_words())
        # Registered reads, as block RAMs have them, and not transparent: an asynchronous read (or a
        # transparent one, which Yosys writes as one) of a word written while its address stays is
        # not re-evaluated by Icarus, which keeps the old value. A frame's element 0 is never
        # written in the cycle it is read (frames have at least two elements).
        store = buffer.write_port()
        element, row_weights = buffer.read_port(), rom.read_port()
        count, xaddr = _counter(frame, "count"), _counter(frame, "xaddr")
        row, member = _counter(self.rows, "row"), _counter(members, "member")
        group, wbase = _counter(self.groups, "group"), _counter(self.groups * self.rows, "wbase")
        chbase = _counter(self.channels, "chbase")
        out_index, out_lane, out_member = _counter(lanes * members, "out_index"), _counter(lanes, "out_lane"), \
            _counter(members, "out_member")
        accs = [Signal(signed(width), name=f"acc_{lane}") for lane in range(lanes)]
        sums = [Signal(signed(width), name=f"sum_{lane}") for lane in range(lanes)]
        results = [Signal(signed(width), name=f"result_{lane}_{k}") for lane in range(lanes) for k in range(members)]
        for lane in range(lanes):
            code = row_weights.data[lane * self.weight_bits:(lane + 1) * self.weight_bits].as_signed()
            m.d.comb += sums[lane].eq(accs[lane] + element.data * code)
        beat = self.o.payload
        if self.close_on_last_channel:
            closes = (group == self.groups - 1) & (out_lane == lanes - 1)
        else:
            closes = out_member == members - 1
        m.d.comb += [beat.code.eq(Array(results)[out_index]), beat.channel.eq(chbase + out_lane),
                     beat.first.eq(1), beat.last.eq(1), beat.group_last.eq(closes)]
        # State codes start at 1: Verilog of an "== 0" test is a logical NOT that lint flags.
        state = Signal(range(4), init=LOAD, name="state")
        self._next_reads(m, state, element, row_weights, xaddr, row, group, wbase)
        m.d.comb += self.o.valid.eq(state == HAND_ON)
        self._load(m, state, store, count, [xaddr, row, member, group, wbase, chbase, *accs])
        with m.Switch(state):
            with m.Case(HAND_ON):
                self._hand_on(m, state, out_index, out_lane, out_member, group, wbase, chbase, xaddr, member)
            with m.Case(MAC):
                m.d.sync += [xaddr.eq(xaddr + 1), row.eq(row + 1), *(a.eq(s) for a, s in zip(accs, sums, strict=True))]
                with m.If(row == self.rows - 1):
                    m.d.sync += [row.eq(0), *(a.eq(0) for a in accs)]
                    for k in range(members):
                        with m.If(member == k if k else ~member.any()):
                            m.d.sync += [results[lane * members + k].eq(sums[lane]) for lane in range(lanes)]
                    with m.If(member == members - 1):
                        m.d.sync += [out_index.eq(0), out_lane.eq(0), out_member.eq(0), state.eq(HAND_ON)]
                    with m.Else():
                        m.d.sync += member.eq(member + 1)

        return m

    def _next_reads(self, m: Module, state: Signal, element, row_weights, xaddr, row, group, wbase) -> None:
        """Addresses of the registered reads: the input element and weight row of the next MAC
        cycle (element 0 and the group's row 0 while loading or handing on)."""
        frame = self.frame
        mac, next_row = state == MAC, Mux(row == self.rows - 1, 0, row + 1)
        next_base = Mux(group == self.groups - 1, 0, wbase + self.rows)
        m.d.comb += [element.addr.eq(Mux(mac & (xaddr != frame - 1), xaddr + 1, 0)),
                     row_weights.addr.eq(Mux(mac, wbase + next_row, Mux(state == HAND_ON, next_base, 0)))]

    def _load(self, m: Module, state: Signal, store, count: Signal, restart: list) -> None:
        """LOAD: take one element per beat into the buffer; the frame ends at ``last`` or when full.

        The combinational outputs are plain assignments outside the state switch: Verilog
        ``always @*`` blocks that Icarus evaluates before the registers' initial values would
        keep the write address unknown until ``count`` first changes."""
        accept, full = Signal(), count == self.frame - 1
        m.d.comb += [self.i.ready.eq((state == LOAD) & ~ResetSignal()), accept.eq(self.i.valid & self.i.ready),
                     store.addr.eq(count), store.data.eq(self.i.payload.value), store.en.eq(accept),
                     self.error.eq(accept & (self.i.payload.last ^ full))]
        with m.If(accept):
            with m.If(self.i.payload.last | full):
                m.d.sync += [count.eq(0), state.eq(MAC), *(signal.eq(0) for signal in restart)]
            with m.Else():
                m.d.sync += count.eq(count + 1)

    def _hand_on(self, m: Module, state, out_index, out_lane, out_member, group, wbase, chbase, xaddr,
                 member) -> None:
        """HAND_ON: one beat per (lane, member) as the periphery takes them; then the next group or LOAD."""
        with m.If(self.o.ready):
            m.d.sync += out_index.eq(out_index + 1)
            with m.If(out_member == self.members - 1):
                m.d.sync += [out_member.eq(0), out_lane.eq(out_lane + 1)]
            with m.Else():
                m.d.sync += out_member.eq(out_member + 1)
            with m.If(out_index == self.lanes * self.members - 1):
                with m.If(group == self.groups - 1):
                    m.d.sync += state.eq(LOAD)
                with m.Else():
                    m.d.sync += [group.eq(group + 1), wbase.eq(wbase + self.rows), chbase.eq(chbase + self.lanes),
                                 xaddr.eq(0), member.eq(0), state.eq(MAC)]


def mac_engine_for(layer: CompiledLayer) -> MacEngine:
    """The MAC engine of a digital CompiledLayer.

    Raises:
        ConfigError: the layer is not digital, its ``mac_lanes`` do not divide its channels, or
            its dot products do not fit the RTL's accumulator (names the layer).
    """
    if not layer.digital:
        raise ConfigError(f"layer {layer.name}: a crossbar layer has no MAC engine")
    if layer.acc_width > DATA_WIDTH:
        raise ConfigError(f"layer {layer.name}: {layer.weight_bits}-bit fixed-point weights x {layer.input_bits}-bit "
                          f"inputs over {layer.rows} rows need a {layer.acc_width}-bit accumulator; the RTL's "
                          f"accumulator, thresholds and tuning registers hold at most {DATA_WIDTH} bits (use a "
                          f"narrower weight_format)")
    if layer.mac_lanes < 1:
        raise ConfigError(f"layer {layer.name}: mac_lanes must be a positive integer in the build, not "
                          f"{layer.mac_lanes!r}; recompile the checkpoint")
    return MacEngine(weight=layer.weight, weight_bits=layer.weight_bits, input_bits=layer.input_bits,
                     lanes=layer.mac_lanes, members=frame_members(layer), acc_width=layer.acc_width,
                     close_on_last_channel=layer.is_output, name=layer.name)
