"""Layer top: the periphery followed by max-pool (hidden conv layers) or argmax (output layer)."""

from __future__ import annotations

from amaranth.hdl import DomainRenamer, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from ..artefact import CompiledLayer
from .argmax import Argmax
from .clock_gate import add_gated_domain
from .mac import MacEngine, mac_engine_for
from .periphery import LayerPeriphery, output_score_width, periphery_code_bits, periphery_for_layer, periphery_planes
from .pool import BinaryMaxPool, LaneMaxPool
from .streams import (
    activation_layout,
    activation_word_layout,
    beat_layout,
    index_width,
    layout_fields,
    mac_input_layout,
    result_layout,
    score_layout,
    sense_beat_layout,
    sense_result_layout,
    stream_signature,
)


class LayerTop(wiring.Component):
    """One layer's digital side: [``engine`` ->] ``periphery`` -> ``pool`` (pool > 1) or ``argmax`` (output layer).

    Producer order: hidden layers send, per pooled position and channel, the beats of each
    window member in turn, so a window's activations reach the pool consecutively; the
    output layer sends the classes of one image in turn. The beat that closes a window (or
    an image's last class) carries ``group_last``. A sense read-out layer sends one beat per
    read (every channel's decision in one word): per pooled position, its window members' words
    in turn, and gives one activation word per window (``rtl/README.md``).

    A digital layer has a :class:`~bmcnn_hw.rtl.mac.MacEngine` in front: it takes the layer's
    input elements frame by frame (a pool window's im2col vectors, or the fc input) and hands the
    periphery one beat per channel and window member, in the same order.

    Ports:
        i: as :class:`~bmcnn_hw.rtl.periphery.LayerPeriphery` (connected to it unchanged), or the
            engine's input elements.
        bus: the periphery's register bus.
        cmp_ref: a sense layer's comparator references (the periphery's ``cmp_ref``).
        o: activation stream (bit, channel) of hidden layers, or the prediction (class, score)
            of the output layer; a sense layer's activation words (bits: one per channel), one
            per pooled position.
    """

    def __init__(self, periphery: LayerPeriphery, pool: int = 1, is_output: bool = False,
                 engine: MacEngine | None = None):
        """``periphery`` needs ``group_errors`` when a tail follows (output layer or pool > 1), and
        ``input_errors`` behind an ``engine``."""
        self.periphery, self.pool, self.is_output, self.engine = periphery, pool, is_output, engine
        sig = periphery.signature.members
        self.tail: Argmax | BinaryMaxPool | LaneMaxPool | None = None
        if periphery.sense:  # one word per read: every channel's activation side by side
            plain = activation_word_layout(periphery.channels)
            if pool > 1:
                self.tail = LaneMaxPool(group=pool * pool, lanes=periphery.channels)
        else:
            channel_width = sig["o"].signature.members["payload"].shape["channel"].width
            plain = activation_layout(channel_width)
            if is_output:
                self.tail = Argmax(classes=periphery.channels, score_width=periphery.score_width)
            elif pool > 1:
                self.tail = BinaryMaxPool(group=pool * pool, channel_width=channel_width)
        out = self.tail.signature.members["o"] if self.tail is not None else Out(stream_signature(plain))
        inp = engine.signature.members["i"] if engine is not None else sig["i"]
        members = {"i": inp, "bus": sig["bus"], "o": out}
        if "cmp_ref" in sig:  # a sense layer's comparator references go out to the analog macro
            members["cmp_ref"] = sig["cmp_ref"]
        super().__init__(members)

    def elaborate(self, platform):
        """Connect input and bus to the engine or periphery, the periphery to its tail, the tail to the output."""
        m = Module()
        p = m.submodules.periphery = self.periphery
        if self.engine is not None:
            mac = m.submodules.mac = self.engine
            wiring.connect(m, wiring.flipped(self.i), mac.i)
            wiring.connect(m, mac.o, p.i)
            m.d.comb += p.input_error.eq(mac.error)
        else:
            wiring.connect(m, wiring.flipped(self.i), p.i)
        wiring.connect(m, wiring.flipped(self.bus), p.bus)
        if p.sense:
            m.d.comb += self.cmp_ref.eq(p.cmp_ref)
        result = p.o.payload
        if self.tail is None:
            m.d.comb += [self.o.valid.eq(p.o.valid), p.o.ready.eq(self.o.ready)]
            if p.sense:
                m.d.comb += self.o.payload.bits.eq(result.act)
            else:
                m.d.comb += [self.o.payload.bit.eq(result.act), self.o.payload.channel.eq(result.channel)]
            return m
        t = self.tail
        if self.periphery.clock_gating:  # the tail's registers change only while a result is offered or held
            add_gated_domain(m, "tail", p.o.valid | t.o.valid)
            m.submodules.tail = DomainRenamer({"sync": "tail"})(t)
        else:
            m.submodules.tail = t
        # The periphery's result carries more than the tail reads (acc), so its fields map by name.
        m.d.comb += [t.i.valid.eq(p.o.valid), p.o.ready.eq(t.i.ready), p.group_error.eq(t.error),
                     t.i.payload.last.eq(result.last)]
        if self.is_output:
            m.d.comb += [t.i.payload["class"].eq(result.channel), t.i.payload.score.eq(result.score)]
        elif p.sense:
            m.d.comb += t.i.payload.bits.eq(result.act)
        else:
            m.d.comb += [t.i.payload.bit.eq(result.act), t.i.payload.channel.eq(result.channel)]
        wiring.connect(m, t.o, wiring.flipped(self.o))
        return m


def layer_top_for(layer: CompiledLayer) -> LayerTop:
    """The LayerTop of a CompiledLayer (with its MAC engine when the layer is digital)."""
    tail = layer.is_output or layer.pool > 1
    engine = mac_engine_for(layer) if layer.digital else None
    return LayerTop(periphery_for_layer(layer, group_errors=tail, input_errors=layer.digital), pool=layer.pool,
                    is_output=layer.is_output, engine=engine)


def layer_stream_fields(layer: CompiledLayer, top: bool) -> dict[str, dict[str, list[int]]]:
    """Payload fields of the periphery's (``top`` False) or the layer top's streams, without
    building the component (what :func:`~bmcnn_hw.rtl.streams.stream_fields` reads from one)."""
    if layer.sense:
        out = activation_word_layout(layer.cols) if top else sense_result_layout(layer.cols)
        return {"i": layout_fields(sense_beat_layout(layer.cols)), "o": layout_fields(out)}
    score_width = output_score_width(layer.acc_width, layer.score_scale) if layer.is_output else None
    if not top:
        out = result_layout(layer.cols, layer.acc_width, score_width)
    elif score_width is not None:
        out = score_layout(layer.cols, score_width)
    else:
        out = activation_layout(index_width(layer.cols))
    if top and layer.digital:
        inp = mac_input_layout(layer.input_bits)
    else:
        inp = beat_layout(periphery_code_bits(layer), periphery_planes(layer), layer.cols, windowed=layer.adc_window)
    return {"i": layout_fields(inp), "o": layout_fields(out)}
