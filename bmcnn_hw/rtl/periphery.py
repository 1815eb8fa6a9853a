"""Layer periphery: accumulator + threshold unit for one crossbar layer.

One beat carries one ADC code of one output channel. A channel's beats arrive in
sequence (bit planes x row tiles), the first flagged ``in_first`` and the last
``in_last``; on the last beat the component emits the sum and the activation bit
``(acc >= theta[channel]) XOR flip[channel]`` one cycle later.
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..errors import ConfigError


def _index_width(count: int) -> int:
    return max(1, (count - 1).bit_length())


class LayerPeriphery(wiring.Component):
    """Accumulate signed ADC codes (shift-added per bit plane) and threshold them.

    Args:
        channels: output channels (weight columns) of the layer.
        adc_bits: width of a signed ADC code.
        planes: bit planes of the layer input (1 for binary inputs).
        acc_width: accumulator width; must hold ``acc_bound`` (checked).
        thetas, flips: per-channel threshold and flip; ``None`` for the output layer
            (``out_act`` is then 0).
        acc_bound: largest |accumulator| the layer can produce.
        offsets: per-channel constant added on the last beat, then the sum is halved
            (arithmetic shift): the bipolar-input correction ``(sum + colsum*(2**planes-1)) >> 1``.

    Ports:
        in_valid, in_code (signed adc_bits), in_plane, in_channel, in_first, in_last: input beat.
        out_valid, out_channel, out_acc (signed acc_width), out_act: result, one cycle after
        the last beat of a channel.
    """

    def __init__(self, *, channels: int, adc_bits: int, planes: int, acc_width: int,
                 thetas=None, flips=None, acc_bound: int | None = None, offsets=None):
        for name, value in (("channels", channels), ("adc_bits", adc_bits), ("planes", planes),
                            ("acc_width", acc_width)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, not {value!r}")
        lo, hi = -(2 ** (acc_width - 1)), 2 ** (acc_width - 1) - 1
        needed = acc_bound if acc_bound is not None else 2 ** (adc_bits - 1) * (2 ** planes - 1)
        if needed > hi:
            raise ConfigError(f"acc_width {acc_width} cannot hold the accumulator bound {needed}")
        if thetas is not None:
            thetas, flips = [int(t) for t in thetas], [int(f) for f in flips]
            if len(thetas) != channels or len(flips) != channels:
                raise ConfigError(f"need {channels} thresholds and flips, got {len(thetas)} and {len(flips)}")
            bad = [t for t in thetas if not lo <= t <= hi]
            if bad:
                raise ConfigError(f"threshold {bad[0]} out of range [{lo}, {hi}] of a {acc_width}-bit accumulator")
            if any(f not in (0, 1) for f in flips):
                raise ConfigError("flips must be 0 or 1")
        if offsets is not None:
            offsets = [int(o) for o in offsets]
            if len(offsets) != channels or any(not lo <= o <= hi for o in offsets):
                raise ConfigError(f"need {channels} offsets within [{lo}, {hi}]")
        self.offsets = offsets
        self.channels, self.adc_bits, self.planes, self.acc_width = channels, adc_bits, planes, acc_width
        self.thetas, self.flips = thetas, flips
        super().__init__({
            "in_valid": In(1),
            "in_code": In(signed(adc_bits)),
            "in_plane": In(unsigned(_index_width(planes))),
            "in_channel": In(unsigned(_index_width(channels))),
            "in_first": In(1),
            "in_last": In(1),
            "out_valid": Out(1),
            "out_channel": Out(unsigned(_index_width(channels))),
            "out_acc": Out(signed(acc_width)),
            "out_act": Out(1),
        })

    def elaborate(self, platform):
        """Build the accumulator, threshold ROM and output register."""
        m = Module()
        acc = Signal(signed(self.acc_width))
        term = Signal(signed(self.acc_width))
        total = Signal(signed(self.acc_width))
        m.d.comb += [
            term.eq(self.in_code << self.in_plane),
            total.eq(Mux(self.in_first, 0, acc) + term),
        ]
        result = Signal(signed(self.acc_width))
        if self.offsets is None:
            m.d.comb += result.eq(total)
        else:
            offset = Array(Const(o, signed(self.acc_width)) for o in self.offsets)[self.in_channel]
            m.d.comb += result.eq((total + offset) >> 1)
        act = Signal()
        if self.thetas is not None:
            theta = Array(Const(t, signed(self.acc_width)) for t in self.thetas)[self.in_channel]
            flip = Array(Const(f, 1) for f in self.flips)[self.in_channel]
            m.d.comb += act.eq((result >= theta) ^ flip)
        m.d.sync += self.out_valid.eq(0)
        with m.If(self.in_valid):
            m.d.sync += acc.eq(total)
            with m.If(self.in_last):
                m.d.sync += [
                    self.out_valid.eq(1),
                    self.out_channel.eq(self.in_channel),
                    self.out_acc.eq(result),
                    self.out_act.eq(act),
                ]
        return m


def bipolar_offsets(layer) -> list[int]:
    """Per-channel constant of the bipolar correction: column sum x (2**input_bits - 1)."""
    return (layer.weight.sum(axis=0, dtype="int64") * (2 ** layer.input_bits - 1)).tolist()


def periphery_for_layer(layer) -> LayerPeriphery:
    """The periphery of a CompiledLayer."""
    return LayerPeriphery(channels=layer.cols, adc_bits=layer.adc_bits, planes=layer.input_bits,
                          acc_width=layer.acc_width, thetas=None if layer.is_output else layer.theta,
                          flips=None if layer.is_output else layer.flip, acc_bound=layer.acc_bound,
                          offsets=bipolar_offsets(layer) if layer.bipolar else None)
