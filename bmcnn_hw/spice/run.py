"""The only module that talks to ngspice (in-process, through PySpice's NgSpiceShared).

A tile netlist is loaded once (``source``); each distinct input vector then costs
``alter`` of the rows that changed, one ``op`` and a read of the column sense
currents. Identical input vectors within a batch are read once (the circuit is
deterministic), which matters for convolutions over mostly blank MNIST borders.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..artefact import CompiledModel
from ..errors import SimulationError, ToolNotFound
from .netlist import sense_branch, tile_netlist_name

INSTALL_HINT = "install it with `apt-get install ngspice libngspice0` (Debian/Ubuntu)"


class NgSpice:
    """One shared ngspice instance per process (ngspice's shared library is a singleton)."""

    _instance: "NgSpice | None" = None

    def __init__(self):
        logging.getLogger("PySpice").setLevel(logging.CRITICAL)
        try:
            from PySpice.Spice.NgSpice.Shared import NgSpiceShared, ffi
            self._ng = NgSpiceShared.new_instance()
        except ImportError as exc:
            raise ToolNotFound(f"PySpice is not installed ({exc}); run `pip install PySpice==1.5`") from None
        except Exception as exc:  # cffi raises OSError (or others) when libngspice is missing
            raise ToolNotFound(f"ngspice shared library not found ({exc}); {INSTALL_HINT}") from None
        self._ffi = ffi
        self.current: Path | None = None

    @classmethod
    def get(cls) -> "NgSpice":
        """The process-wide instance (created on first use)."""
        if cls._instance is None:
            cls._instance = NgSpice()
        return cls._instance

    def command(self, cmd: str, context: str) -> str:
        """Run an ngspice command.

        Raises:
            SimulationError: naming ``context`` (the netlist) and quoting ngspice.
        """
        from PySpice.Spice.NgSpice.Shared import NgSpiceCommandError

        try:
            return self._ng.exec_command(cmd)
        except (NgSpiceCommandError, NameError) as exc:
            said = " ".join((self._ng.stderr or self._ng.stdout or str(exc)).split())
            raise SimulationError(f"{context}: ngspice failed on `{cmd}`: {said[:400]}") from None

    def load(self, netlist: Path) -> None:
        """Make ``netlist`` the current circuit (no-op if it already is)."""
        netlist = Path(netlist).resolve()
        if self.current == netlist:
            return
        if not netlist.is_file():
            raise SimulationError(f"{netlist}: netlist not found")
        if self.current is not None:
            self.command("remcirc", str(self.current))
            self.current = None
        self.command(f"source {netlist}", str(netlist))
        self.current = netlist

    def value(self, vector: str) -> float:
        """A real scalar vector of the last analysis (e.g. ``v.xtp0.vsense#branch``)."""
        info = self._ng._ngspice_shared.ngGet_Vec_Info(vector.encode())
        if info == self._ffi.NULL or info.v_length < 1:
            raise SimulationError(f"{self.current}: ngspice produced no vector {vector!r}")
        return float(info.v_realdata[info.v_length - 1])

    def operating_point(self) -> None:
        """Solve the DC operating point of the current circuit."""
        self.command("destroy all", str(self.current))
        self.command("op", str(self.current))


class SpiceReader:
    """Tile reader for :class:`~bmcnn_hw.golden.crossbar.CrossbarAccumulator` backed by ngspice.

    Reads the netlists in ``netlist_dir``, which must have been written for ``chip``.
    """

    def __init__(self, model: CompiledModel, chip, netlist_dir: Path):
        self.model, self.chip, self.netlist_dir = model, chip, Path(netlist_dir)
        self.ng = NgSpice.get()
        self.v_read = repr(float(chip.params.v_read_v))
        self.row_state: dict[int, bool] = {}
        self.solves = 0

    def _load(self, index: int, rt: int, ct: int) -> None:
        path = self.netlist_dir / tile_netlist_name(self.model.layers[index], rt, ct)
        if self.ng.current != path.resolve():
            self.ng.load(path)
            self.row_state = {}

    def _solve(self, vector: np.ndarray, used_cols: int) -> np.ndarray:
        for r, on in enumerate(vector.astype(bool)):
            if self.row_state.get(r) != on:
                self.ng.command(f"alter vr{r} dc = {self.v_read if on else '0'}", str(self.ng.current))
                self.row_state[r] = on
        self.ng.operating_point()
        self.solves += 1
        return np.array([[self.ng.value(sense_branch(side, c)) for c in range(used_cols)] for side in "pm"])

    def read_currents(self, layer_index: int, rt: int, ct: int, bits: np.ndarray,
                      used_cols: int) -> tuple[np.ndarray, np.ndarray]:
        """Column currents (A) of G+ and G- columns, each (M, used_cols), solved by ngspice."""
        self._load(layer_index, rt, ct)
        unique, inverse = np.unique(bits, axis=0, return_inverse=True)
        currents = np.stack([self._solve(v, used_cols) for v in unique])  # (U, 2, cols)
        currents = currents[inverse.reshape(-1)]
        return currents[:, 0, :], currents[:, 1, :]
