"""Switching activity of every net from a VCD: transitions per clock cycle and fraction of time high."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import SimulationError


@dataclass(frozen=True)
class NetActivity:
    """Toggle statistics of one single-bit net over the measured window."""

    toggles: int
    """0->1 and 1->0 transitions (x/z changes not counted)."""
    high_fraction: float
    """Fraction of the window the net was 1 (OpenSTA's duty)."""


def _bit_names(name: str, ref: str, width: int) -> list[str]:
    """Net names of a VCD variable's bits, MSB first (``bus[7]`` ... ``bus[0]``)."""
    if width == 1:
        return [name if not ref.startswith("[") else f"{name}{ref}"]
    hi, lo = (int(x) for x in ref.strip("[]").split(":"))
    step = -1 if hi >= lo else 1
    return [f"{name}[{k}]" for k in range(hi, lo + step, step)]


def _parse_header(lines: list[str]) -> tuple[dict[str, list[str]], int]:
    """VCD identifier code -> bit names of the top scope's variables; number of header lines."""
    codes: dict[str, list[str]] = {}
    depth = 0
    for count, line in enumerate(lines, 1):
        words = line.split()
        if not words:
            continue
        if words[0] == "$scope":
            depth += 1
        elif words[0] == "$upscope":
            depth -= 1
        elif words[0] == "$var" and depth == 2:  # the testbench, then the DUT scope
            ref = words[5] if len(words) > 6 and words[5].startswith("[") else ""
            codes.setdefault(words[3], _bit_names(words[4], ref, int(words[2])))
        elif words[0] == "$enddefinitions":
            return codes, count
    raise SimulationError("VCD has no $enddefinitions: the simulation did not write its waveform")


def net_activity(vcd: Path, t_start: int, t_end: int) -> dict[str, NetActivity]:
    """Per-bit toggles and time high of the DUT's nets in [t_start, t_end) (VCD time units).

    Only value changes inside the window count; the value at t_start is the last one before it.
    """
    lines = Path(vcd).read_text().splitlines()
    codes, start = _parse_header(lines)
    value = {code: ["x"] * len(bits) for code, bits in codes.items()}
    toggles = {code: [0] * len(bits) for code, bits in codes.items()}
    high = {code: [0] * len(bits) for code, bits in codes.items()}
    since = {code: [t_start] * len(bits) for code, bits in codes.items()}
    now = 0
    for line in lines[start:]:
        if not line:
            continue
        head = line[0]
        if head == "#":
            now = int(line[1:])
            if now >= t_end:
                break
            continue
        if head in "01xz":
            bits, code = line[0], line[1:]
        elif head == "b":
            text, code = line[1:].split()
            bits = text.rjust(len(codes.get(code, text)), "0" if text[0] in "01" else text[0])
        else:
            continue
        if code not in codes:
            continue
        t = max(now, t_start)
        old = value[code]
        for k, bit in enumerate(bits):
            if bit == old[k]:
                continue
            if old[k] == "1":
                high[code][k] += t - since[code][k]
            if now >= t_start and old[k] in "01" and bit in "01":
                toggles[code][k] += 1
            since[code][k] = t
            old[k] = bit
    window = max(t_end - t_start, 1)
    result = {}
    for code, names in codes.items():
        for k, name in enumerate(names):
            held = high[code][k] + (t_end - since[code][k] if value[code][k] == "1" else 0)
            result[name] = NetActivity(toggles[code][k], held / window)
    return result
