"""Binary max-pool: the OR of each group of ``group`` consecutive activation bits."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..errors import ConfigError


class BinaryMaxPool(wiring.Component):
    """Max-pool over {0, 1} activations (= OR), one window per ``group`` input items.

    The producer sends a window's members consecutively (same channel); the channel of the
    window's last member is passed through.

    Ports:
        in_valid, in_ready, in_bit, in_channel: activation stream.
        out_valid, out_ready, out_bit, out_channel: pooled stream.
    """

    def __init__(self, *, group: int, channel_width: int):
        if not isinstance(group, int) or group < 1:
            raise ConfigError(f"pool group must be a positive integer, not {group!r}")
        if not isinstance(channel_width, int) or channel_width < 1:
            raise ConfigError(f"channel_width must be a positive integer, not {channel_width!r}")
        self.group = group
        super().__init__({
            "in_valid": In(1), "in_ready": Out(1), "in_bit": In(1), "in_channel": In(unsigned(channel_width)),
            "out_valid": Out(1), "out_ready": In(1), "out_bit": Out(1), "out_channel": Out(unsigned(channel_width)),
        })

    def elaborate(self, platform):
        """Counter, running OR and output register."""
        m = Module()
        count = Signal(range(self.group))
        running = Signal()
        merged = Signal()
        accept = Signal()
        m.d.comb += [self.in_ready.eq(~self.out_valid | self.out_ready), accept.eq(self.in_valid & self.in_ready),
                     merged.eq(self.in_bit | (running & count.any()))]
        with m.If(self.out_ready):
            m.d.sync += self.out_valid.eq(0)
        with m.If(accept):
            m.d.sync += running.eq(merged)
            with m.If(count == self.group - 1):
                m.d.sync += [count.eq(0), self.out_valid.eq(1), self.out_bit.eq(merged),
                             self.out_channel.eq(self.in_channel)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
        return m
