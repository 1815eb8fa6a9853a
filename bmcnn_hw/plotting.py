"""The one figure backend of every plot the toolkit writes (learning curves, sweeps, lifetime,
PPA breakdowns, explore fronts)."""

from __future__ import annotations

from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend: plots go to files, and no display
    (or GUI toolkit) is needed, as on a server or in CI. Imported on first use (matplotlib is slow
    to import and most commands draw nothing)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
