"""Register banks described once: the RTL, the register map document and the testbench
driver are all generated from a :class:`RegisterMap`.

Bus protocol (:class:`RegisterBus`, one per layer periphery): word-addressed, 32-bit data.
``we`` writes ``wdata`` (truncated to the register's width) to ``addr`` at a rising clock
edge; ``rdata`` shows, one cycle after ``addr`` is presented, the register at that address
sign- or zero-extended to 32 bits (0 for unmapped addresses). Writes to read-only registers
are ignored; a write to a ``w1c`` register clears the bits written as 1 (hardware sets them).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal, get_args

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..errors import ConfigError

DATA_WIDTH = 32
Access = Literal["rw", "ro", "w1c"]
"""Register access: read/write, read-only, or sticky bits set by hardware and cleared by writing 1."""
ACCESS_DOC = {"rw": "read/write", "ro": "read-only", "w1c": "sticky, set by hardware, write 1 to clear"}


class RegisterBus(wiring.Signature):
    """The register bus, from the controller's side: ``addr``, ``wdata``, ``we`` out; ``rdata`` in.

    A component's bus port is ``In(RegisterBus(addr_width))``; Verilog names its wires
    ``bus__addr``, ``bus__wdata``, ``bus__we`` and ``bus__rdata``.
    """

    def __init__(self, addr_width: int):
        if not isinstance(addr_width, int) or addr_width < 1:
            raise ConfigError(f"register bus addr_width must be a positive integer, not {addr_width!r}")
        self.addr_width = addr_width
        super().__init__({"addr": Out(addr_width), "wdata": Out(DATA_WIDTH), "we": Out(1), "rdata": In(DATA_WIDTH)})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RegisterBus) and other.addr_width == self.addr_width

    def __hash__(self) -> int:
        return hash(("RegisterBus", self.addr_width))


@dataclass(frozen=True)
class RegisterSpec:
    """One register, or an array of ``count`` registers at consecutive addresses."""

    name: str
    offset: int
    """Word address of element 0."""
    width: int
    """Bits stored (1..32)."""
    access: Access
    """"rw", "ro" or "w1c" (see :data:`Access`)."""
    reset: tuple
    """Reset value of each element (``count`` integers)."""
    doc: str
    signed: bool = False
    count: int = 1

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ConfigError(f"register name must be an identifier, not {self.name!r}")
        if not isinstance(self.width, int) or not 1 <= self.width <= DATA_WIDTH:
            raise ConfigError(f"register {self.name}: width must be an integer in [1, {DATA_WIDTH}], "
                              f"not {self.width!r}")
        if self.access not in get_args(Access):
            raise ConfigError(f"register {self.name}: access must be one of {', '.join(get_args(Access))}, "
                              f"not {self.access!r}")
        if not isinstance(self.offset, int) or self.offset < 0 or self.count < 1:
            raise ConfigError(f"register {self.name}: offset must be a non-negative integer and count positive")
        if len(self.reset) != self.count:
            raise ConfigError(f"register {self.name}: needs {self.count} reset values, got {len(self.reset)}")
        lo, hi = (-(1 << (self.width - 1)), (1 << (self.width - 1)) - 1) if self.signed else (0, (1 << self.width) - 1)
        bad = [v for v in self.reset if not lo <= int(v) <= hi]
        if bad:
            raise ConfigError(f"register {self.name}: reset value {bad[0]} out of range [{lo}, {hi}]")

    @property
    def addresses(self) -> range:
        """Word addresses this register occupies."""
        return range(self.offset, self.offset + self.count)


@dataclass(frozen=True)
class RegisterMap:
    """The registers of one component; construction rejects overlapping addresses."""

    name: str
    registers: tuple[RegisterSpec, ...]

    def __post_init__(self):
        seen: dict[int, str] = {}
        for reg in self.registers:
            for addr in reg.addresses:
                if addr in seen:
                    raise ConfigError(f"register offset collision at 0x{addr:x}: {seen[addr]} and {reg.name}")
                seen[addr] = reg.name

    @property
    def addr_width(self) -> int:
        """Bits of the word address bus."""
        top = max(reg.offset + reg.count for reg in self.registers)
        return max(1, (top - 1).bit_length())

    def __getitem__(self, name: str) -> RegisterSpec:
        for reg in self.registers:
            if reg.name == name:
                return reg
        raise KeyError(name)

    def to_json(self) -> str:
        """The map as JSON (the testbench driver reads this)."""
        regs = [{**asdict(r), "reset": [int(v) for v in r.reset]} for r in self.registers]
        return json.dumps({"component": self.name, "data_width": DATA_WIDTH, "addr_width": self.addr_width,
                           "registers": regs}, indent=2) + "\n"

    def to_markdown(self) -> str:
        """The map as a Markdown document."""
        lines = [f"# Register map: {self.name}", "",
                 f"Word-addressed, {DATA_WIDTH}-bit data, {self.addr_width}-bit address (`bus__addr`). A write "
                 "(`bus__we` high with `bus__wdata`) takes effect at the next rising edge; `bus__rdata` shows the "
                 "addressed register one cycle after `bus__addr` (sign-extended for signed registers, 0 for "
                 "unmapped addresses). Writes to read-only registers are ignored; writing 1s to a `w1c` register "
                 "clears those bits. Reset (`rst`) restores every register to its reset value.", "",
                 "| name | offset | count | width | signed | access | reset | description |",
                 "|---|---|---|---|---|---|---|---|"]
        for r in self.registers:
            reset = str(int(r.reset[0])) if len(set(r.reset)) == 1 else "from the CompiledModel (per element)"
            lines.append(f"| {r.name} | 0x{r.offset:03x} | {r.count} | {r.width} | {'yes' if r.signed else 'no'} | "
                         f"{ACCESS_DOC[r.access]} | {reset} | {r.doc} |")
        return "\n".join(lines) + "\n"
