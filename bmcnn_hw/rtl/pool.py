"""Binary max-pool: the OR of each window of ``group`` activation bits (or words), ended by ``last``."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..errors import ConfigError
from .streams import activation_layout, activation_word_layout, stage_handshake, stream_signature


class BinaryMaxPool(wiring.Component):
    """Max-pool over {0, 1} activations (= OR), one window per ``group`` input items.

    The producer sends a window's members consecutively (same channel) and marks the last
    one ``last``; the window's OR and the channel of its last member go out then. A window
    whose ``last`` comes after more or fewer than ``group`` items is still emitted at its
    ``last`` (the pool re-synchronises) and raises the ``error`` strobe for one cycle.

    Ports:
        i: activation stream (bit, channel, last); o: pooled stream (bit, channel).
        error: framing-error strobe (the periphery's sticky ``error`` register records it).
    """

    def __init__(self, *, group: int, channel_width: int):
        if not isinstance(group, int) or group < 1:
            raise ConfigError(f"pool group must be a positive integer, not {group!r}")
        if not isinstance(channel_width, int) or channel_width < 1:
            raise ConfigError(f"channel_width must be a positive integer, not {channel_width!r}")
        self.group = group
        super().__init__({
            "i": In(stream_signature(activation_layout(channel_width, last=True))),
            "o": Out(stream_signature(activation_layout(channel_width))),
            "error": Out(1),
        })

    def elaborate(self, platform):
        """Counter, running OR and output register."""
        m = Module()
        item = self.i.payload
        count = Signal(range(self.group))  # items so far in this window, saturating at group - 1
        running, merged = Signal(), Signal()
        accept = stage_handshake(m, self.i, self.o)
        full = count == self.group - 1
        m.d.comb += [merged.eq(item.bit | (running & count.any())),
                     self.error.eq(accept & (item.last ^ full))]
        with m.If(accept):
            m.d.sync += running.eq(merged)
            with m.If(item.last):
                m.d.sync += [count.eq(0), self.o.valid.eq(1), self.o.payload.bit.eq(merged),
                             self.o.payload.channel.eq(item.channel)]
            with m.Elif(~full):
                m.d.sync += count.eq(count + 1)
        return m


class LaneMaxPool(wiring.Component):
    """Max-pool of every channel at once: the OR of each window of ``group`` activation words.

    A sense read-out layer's periphery gives one word per read (bit ``c`` is channel ``c``); the
    producer sends a window's members consecutively and marks the last one ``last``; the OR of
    the window's words goes out then. Framing errors as :class:`BinaryMaxPool`.

    Ports:
        i: activation words (bits, last); o: pooled words (bits).
        error: framing-error strobe (the periphery's sticky ``error`` register records it).
    """

    def __init__(self, *, group: int, lanes: int):
        for label, value in (("pool group", group), ("lanes", lanes)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{label} must be a positive integer, not {value!r}")
        self.group = group
        super().__init__({
            "i": In(stream_signature(activation_word_layout(lanes, last=True))),
            "o": Out(stream_signature(activation_word_layout(lanes))),
            "error": Out(1),
        })

    def elaborate(self, platform):
        """Counter and one word register, the running OR and the output at once: a beat is taken
        only while no output waits (:func:`~bmcnn_hw.rtl.streams.stage_handshake`), so the
        register is free to collect the next window from its first member on."""
        m = Module()
        item, word = self.i.payload, self.o.payload.bits
        count = Signal(range(self.group))  # items so far in this window, saturating at group - 1
        accept = stage_handshake(m, self.i, self.o)
        full = count == self.group - 1
        m.d.comb += self.error.eq(accept & (item.last ^ full))
        with m.If(accept):
            m.d.sync += word.eq(item.bits | Mux(count.any(), word, 0))
            with m.If(item.last):
                m.d.sync += [count.eq(0), self.o.valid.eq(1)]
            with m.Elif(~full):
                m.d.sync += count.eq(count + 1)
        return m
