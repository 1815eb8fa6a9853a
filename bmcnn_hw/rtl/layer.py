"""Layer top: the periphery followed by max-pool (hidden conv layers) or argmax (output layer)."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from ..artefact import CompiledLayer
from .argmax import Argmax
from .periphery import LayerPeriphery, output_score_width, periphery_for_layer
from .pool import BinaryMaxPool
from .streams import (
    activation_layout,
    beat_layout,
    index_width,
    layout_fields,
    result_layout,
    score_layout,
    stream_signature,
)


class LayerTop(wiring.Component):
    """One layer's digital side: ``periphery`` -> ``pool`` (pool > 1) or ``argmax`` (output layer).

    Producer order: hidden layers send, per pooled position and channel, the beats of each
    window member in turn, so a window's activations reach the pool consecutively; the
    output layer sends the classes of one image in turn. The beat that closes a window (or
    an image's last class) carries ``group_last``.

    Ports:
        i, bus: as :class:`~bmcnn_hw.rtl.periphery.LayerPeriphery` (connected to it unchanged).
        o: activation stream (bit, channel) of hidden layers, or the prediction (class, score)
            of the output layer.
    """

    def __init__(self, periphery: LayerPeriphery, pool: int = 1, is_output: bool = False):
        """``periphery`` needs ``group_errors`` when a tail follows (output layer or pool > 1)."""
        self.periphery, self.pool, self.is_output = periphery, pool, is_output
        sig = periphery.signature.members
        channel_width = sig["o"].signature.members["payload"].shape["channel"].width
        self.tail: Argmax | BinaryMaxPool | None = None
        if is_output:
            self.tail = Argmax(classes=periphery.channels, score_width=periphery.score_width)
        elif pool > 1:
            self.tail = BinaryMaxPool(group=pool * pool, channel_width=channel_width)
        out = (self.tail.signature.members["o"] if self.tail is not None
               else Out(stream_signature(activation_layout(channel_width))))
        super().__init__({"i": sig["i"], "bus": sig["bus"], "o": out})

    def elaborate(self, platform):
        """Connect input and bus to the periphery, the periphery to its tail, the tail to the output."""
        m = Module()
        p = m.submodules.periphery = self.periphery
        wiring.connect(m, wiring.flipped(self.i), p.i)
        wiring.connect(m, wiring.flipped(self.bus), p.bus)
        result = p.o.payload
        if self.tail is None:
            m.d.comb += [self.o.valid.eq(p.o.valid), p.o.ready.eq(self.o.ready),
                         self.o.payload.bit.eq(result.act), self.o.payload.channel.eq(result.channel)]
            return m
        t = m.submodules.tail = self.tail
        # The periphery's result carries more than the tail reads (acc), so its fields map by name.
        m.d.comb += [t.i.valid.eq(p.o.valid), p.o.ready.eq(t.i.ready), p.group_error.eq(t.error),
                     t.i.payload.last.eq(result.last)]
        if self.is_output:
            m.d.comb += [t.i.payload["class"].eq(result.channel), t.i.payload.score.eq(result.score)]
        else:
            m.d.comb += [t.i.payload.bit.eq(result.act), t.i.payload.channel.eq(result.channel)]
        wiring.connect(m, t.o, wiring.flipped(self.o))
        return m


def layer_top_for(layer: CompiledLayer) -> LayerTop:
    """The LayerTop of a CompiledLayer."""
    tail = layer.is_output or layer.pool > 1
    return LayerTop(periphery_for_layer(layer, group_errors=tail), pool=layer.pool, is_output=layer.is_output)


def layer_stream_fields(layer: CompiledLayer, top: bool) -> dict[str, dict[str, list[int]]]:
    """Payload fields of the periphery's (``top`` False) or the layer top's streams, without
    building the component (what :func:`~bmcnn_hw.rtl.streams.stream_fields` reads from one)."""
    score_width = output_score_width(layer.acc_width, layer.score_scale) if layer.is_output else None
    if not top:
        out = result_layout(layer.cols, layer.acc_width, score_width)
    elif score_width is not None:
        out = score_layout(layer.cols, score_width)
    else:
        out = activation_layout(index_width(layer.cols))
    return {"i": layout_fields(beat_layout(layer.adc_bits, layer.input_bits, layer.cols)), "o": layout_fields(out)}
