"""Progress that shows life: tqdm bars on a terminal, periodic plain log lines elsewhere.

On a terminal a bar redraws in place. Written to a file or a pipe, a redrawing bar becomes one
long line of carriage returns, so there each bar prints a plain line (position, rate, time left)
at most every :data:`LOG_EVERY_S` seconds, and once at the end. Long single steps (a synthesis,
a gate-level simulation) get a :func:`heartbeat` that says they are still running.
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm import tqdm

LOG_EVERY_S = 10.0
"""Seconds between the plain progress lines written when stderr is not a terminal."""

PLAIN_FORMAT = "{desc}: {n_fmt}/{total_fmt} {unit} ({percentage:.0f}%), {elapsed} elapsed, {remaining} left, {rate_fmt}"
PLAIN_FORMAT_NO_TOTAL = "{desc}: {n_fmt} {unit}, {elapsed} elapsed, {rate_fmt}"


_CONTROL = re.compile(r"\r|\x1b\[[0-9;]*[A-Za-z]")
"""Carriage returns and ANSI cursor moves (tqdm's ``ESC[A`` for nested bars)."""


class _LogLines:
    """A stream for tqdm that turns each redraw (``\\r`` + text) into one plain line."""

    def __init__(self, stream):
        self.stream = stream
        self.last = ""

    def write(self, text: str) -> None:
        """Write the text of a redraw as its own line; drop carriage returns, cursor moves, blank
        lines and a line equal to the one before (a bar's close repeats its last redraw)."""
        line = _CONTROL.sub("", text).strip()
        if line and line != self.last:
            self.stream.write(line + "\n")
            self.last = line

    def flush(self) -> None:
        """Flush the underlying stream."""
        self.stream.flush()


def on_terminal() -> bool:
    """Whether stderr is an interactive terminal (bars redraw in place) or a file or pipe (plain lines)."""
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def bar(iterable: Iterable | None = None, *, desc: str, unit: str = "it", total: float | None = None,
        disable: bool = False, leave: bool = True, **kwargs: Any) -> tqdm:
    """A tqdm bar over ``iterable`` (or updated by hand), plain periodic lines when stderr is not a terminal."""
    if not disable and not on_terminal():
        known = total is not None or (iterable is not None and hasattr(iterable, "__len__"))
        kwargs = {**kwargs, "file": _LogLines(sys.stderr), "mininterval": LOG_EVERY_S, "maxinterval": LOG_EVERY_S,
                  "bar_format": PLAIN_FORMAT if known else PLAIN_FORMAT_NO_TOTAL, "leave": True}
    else:
        kwargs = {"leave": leave, **kwargs}
    return tqdm(iterable, desc=desc, unit=unit, total=total, disable=disable, **kwargs)


def say(text: str) -> None:
    """Print a line to stderr without breaking a bar that is being drawn."""
    tqdm.write(text, file=sys.stderr)


@contextlib.contextmanager
def heartbeat(desc: str, enabled: bool = True, every_s: float | None = None) -> Iterator[None]:
    """Say that a long single step (an external tool, a big solve) is still running.

    On a terminal a bar shows the elapsed time, redrawn every second; elsewhere a line
    ``<desc>: still running, <elapsed> elapsed`` every ``every_s`` seconds (default
    :data:`LOG_EVERY_S`). Nothing is printed when the step ends before the first beat.
    """
    if not enabled:
        yield
        return
    interval = every_s or (1.0 if on_terminal() else LOG_EVERY_S)
    start, stop = time.monotonic(), threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            elapsed = tqdm.format_interval(time.monotonic() - start)
            if on_terminal():
                sys.stderr.write(f"\r{desc}: running, {elapsed} elapsed")
            else:
                sys.stderr.write(f"{desc}: still running, {elapsed} elapsed\n")
            sys.stderr.flush()

    thread = threading.Thread(target=beat, daemon=True, name=f"heartbeat: {desc}")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        if on_terminal() and time.monotonic() - start >= interval:
            sys.stderr.write("\r\033[K")  # clear the heartbeat line
            sys.stderr.flush()
