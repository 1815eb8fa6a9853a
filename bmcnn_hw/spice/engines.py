"""Which SPICE engine a run uses (``--engine``), how reports name it, and the default number
of worker processes."""

from __future__ import annotations

import functools
import os

from ..golden.chip import Chip
from .ngspice import NgSpice

ENGINES = ("ngspice", "vacask")
"""SPICE engines for tile reads (ngspice is the reference)."""


def resolve_engine(engine: str, chip: Chip, *, transient: bool = False, scheduler: str | None = None) -> str:
    """The engine a run on ``chip`` uses: ``engine`` itself, or for ``auto`` the faster one installed.

    ``auto`` is VACASK where it was measured faster, when it is installed here and no Dask
    ``scheduler`` is named (its workers are only required to have ngspice): 1T1R cells whose reads
    are solved one input at a time (wires, driver or TIA input resistance; every ``transient``),
    and the DC reads of linear cells behind wires (KLU: a read of a 768 x 129 met1 tile in 7 s,
    where one ngspice solve of it had not finished in 14 minutes). A ``transient`` of linear cells
    behind wires is ``linear``, bmcnn-hw's own solver (:mod:`bmcnn_hw.ppa.linear_transient`: that
    tile in minutes, where ngspice had not finished in 40). Otherwise ngspice, whose superposition
    serves linear reads in one solve per tile row and which alone runs sinh cells."""
    if engine != "auto":
        return engine
    wired_linear = chip.params.cell == "linear" and chip.params.r_wire_ohm > 0
    if transient and wired_linear:
        return "linear"
    one_by_one = transient or not chip.level_linear
    if (wired_linear or (chip.params.cell == "1t1r" and one_by_one)) and scheduler is None:
        from .vacask import installed

        if installed():
            return "vacask"
    return "ngspice"


@functools.cache
def engine_label(engine: str) -> str:
    """Name, version (and, for ngspice, build date) of SPICE engine ``engine``, as reports give it
    (asked once per process: the read cache keys every tile with it)."""
    if engine == "vacask":
        from .vacask import engine_name

        return engine_name()
    return NgSpice.get().engine()


def default_jobs() -> int:
    """Worker processes for SPICE reads when the user does not say: one per core this process
    may run on."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


