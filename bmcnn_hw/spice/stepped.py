"""Many input vectors in one ngspice analysis: the tile's drivers step through them in a DC sweep.

A tile netlist drives row r with ``Vr<r> in<r> 0 DC 0``. For a batch of K input vectors the
stepped netlist instead drives each row that changes within the batch from a behavioural
source whose value is a piecewise-linear function of a dummy sweep voltage ``sel``:

    Br<r> b<r> 0 V = pwl(v(sel), 0, v_0, 1, v_1, ..., K-1, v_{K-1})
    Vr<r> in<r> b<r> DC 0      (a 0 V source in series, whose branch current is the driver's)

and ``dc vsel 0 K-1 1`` solves vector k at ``sel = k``. Each point of a DC sweep starts
Newton from the previous point's solution, so a nonlinear tile costs a few iterations per
vector instead of a cold operating point per vector; the results equal separate operating
points (checked in the tests). Rows constant over the batch keep a plain DC source.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PAIRS_PER_LINE = 12


def _pwl(r: int, values: np.ndarray) -> list[str]:
    pairs = [f"{k}, {float(v)!r}" for k, v in enumerate(values)]
    lines = [f"Br{r} b{r} 0 V = pwl(v(sel),"]
    for start in range(0, len(pairs), PAIRS_PER_LINE):
        chunk = ", ".join(pairs[start:start + PAIRS_PER_LINE])
        last = start + PAIRS_PER_LINE >= len(pairs)
        lines.append(f"+ {chunk}{')' if last else ','}")
    return lines + [f"Vr{r} in{r} b{r} DC 0"]


def stepped_netlist(tile_cir: Path, volts: np.ndarray) -> str:
    """Text of a netlist solving the rows drives ``volts`` (K, R) of ``tile_cir`` as one DC sweep.

    Include paths become absolute (the stepped netlist lives elsewhere); every other line of the
    tile netlist is kept except its row drivers and analysis.
    """
    tile_cir = Path(tile_cir).resolve()
    lines = [f"* bmcnn-hw: {len(volts)} input vectors of {tile_cir.name} stepped by `dc vsel 0 {len(volts) - 1} 1`"]
    for line in tile_cir.read_text().splitlines()[1:]:
        word = line.split(maxsplit=1)[0].lower() if line.strip() else ""
        if word == ".include":
            lines.append(f".include {tile_cir.parent / line.split(maxsplit=1)[1].strip()}")
        elif word.startswith("vr") or word in (".op", ".end"):
            continue
        else:
            lines.append(line)
    for r in range(volts.shape[1]):
        column = volts[:, r]
        if np.all(column == column[0]):
            lines.append(f"Vr{r} in{r} 0 DC {float(column[0])!r}")
        else:
            lines += _pwl(r, column)
    return "\n".join(lines + ["Vsel sel 0 DC 0", ".end"]) + "\n"
