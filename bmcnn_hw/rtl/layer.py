"""Layer top: the periphery followed by max-pool (hidden conv layers) or argmax (output layer)."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .argmax import Argmax
from .periphery import LayerPeriphery, periphery_for_layer
from .pool import BinaryMaxPool

_BUS = ("reg_addr", "reg_wdata", "reg_we")


class LayerTop(wiring.Component):
    """One layer's digital side: ``periphery`` -> ``pool`` (pool > 1) or ``argmax`` (output layer).

    Producer order: hidden layers send, per pooled position and channel, the beats of each
    window member in turn, so a window's activations reach the pool consecutively; the
    output layer sends the classes of one image in turn.

    Ports:
        in_* and reg_*: as :class:`~bmcnn_hw.rtl.periphery.LayerPeriphery`.
        out_valid, out_ready, out_channel, out_bit: activation stream (hidden layers);
        out_valid, out_ready, out_class, out_score: the prediction (output layer).
    """

    def __init__(self, periphery: LayerPeriphery, pool: int = 1, is_output: bool = False):
        self.periphery, self.pool, self.is_output = periphery, pool, is_output
        sig = periphery.signature.members
        members = {name: sig[name] for name in sig if name.startswith(("in_", "reg_"))}
        members["out_valid"], members["out_ready"] = Out(1), In(1)
        self.tail: Argmax | BinaryMaxPool | None
        if is_output:
            self.tail = Argmax(classes=periphery.channels, score_width=periphery.score_width)
            members["out_class"] = Out(self.tail.signature.members["out_class"].shape)
            members["out_score"] = Out(self.tail.signature.members["out_score"].shape)
        else:
            width = sig["out_channel"].shape.width
            self.tail = BinaryMaxPool(group=pool * pool, channel_width=width) if pool > 1 else None
            members["out_channel"], members["out_bit"] = Out(sig["out_channel"].shape), Out(1)
        super().__init__(members)

    def elaborate(self, platform):
        """Wire the periphery to its tail and the tail to the outputs."""
        m = Module()
        p = m.submodules.periphery = self.periphery
        for name in self.signature.members:
            if name.startswith("in_") and name != "in_ready":
                m.d.comb += getattr(p, name).eq(getattr(self, name))
            if name in _BUS:
                m.d.comb += getattr(p, name).eq(getattr(self, name))
        m.d.comb += [self.in_ready.eq(p.in_ready), self.reg_rdata.eq(p.reg_rdata)]
        if self.tail is None:
            m.d.comb += [self.out_valid.eq(p.out_valid), p.out_ready.eq(self.out_ready),
                         self.out_channel.eq(p.out_channel), self.out_bit.eq(p.out_act)]
            return m
        t = m.submodules.tail = self.tail
        m.d.comb += [t.in_valid.eq(p.out_valid), p.out_ready.eq(t.in_ready),
                     self.out_valid.eq(t.out_valid), t.out_ready.eq(self.out_ready)]
        if self.is_output:
            m.d.comb += [t.in_class.eq(p.out_channel), t.in_score.eq(p.out_score),
                         self.out_class.eq(t.out_class), self.out_score.eq(t.out_score)]
        else:
            m.d.comb += [t.in_bit.eq(p.out_act), t.in_channel.eq(p.out_channel),
                         self.out_bit.eq(t.out_bit), self.out_channel.eq(t.out_channel)]
        return m


def layer_top_for(layer) -> LayerTop:
    """The LayerTop of a CompiledLayer."""
    return LayerTop(periphery_for_layer(layer), pool=layer.pool, is_output=layer.is_output)
