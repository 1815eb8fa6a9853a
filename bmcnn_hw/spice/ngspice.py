"""The process's one ngspice (PySpice's NgSpiceShared): load a netlist, run commands, read vectors.

ngspice's shared library holds one circuit per process; this module is the only one that
touches it, and imports nothing of the executors (the sky130 characterisation uses it too).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..errors import SimulationError, ToolNotFound

INSTALL_HINT = "install it with `apt-get install ngspice libngspice0` (Debian/Ubuntu)"


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C while ngspice runs a command, then deliver it once the command returns.

    A KeyboardInterrupt raised inside one of ngspice's output callbacks is swallowed by cffi
    ("Exception ignored from cffi callback") and the run goes on; noting the signal instead
    stops the run cleanly after the current analysis. The held signal goes to the handler that
    was installed (Python's default raises KeyboardInterrupt). Where Ctrl-C is ignored (pool
    workers) or this is not the main thread, nothing changes.
    """
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        if callable(previous):
            previous(signal.SIGINT, None)
        raise KeyboardInterrupt


@contextlib.contextmanager
def _ascii_path(netlist: Path) -> Iterator[Path]:
    """``netlist`` by a name ngspice's command line can take: PySpice sends commands as ASCII, so a
    netlist under a non-ASCII directory (``résultats/``) is sourced through a link to its directory
    from a temp directory (its relative ``.include`` lines resolve there), removed once it is read."""
    if str(netlist).isascii():
        yield netlist
        return
    roots = [r for r in (tempfile.gettempdir(), "/tmp") if r.isascii() and os.path.isdir(r)]
    if not roots or not netlist.name.isascii():
        raise SimulationError(f"{netlist}: ngspice takes ASCII paths only, and no ASCII temp directory is there to "
                              "link it from; move the output to an ASCII path")
    alias = Path(tempfile.mkdtemp(prefix="bmcnn-hw-ngspice-", dir=roots[0]))
    try:
        (alias / "d").symlink_to(netlist.parent, target_is_directory=True)
        yield alias / "d" / netlist.name
    finally:
        shutil.rmtree(alias, ignore_errors=True)  # the link, not what it points to


class NgSpice:
    """One shared ngspice instance per process (ngspice's shared library is a singleton)."""

    _instance: NgSpice | None = None

    def __init__(self) -> None:
        logging.getLogger("PySpice").setLevel(logging.CRITICAL)
        try:
            from PySpice.Spice.NgSpice.Shared import NgSpiceShared, ffi
            self._ng = NgSpiceShared.new_instance()
        except ImportError as exc:
            raise ToolNotFound(f"PySpice is not installed ({exc}); run `pip install PySpice==1.5`") from None
        except Exception as exc:  # cffi raises OSError (or others) when libngspice is missing  # noqa: BLE001
            raise ToolNotFound(f"ngspice shared library not found ({exc}); {INSTALL_HINT}") from None
        self._ffi = ffi
        # One solver thread: libngspice's OpenMP device loading made identical sweeps take
        # from 10 ms to 21 s on a busy 2-core machine.
        self._ng.exec_command("set num_threads=1")
        self.current: Path | None = None
        self._stamp: list[tuple[int, int]] = []
        self.row_volts: dict[int, float] = {}
        """Row driver voltages set by ``alter`` on the current circuit (empty: as in the netlist)."""

    @classmethod
    def get(cls) -> NgSpice:
        """The process-wide instance (created on first use)."""
        if cls._instance is None:
            cls._instance = NgSpice()
        return cls._instance

    def engine(self) -> str:
        """Name, version and build date of the loaded ngspice library (e.g. ``ngspice-39 built
        Sun Feb  5 13:44:35 UTC 2023``), what a cached read records as its engine."""
        said = self.command("version -s", "ngspice version")
        name = re.search(r"ngspice-[\w.+-]+", said)
        built = re.search(r"Creation Date:\s*(.+)", said)
        return " ".join(filter(None, [name.group(0) if name else "ngspice",
                                      f"built {built.group(1).strip()}" if built else ""]))

    def command(self, cmd: str, context: str) -> str:
        """Run an ngspice command.

        Raises:
            SimulationError: naming ``context`` (the netlist) and quoting ngspice.
        """
        from PySpice.Spice.NgSpice.Shared import NgSpiceCommandError

        try:
            with _deferred_interrupt():
                output: str = self._ng.exec_command(cmd)  # PySpice is untyped: ngspice's stdout, joined
                return output
        except (NgSpiceCommandError, NameError) as exc:
            said = " ".join((self._ng.stderr or self._ng.stdout or str(exc)).split())
            raise SimulationError(f"{context}: ngspice failed on `{cmd}`: {said[:400]}") from None

    def load(self, netlist: Path, hs_models: bool = False) -> None:
        """Make ``netlist`` the current circuit (no-op if it already is and neither it nor its
        ``.sub`` file changed since).

        ``hs_models``: parse in ngspice's HSPICE-compatible mode (``ngbehavior=hsa``), which the
        sky130 models need to load fast (it drops unused size bins before expanding subcircuits).
        """
        netlist = Path(netlist).resolve()
        if not netlist.is_file():
            raise SimulationError(f"{netlist}: netlist not found")
        stamp = [(st.st_mtime_ns, st.st_size)
                 for st in (f.stat() for f in (netlist, netlist.with_suffix(".sub")) if f.is_file())]
        if self.current == netlist and self._stamp == stamp:
            return
        self.unload()
        # ngspice reads ngbehavior whenever it reads a netlist, so it applies to this one only.
        self.command("set ngbehavior=hsa" if hs_models else "unset ngbehavior", str(netlist))
        with _ascii_path(netlist) as source:
            self.command(f"source {source}", str(netlist))
        self.current, self._stamp = netlist, stamp
        self.row_volts = {}

    def unload(self) -> None:
        """Remove the current circuit, if any."""
        if self.current is not None:
            self.command("remcirc", str(self.current))
            self.current = None
            self.row_volts = {}

    def vector(self, name: str) -> npt.NDArray[np.float64]:
        """A real vector of the last analysis as a float64 array (a copy)."""
        info = self._ng._ngspice_shared.ngGet_Vec_Info(name.encode())
        if info == self._ffi.NULL or info.v_length < 1 or info.v_realdata == self._ffi.NULL:
            raise SimulationError(f"{self.current}: ngspice produced no real vector {name!r}")
        return np.frombuffer(self._ffi.buffer(info.v_realdata, info.v_length * 8), dtype=np.float64).copy()

    def value(self, vector: str) -> float:
        """A real scalar vector of the last analysis (e.g. ``v.xtp0.vsense#branch``)."""
        info = self._ng._ngspice_shared.ngGet_Vec_Info(vector.encode())
        if info == self._ffi.NULL or info.v_length < 1:
            raise SimulationError(f"{self.current}: ngspice produced no vector {vector!r}")
        return float(info.v_realdata[info.v_length - 1])

    def complex_value(self, vector: str) -> complex:
        """The last point of a complex vector of the last analysis (an AC analysis' current)."""
        info = self._ng._ngspice_shared.ngGet_Vec_Info(vector.encode())
        if info == self._ffi.NULL or info.v_length < 1 or info.v_compdata == self._ffi.NULL:
            raise SimulationError(f"{self.current}: ngspice produced no complex vector {vector!r}")
        point = info.v_compdata[info.v_length - 1]
        return complex(point.cx_real, point.cx_imag)

    def operating_point(self) -> None:
        """Solve the DC operating point of the current circuit."""
        self.command("destroy all", str(self.current))
        self.command("op", str(self.current))
