"""The only module that talks to ngspice (in-process, through PySpice's NgSpiceShared).

A tile netlist is loaded once (``source``); an input vector then costs ``alter`` of the
rows that changed, one ``op`` and a read of the column sense and driver currents. Tiles
linear in their binary inputs (linear cells, or any cell behind ideal wires, drivers and
TIAs) may be characterised once by superposition; otherwise each distinct input vector of a
batch is solved once, for nonlinear cells many vectors per DC sweep of a stepped netlist.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from ..artefact import CompiledModel
from ..errors import SimulationError, ToolNotFound
from ..golden.crossbar import TileRead, split_columns
from .netlist import driver_branch, sense_branch, tile_netlist_name
from .stepped import stepped_netlist

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
        # One solver thread: libngspice's OpenMP device loading made identical sweeps take
        # from 10 ms to 21 s on a busy 2-core machine.
        self._ng.exec_command("set num_threads=1")
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

    def load(self, netlist: Path, hs_models: bool = False) -> None:
        """Make ``netlist`` the current circuit (no-op if it already is).

        ``hs_models``: parse in ngspice's HSPICE-compatible mode (``ngbehavior=hsa``), which the
        sky130 models need to load fast (it drops unused size bins before expanding subcircuits).
        """
        netlist = Path(netlist).resolve()
        if self.current == netlist:
            return
        if not netlist.is_file():
            raise SimulationError(f"{netlist}: netlist not found")
        self.unload()
        # ngspice reads ngbehavior whenever it reads a netlist, so it applies to this one only.
        self.command("set ngbehavior=hsa" if hs_models else "unset ngbehavior", str(netlist))
        self.command(f"source {netlist}", str(netlist))
        self.current = netlist

    def unload(self) -> None:
        """Remove the current circuit, if any."""
        if self.current is not None:
            self.command("remcirc", str(self.current))
            self.current = None

    def vector(self, name: str) -> np.ndarray:
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

    def operating_point(self) -> None:
        """Solve the DC operating point of the current circuit."""
        self.command("destroy all", str(self.current))
        self.command("op", str(self.current))


class SpiceReader:
    """Tile reader for :class:`~bmcnn_hw.golden.crossbar.CrossbarAccumulator` backed by ngspice.

    Reads the netlists in ``netlist_dir``, which must have been written for ``chip``.

    Modes:
        ``superposition``: every tile netlist in the library is linear (resistors, linear
        controlled sources), so ngspice solves it once per row with that row at V_read;
        the column and driver currents of any input are then exact sums of those
        responses. Before use, the response is checked on ``check_vectors`` random
        inputs solved directly by ngspice (relative error <= ``check_rtol``).
        ``per-vector``: one ngspice solve per distinct input vector (what a nonlinear
        device model needs): ``alter`` + ``op`` per vector, or (``stepped``, the default for
        nonlinear cells) up to ``STEP_BATCH`` vectors per DC sweep of a stepped netlist.
        ``auto``: per tile the cheaper of the two: superposition once a batch has more
        distinct inputs than the tile has rows (plus the check solves), per-vector solves
        otherwise. Every netlist this writer emits is linear; a tile whose linearity check
        fails is marked nonlinear (``nonlinear_tiles``) and solved per vector from then on.
    """

    LINEAR_MODELS = ("memristor_read", "tia_ideal", "tia_opamp")
    STEP_BATCH = 64
    """Input vectors per stepped DC sweep."""

    def __init__(self, model: CompiledModel, chip, netlist_dir: Path, mode: str = "auto",
                 check_vectors: int = 3, check_rtol: float = 1e-9, stepped: bool | None = None):
        if mode not in ("auto", "superposition", "per-vector"):
            raise SimulationError(f"SPICE mode must be auto, superposition or per-vector, not {mode!r}")
        self.model, self.chip, self.netlist_dir = model, chip, Path(netlist_dir)
        self.mode = mode
        self.check_vectors, self.check_rtol = check_vectors, check_rtol
        self.ng = NgSpice.get()
        p = chip.params
        self.level_linear = chip.cell.linear or not (p.has_parasitics or chip.readout.tia_input_ohm)
        """Whether superposition of per-row solves is exact for binary inputs (as in PhysicsReader)."""
        if mode == "superposition" and not self.level_linear:
            raise SimulationError("SPICE mode 'superposition' needs tiles linear in their inputs; nonlinear "
                                  f"'{p.cell}' cells with wire, driver or TIA resistance need mode 'per-vector'")
        self.stepped = (not chip.cell.linear) if stepped is None else stepped
        """Per-vector solves step through a batch in one DC sweep (default for nonlinear cells)
        instead of ``alter`` + ``op`` per vector."""
        self.row_state: dict[int, float] = {}
        self.solves = 0
        self._responses: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self.nonlinear_tiles: set[tuple] = set()

    def _load(self, index: int, rt: int, ct: int) -> None:
        path = self.netlist_dir / tile_netlist_name(self.model.layers[index], rt, ct)
        if self.ng.current != path.resolve():
            self.ng.load(path, hs_models=self.chip.params.cell == "1t1r")
            self.row_state = {}

    def _solve(self, volts: np.ndarray, n_phys: int) -> tuple[np.ndarray, np.ndarray]:
        """One operating point: physical column currents (P,) and driver currents (R,)."""
        for r, v in enumerate(volts):
            if self.row_state.get(r) != v:
                self.ng.command(f"alter vr{r} dc = {float(v)!r}", str(self.ng.current))
                self.row_state[r] = v
        self.ng.operating_point()
        self.solves += 1
        cols = np.array([self.ng.value(sense_branch(j)) for j in range(n_phys)])
        drivers = -np.array([self.ng.value(driver_branch(r)) for r in range(len(volts))])
        return cols, drivers

    def _solve_stepped(self, index: int, rt: int, ct: int, volts: np.ndarray, n_phys: int):
        """Column (K, P) and driver (K, R) currents of ``volts`` (K, R), ``STEP_BATCH`` vectors per
        DC sweep of a stepped netlist (:mod:`bmcnn_hw.spice.stepped`)."""
        cir = self.netlist_dir / tile_netlist_name(self.model.layers[index], rt, ct)
        if not cir.is_file():
            raise SimulationError(f"{cir}: netlist not found")
        cols, drivers = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for start in range(0, len(volts), self.STEP_BATCH):
                chunk = volts[start:start + self.STEP_BATCH]
                path = Path(tmp) / f"{cir.stem}_{start}.cir"
                path.write_text(stepped_netlist(cir, chunk))
                self.ng.load(path, hs_models=self.chip.params.cell == "1t1r")
                self.row_state = {}
                self.ng.command("destroy all", f"{cir} (stepped)")
                self.ng.command(f"dc vsel 0 {len(chunk) - 1} 1", f"{cir} (stepped)")
                self.solves += len(chunk)
                cols.append(np.stack([self.ng.vector(sense_branch(j)) for j in range(n_phys)], axis=1))
                drivers.append(-np.stack([self.ng.vector(driver_branch(r)) for r in range(volts.shape[1])], axis=1))
                self.ng.unload()
        return np.concatenate(cols), np.concatenate(drivers)

    def _n_phys(self, used_cols: int) -> int:
        return used_cols + 1 if self.chip.encoding == "reference" else 2 * used_cols

    def response(self, index: int, rt: int, ct: int, used_rows: int, used_cols: int) -> tuple[np.ndarray, np.ndarray]:
        """(transfer (R, P), admittance (R, R)) of a tile, characterised by ngspice and checked."""
        key = (index, rt, ct)
        if key in self._responses:
            return self._responses[key]
        self._load(index, rt, ct)
        v_read, n_phys = float(self.chip.params.v_read_v), self._n_phys(used_cols)
        transfer, admittance = np.zeros((used_rows, n_phys)), np.zeros((used_rows, used_rows))
        for r in range(used_rows):
            unit = np.zeros(used_rows)
            unit[r] = v_read
            cols, drivers = self._solve(unit, n_phys)
            transfer[r], admittance[r] = cols / v_read, drivers / v_read
        rng = np.random.default_rng([index, rt, ct])
        for _ in range(self.check_vectors):
            levels = [-v_read, 0.0, v_read] if self.model.hardware.geometry.input_mode == "bipolar" else [0.0, v_read]
            volts = rng.choice(levels, size=used_rows)
            cols, _ = self._solve(volts, n_phys)
            predicted = volts @ transfer
            scale = max(float(np.max(np.abs(cols))), 1e-30)
            if np.max(np.abs(cols - predicted)) > self.check_rtol * scale:
                raise SimulationError(f"{self.ng.current}: tile response is not linear (superposition off by "
                                      f"{np.max(np.abs(cols - predicted)) / scale:.1e}); use mode='per-vector'")
        self._responses[key] = (transfer, admittance)
        return transfer, admittance

    def read(self, layer_index: int, rt: int, ct: int, volts: np.ndarray, used_cols: int):
        """Currents for row voltages ``volts`` (M, used_rows), from ngspice."""
        unique, inverse = np.unique(volts, axis=0, return_inverse=True)
        key = (layer_index, rt, ct)
        cheaper = len(unique) > volts.shape[1] + self.check_vectors
        linear = None
        if self.mode == "superposition" or (self.mode == "auto" and self.level_linear and key not in self.nonlinear_tiles
                                            and (key in self._responses or cheaper)):
            try:
                linear = self.response(layer_index, rt, ct, volts.shape[1], used_cols)
            except SimulationError:
                if self.mode == "superposition":
                    raise
                self.nonlinear_tiles.add(key)
        if linear is not None:
            i_phys, i_drivers = volts @ linear[0], volts @ linear[1]
        elif self.stepped:
            i_phys, i_drivers = self._solve_stepped(layer_index, rt, ct, unique, self._n_phys(used_cols))
            inverse = inverse.reshape(-1)
            i_phys, i_drivers = i_phys[inverse], i_drivers[inverse]
        else:
            self._load(layer_index, rt, ct)
            solved = [self._solve(v, self._n_phys(used_cols)) for v in unique]
            inverse = inverse.reshape(-1)
            i_phys = np.stack([c for c, _ in solved])[inverse]
            i_drivers = np.stack([d for _, d in solved])[inverse]
        i_plus, i_minus = split_columns(i_phys, self.chip.encoding)
        return TileRead(i_plus, i_minus, i_drivers)
