"""Stream payloads and the one valid/ready rule every bmcnn-hw stage follows.

Each stage (periphery, pool, argmax) has an input stream ``i`` and an output stream ``o``
(``amaranth.lib.stream.Signature``; Verilog ports ``i__valid``, ``i__ready``, ``i__payload``,
``o__valid``, ``o__ready``, ``o__payload``). A payload is a ``StructLayout`` packed LSB first
in field order; :func:`layout_fields` gives the offsets a testbench packs and unpacks with.
"""

from __future__ import annotations

from amaranth.hdl import Module, ResetSignal, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, stream


def index_width(count: int) -> int:
    """Bits of an index into ``count`` items (at least 1)."""
    return max(1, (count - 1).bit_length())


def beat_layout(adc_bits: int, planes: int, channels: int, windowed: bool = False) -> data.StructLayout:
    """One ADC code into a periphery: signed, or (``windowed``) the code's low ``adc_bits`` bits,
    restored by the periphery from its column's window.

    ``first``/``last`` open and close one channel's beats (bit planes x row tiles);
    ``group_last`` marks the last beat of a pool window or of an image's classes and is
    passed on to the pool/argmax as its ``last``.
    """
    code = unsigned(adc_bits) if windowed else signed(adc_bits)
    return data.StructLayout({"code": code, "plane": unsigned(index_width(planes)),
                              "channel": unsigned(index_width(channels)), "first": 1, "last": 1, "group_last": 1})


def sense_beat_layout(channels: int) -> data.StructLayout:
    """One read of a sense read-out layer: every channel's comparator decision at once (bit ``c``
    of ``code`` is channel ``c``'s); ``group_last`` marks a pool window's last member."""
    return data.StructLayout({"code": unsigned(channels), "group_last": 1})


def sense_result_layout(channels: int) -> data.StructLayout:
    """A sense periphery's result: the decisions (``acc``), the activations ``act = decision XOR
    flip`` (bit ``c`` per channel), and ``last`` (the beat's ``group_last``)."""
    return data.StructLayout({"acc": unsigned(channels), "act": unsigned(channels), "last": 1})


def activation_word_layout(channels: int, last: bool = False) -> data.StructLayout:
    """Every channel's activation bit of one position (bit ``c`` is channel ``c``; ``last`` ends
    a pool window on the pool's input)."""
    fields = {"bits": unsigned(channels)}
    if last:
        fields["last"] = 1
    return data.StructLayout(fields)


def mac_input_layout(input_bits: int) -> data.StructLayout:
    """One input element into a digital layer's MAC engine (``last`` closes a frame)."""
    return data.StructLayout({"value": unsigned(input_bits), "last": 1})


def result_layout(channels: int, acc_width: int, score_width: int | None) -> data.StructLayout:
    """One channel's result out of a periphery (``score`` on the output layer only)."""
    fields = {"channel": unsigned(index_width(channels)), "acc": signed(acc_width + 1), "act": 1, "last": 1}
    if score_width is not None:
        fields["score"] = signed(score_width)
    return data.StructLayout(fields)


def activation_layout(channel_width: int, last: bool = False) -> data.StructLayout:
    """One activation bit of a channel (``last`` ends a pool window on the pool's input)."""
    fields = {"bit": 1, "channel": unsigned(channel_width)}
    if last:
        fields["last"] = 1
    return data.StructLayout(fields)


def score_layout(classes: int, score_width: int, last: bool = False) -> data.StructLayout:
    """One class score (``last`` ends an image's classes on the argmax's input)."""
    fields = {"class": unsigned(index_width(classes)), "score": signed(score_width)}
    if last:
        fields["last"] = 1
    return data.StructLayout(fields)


def layout_fields(layout: data.StructLayout) -> dict[str, list[int]]:
    """Field -> [offset, width, signed] of a payload layout (what testbenches pack with)."""
    return {name: [field.offset, field.width, int(Shape.cast(field.shape).signed)] for name, field in layout}


def stream_fields(component) -> dict[str, dict[str, list[int]]]:
    """Stream member (``i``, ``o``) -> :func:`layout_fields` of its payload."""
    members = component.signature.members
    return {name: layout_fields(members[name].signature.members["payload"].shape)
            for name in ("i", "o") if name in members}


def stream_signature(layout: data.StructLayout) -> stream.Signature:
    """A valid/ready stream of ``layout`` payloads."""
    return stream.Signature(layout)


def stage_handshake(m: Module, inp, out) -> Value:
    """The valid/ready rule of a stage with one output register; returns the accept strobe.

    A beat moves when ``inp.valid & inp.ready``. ``inp.ready`` is low while reset is asserted
    (a beat offered then is not taken, not silently dropped) and while a result waits
    downstream (``~out.valid | out.ready``). ``out.valid`` falls once the result is taken;
    the caller raises it (a later ``m.d.sync`` assignment wins) when it registers a result.
    """
    accept = Signal()
    m.d.comb += [inp.ready.eq(~ResetSignal() & (~out.valid | out.ready)), accept.eq(inp.valid & inp.ready)]
    with m.If(out.ready):
        m.d.sync += out.valid.eq(0)
    return accept
