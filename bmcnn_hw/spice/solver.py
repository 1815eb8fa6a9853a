"""ngspice solves of tile netlists in one process: the solver, the jobs a worker process (or a
Dask worker, :mod:`bmcnn_hw.spice.shipped`) runs, and their results.

A tile netlist is loaded once (``source``); an input vector then costs ``alter`` of the rows
that changed, one ``op`` and a read of the column sense and driver currents; nonlinear cells
step many vectors through one DC sweep of a stepped netlist. A linear tile's response is one
solve per row (superposition), checked against direct solves.
"""

from __future__ import annotations

import dataclasses
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SimulationError, ToolNotFound
from .netlist import driver_branch, sense_branch
from .ngspice import NgSpice
from .shipped import ShippedJob, materialise
from .stepped import stepped_netlist

Currents = tuple[np.ndarray, np.ndarray]
"""A solve's (column currents, driver currents), or a tile's (transfer, admittance) response."""


class NotLinearError(SimulationError):
    """A tile's superposition response fails its check against direct solves."""


class TileSolver:
    """ngspice solves of tile netlists in this process (the in-process solver of a
    :class:`SpiceReader`, or a worker's)."""

    STEP_BATCH = 64
    """Input vectors per stepped DC sweep."""

    def __init__(self) -> None:
        self._ng: NgSpice | None = None

    @property
    def ng(self) -> NgSpice:
        """This process's ngspice, started on first use (a VACASK-only solver never needs it)."""
        if self._ng is None:
            self._ng = NgSpice.get()
        return self._ng

    def load(self, cir: Path, hs_models: bool) -> None:
        """Make tile netlist ``cir`` the current circuit (kept if it already is)."""
        self.ng.load(cir, hs_models=hs_models)

    def operating_point(self, volts: np.ndarray, n_phys: int) -> tuple[np.ndarray, np.ndarray]:
        """One operating point of the loaded tile: physical column currents (P,) and driver
        currents (R,)."""
        for r, v in enumerate(volts):
            if self.ng.row_volts.get(r) != v:
                self.ng.command(f"alter vr{r} dc = {float(v)!r}", str(self.ng.current))
                self.ng.row_volts[r] = v
        self.ng.operating_point()
        cols = np.array([self.ng.value(sense_branch(j)) for j in range(n_phys)])
        drivers = -np.array([self.ng.value(driver_branch(r)) for r in range(len(volts))])
        return cols, drivers

    def vectors(self, cir: Path, hs_models: bool, volts: np.ndarray, n_phys: int,
                stepped: bool, engine: str = "ngspice") -> tuple[np.ndarray, np.ndarray]:
        """Column (K, P) and driver (K, R) currents of row voltages ``volts`` (K, R): one
        ``alter`` + ``op`` per vector, or ``STEP_BATCH`` vectors per stepped DC sweep (ngspice), or
        one VACASK run of ``alter`` + ``op`` per vector (``engine`` vacask)."""
        if engine == "vacask":
            from .vacask import solve_vectors

            return solve_vectors(cir, volts, n_phys)
        if not stepped:
            self.load(cir, hs_models)
            solved = [self.operating_point(v, n_phys) for v in volts]
            return np.stack([c for c, _ in solved]), np.stack([d for _, d in solved])
        if not Path(cir).is_file():
            raise SimulationError(f"{cir}: netlist not found")
        cols: list[np.ndarray] = []
        drivers: list[np.ndarray] = []
        with tempfile.TemporaryDirectory() as tmp:
            for start in range(0, len(volts), self.STEP_BATCH):
                chunk = volts[start:start + self.STEP_BATCH]
                path = Path(tmp) / f"{Path(cir).stem}_{start}.cir"
                path.write_text(stepped_netlist(cir, chunk))
                self.ng.load(path, hs_models=hs_models)
                self.ng.command("destroy all", f"{cir} (stepped)")
                self.ng.command(f"dc vsel 0 {len(chunk) - 1} 1", f"{cir} (stepped)")
                cols.append(np.stack([self.ng.vector(sense_branch(j)) for j in range(n_phys)], axis=1))
                drivers.append(-np.stack([self.ng.vector(driver_branch(r)) for r in range(volts.shape[1])], axis=1))
                self.ng.unload()
        return np.concatenate(cols), np.concatenate(drivers)

    def response(self, job: ResponseJob) -> tuple[np.ndarray, np.ndarray]:
        """(transfer (R, P), admittance (R, R)) of a linear tile: one solve per row at V_read,
        then ``job.check_vectors`` random inputs solved directly must match the sums.

        Raises:
            NotLinearError: the tile is not linear.
            SimulationError: ngspice failed.
        """
        self.load(job.cir, job.hs_models)
        transfer, admittance = np.zeros((job.used_rows, job.n_phys)), np.zeros((job.used_rows, job.used_rows))
        for r in range(job.used_rows):
            unit = np.zeros(job.used_rows)
            unit[r] = job.v_read
            cols, drivers = self.operating_point(unit, job.n_phys)
            transfer[r], admittance[r] = cols / job.v_read, drivers / job.v_read
        rng = np.random.default_rng(list(job.seed))
        for _ in range(job.check_vectors):
            volts = rng.choice(job.levels, size=job.used_rows)
            cols, _ = self.operating_point(volts, job.n_phys)
            predicted = volts @ transfer
            scale = max(float(np.max(np.abs(cols))), 1e-30)
            if np.max(np.abs(cols - predicted)) > job.check_rtol * scale:
                raise NotLinearError(f"{self.ng.current}: tile response is not linear (superposition off by "
                                      f"{np.max(np.abs(cols - predicted)) / scale:.1e}); use mode='per-vector'")
        return transfer, admittance


@dataclass(frozen=True)
class VectorJob:
    """Solve input vectors of one tile netlist (a unit of work for a worker process)."""

    cir: Path
    hs_models: bool
    volts: np.ndarray
    n_phys: int
    stepped: bool
    engine: str = "ngspice"

    def run(self, solver: TileSolver) -> Currents:
        """(column currents (K, P), driver currents (K, R))."""
        return solver.vectors(self.cir, self.hs_models, self.volts, self.n_phys, self.stepped, self.engine)


@dataclass(frozen=True)
class ResponseJob:
    """Characterise one linear tile netlist by superposition (a unit of work for a worker)."""

    cir: Path
    hs_models: bool
    used_rows: int
    n_phys: int
    v_read: float
    levels: tuple[float, ...]
    check_vectors: int
    check_rtol: float
    seed: tuple[int, ...]

    def run(self, solver: TileSolver) -> Currents:
        """(transfer (R, P), admittance (R, R)); a NotLinearError if the tile is not linear."""
        return solver.response(self)


Job = VectorJob | ResponseJob
"""A unit of work for a worker process."""

_WORKER_SOLVER: TileSolver | None = None


def run_job(job: Job) -> Currents | SimulationError:
    """Run ``job`` on this process's solver, returning the result or the SimulationError it
    raised (so that one nonlinear tile does not cancel the other jobs of a pool)."""
    global _WORKER_SOLVER
    if _WORKER_SOLVER is None:
        _WORKER_SOLVER = TileSolver()
    return result_or_error(job, _WORKER_SOLVER)


def run_shipped(shipped: ShippedJob) -> Currents | SimulationError:
    """Run a job that carries its circuit (:mod:`bmcnn_hw.spice.shipped`) on this process's solver:
    its result, or the SimulationError it raised (a missing engine is one too, naming the host)."""
    try:
        return run_job(dataclasses.replace(shipped.job, cir=materialise(shipped)))
    except ToolNotFound as exc:
        return SimulationError(f"Dask worker on {socket.gethostname()}: {exc}")
    except SimulationError as exc:
        return exc


def result_or_error(job: Job, solver: TileSolver) -> Currents | SimulationError:
    """``job.run(solver)``, or the SimulationError it raised."""
    try:
        return job.run(solver)
    except SimulationError as exc:
        return exc
