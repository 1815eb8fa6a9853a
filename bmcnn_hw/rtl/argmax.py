"""Argmax of the output layer: the first class with the largest score of each image."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..errors import ConfigError
from .streams import score_layout, stage_handshake, stream_signature


class Argmax(wiring.Component):
    """Streams ``classes`` (class, score) items per image, the last marked ``last``, and emits the winner.

    Ties go to the first class seen with the maximum (like ``numpy.argmax``). An image whose
    ``last`` comes after more or fewer than ``classes`` items is still decided at its
    ``last`` and raises the ``error`` strobe for one cycle.

    Ports:
        i: score stream (class, score, last); o: one result per image (class, score).
        error: framing-error strobe (the periphery's sticky ``error`` register records it).
    """

    def __init__(self, *, classes: int, score_width: int):
        if not isinstance(classes, int) or classes < 1:
            raise ConfigError(f"classes must be a positive integer, not {classes!r}")
        if not isinstance(score_width, int) or score_width < 1:
            raise ConfigError(f"score_width must be a positive integer, not {score_width!r}")
        self.classes = classes
        super().__init__({
            "i": In(stream_signature(score_layout(classes, score_width, last=True))),
            "o": Out(stream_signature(score_layout(classes, score_width))),
            "error": Out(1),
        })

    def elaborate(self, platform):
        """Counter, best-so-far registers and output register."""
        m = Module()
        item = self.i.payload
        count = Signal(range(self.classes))  # items so far in this image, saturating at classes - 1
        best, best_class = Signal.like(item.score), Signal.like(item["class"])
        take = Signal()
        win, win_class = Signal.like(item.score), Signal.like(item["class"])
        accept = stage_handshake(m, self.i, self.o)
        full = count == self.classes - 1
        m.d.comb += [
            take.eq(~count.any() | (item.score > best)),
            win.eq(item.score), win_class.eq(item["class"]),
            self.error.eq(accept & (item.last ^ full)),
        ]
        with m.If(~take):
            m.d.comb += [win.eq(best), win_class.eq(best_class)]
        with m.If(accept):
            m.d.sync += [best.eq(win), best_class.eq(win_class)]
            with m.If(item.last):
                m.d.sync += [count.eq(0), self.o.valid.eq(1), self.o.payload["class"].eq(win_class),
                             self.o.payload.score.eq(win)]
            with m.Elif(~full):
                m.d.sync += count.eq(count + 1)
        return m
