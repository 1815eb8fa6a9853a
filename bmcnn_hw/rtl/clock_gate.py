"""Clock gating: a domain whose clock runs only in the cycles its registers can change.

``add_gated_domain(m, name, enable)`` makes domain ``name`` with clock ``clk & enable_q`` and
the reset of ``sync``, where ``enable_q`` is ``rst | enable`` taken on the falling edge of
``clk``. ``enable_q`` changes only while ``clk`` is low, so the gated clock has no glitch
(the flip-flop form of a latch-based integrated clock gate, for libraries without one).
``enable`` is a half-cycle path from the rising edge; OpenSTA checks it (and the gate's
clock-gating check) in ``bmcnn-hw ppa``.

A register may move into a gated domain only if it changes in no cycle where ``enable`` is
low: the enable is a condition that every one of its assignments already requires.
"""

from __future__ import annotations

from amaranth.hdl import ClockDomain, ClockSignal, Module, ResetSignal, Signal


def add_gated_domain(m: Module, name: str, enable) -> None:
    """Add domain ``name``: ``sync`` with its clock gated by ``rst | enable`` (see the module doc).

    Args:
        m: the module that owns the domain (local to it and its submodules).
        name: domain name; the enable flip-flop's domain is ``<name>_enable``.
        enable: 1-bit value, high in every cycle where a register of the domain may change.
    """
    gated = ClockDomain(name, local=True)
    sample = ClockDomain(f"{name}_enable", clk_edge="neg", reset_less=True, local=True)
    m.domains += [gated, sample]
    enable_q = Signal(init=1, name=f"{name}_enable_q")  # open at power-up: the first reset reaches the registers
    m.d.comb += [sample.clk.eq(ClockSignal()), gated.rst.eq(ResetSignal()),
                 gated.clk.eq(ClockSignal() & enable_q)]
    m.d[sample.name] += enable_q.eq(ResetSignal() | enable)
