"""Argmax of the output layer: the first class with the largest score among ``classes`` items."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..errors import ConfigError


class Argmax(wiring.Component):
    """Streams ``classes`` (class, score) items per image and emits the winner.

    Ties go to the first class seen with the maximum (like ``numpy.argmax``).

    Ports:
        in_valid, in_ready, in_class, in_score (signed score_width): score stream.
        out_valid, out_ready, out_class, out_score: one result per image.
    """

    def __init__(self, *, classes: int, score_width: int):
        if not isinstance(classes, int) or classes < 1:
            raise ConfigError(f"classes must be a positive integer, not {classes!r}")
        if not isinstance(score_width, int) or score_width < 1:
            raise ConfigError(f"score_width must be a positive integer, not {score_width!r}")
        self.classes = classes
        cls_width = max(1, (classes - 1).bit_length())
        super().__init__({
            "in_valid": In(1), "in_ready": Out(1), "in_class": In(unsigned(cls_width)),
            "in_score": In(signed(score_width)),
            "out_valid": Out(1), "out_ready": In(1), "out_class": Out(unsigned(cls_width)),
            "out_score": Out(signed(score_width)),
        })

    def elaborate(self, platform):
        """Counter, best-so-far registers and output register."""
        m = Module()
        count = Signal(range(self.classes))
        best, best_class = Signal.like(self.in_score), Signal.like(self.in_class)
        take = Signal()
        win, win_class = Signal.like(self.in_score), Signal.like(self.in_class)
        accept = Signal()
        m.d.comb += [
            self.in_ready.eq(~self.out_valid | self.out_ready), accept.eq(self.in_valid & self.in_ready),
            take.eq(~count.any() | (self.in_score > best)),
            win.eq(self.in_score), win_class.eq(self.in_class),
        ]
        with m.If(~take):
            m.d.comb += [win.eq(best), win_class.eq(best_class)]
        with m.If(self.out_ready):
            m.d.sync += self.out_valid.eq(0)
        with m.If(accept):
            m.d.sync += [best.eq(win), best_class.eq(win_class)]
            with m.If(count == self.classes - 1):
                m.d.sync += [count.eq(0), self.out_valid.eq(1), self.out_class.eq(win_class), self.out_score.eq(win)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
        return m
