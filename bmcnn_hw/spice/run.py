"""ngspice as a tile reader: the executor that solves the build's tile netlists.

A tile netlist is loaded once (``source``); an input vector then costs ``alter`` of the
rows that changed, one ``op`` and a read of the column sense and driver currents. Tiles
linear in their binary inputs (linear cells, or any cell behind ideal wires, drivers and
TIAs) may be characterised once by superposition; otherwise each distinct input vector of a
batch is solved once, for nonlinear cells many vectors per DC sweep of a stepped netlist.

ngspice's shared library is one circuit per process and every analysis starts with a fresh
sparse-matrix ordering (seconds for a 64 x 128 1T1R tile with wires), so the reader can hand
a layer's tiles to worker processes (``jobs``): :meth:`SpiceReader.prefetch` solves every
tile read a layer will ask for, in parallel, before the reads are made.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..artefact import CompiledModel
from ..config import ENGINE_CHOICES, SPICE_MODES, SpiceMode
from ..errors import SimulationError
from ..golden.chip import Chip, TileKey
from ..golden.code_memo import CodeMemo
from ..golden.readout import split_columns
from ..golden.tile_reader import TileRead
from ..progress import bar as progress_bar
from ..progress import say
from .engines import engine_label, resolve_engine
from .netlist import tile_netlist_name
from .read_cache import ReadCache
from .solver import (
    Currents,
    Job,
    NotLinearError,
    ResponseJob,
    TileSolver,
    VectorJob,
    result_or_error,
    run_job,
    run_shipped,
)


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
        nonlinear cells) up to ``TileSolver.STEP_BATCH`` vectors per DC sweep of a stepped netlist.
        ``auto``: per tile the cheaper of the two: superposition once a batch has more
        distinct inputs than the tile has rows (plus the check solves), per-vector solves
        otherwise. Every netlist this writer emits is linear; a tile whose linearity check
        fails is marked nonlinear (``nonlinear_tiles``) and solved per vector from then on.

    ``jobs``: worker processes for :meth:`prefetch` (1: everything in this process). Each job
    solves the same netlist on the same vectors, so results depend on it only within ngspice's
    convergence tolerance (a stepped sweep split over workers starts Newton from other points).

    ``scheduler``: a Dask scheduler address; the jobs :meth:`prefetch` would give local workers
    go to the cluster instead, each carrying its circuit's files by content
    (:mod:`bmcnn_hw.spice.shipped`), split exactly as ``jobs`` local workers would split them, so
    the results equal a local run's; the tasks of a worker that dies are run again elsewhere.

    ``engine``: ``ngspice`` (the reference) or ``vacask`` (:mod:`bmcnn_hw.spice.vacask`: every
    distinct vector solved by VACASK, no superposition responses; linear and 1T1R cells), or
    ``auto`` (:func:`resolve_engine`); :attr:`engine` is the one resolved.

    ``cache``: a :class:`~bmcnn_hw.spice.read_cache.ReadCache`; per-vector reads it holds for the
    same circuit, engine and options are served from it, and every solved batch is stored
    (superposition responses are not cached: they cost one solve per row).
    """

    solves_in_bulk = True
    """Every distinct read of a layer is solved ahead, in worker processes (:meth:`prefetch`)."""

    memo: CodeMemo | None = None
    """No codes kept across batches here (the on-disk read cache keeps SPICE reads)."""

    def __init__(self, model: CompiledModel, chip: Chip, netlist_dir: Path, mode: SpiceMode = "auto",
                 check_vectors: int = 3, check_rtol: float = 1e-9, stepped: bool | None = None, jobs: int = 1,
                 progress: bool = False, cache: ReadCache | None = None, scheduler: str | None = None,
                 engine: str = "ngspice") -> None:
        if mode not in SPICE_MODES:  # callers outside the type checker may pass any string
            raise SimulationError(f"SPICE mode must be auto, superposition or per-vector, not {mode!r}")
        if jobs < 1:
            raise SimulationError(f"SPICE jobs must be at least 1, not {jobs}")
        if engine not in ENGINE_CHOICES:
            raise SimulationError(f"SPICE engine must be one of {', '.join(ENGINE_CHOICES)}, not {engine!r}")
        engine = resolve_engine(engine, chip, scheduler=scheduler)
        if engine == "vacask" and mode == "superposition":
            raise SimulationError("SPICE mode 'superposition' is ngspice's; --engine vacask solves every distinct "
                                  "input (mode per-vector or auto)")
        self.model, self.chip, self.netlist_dir = model, chip, Path(netlist_dir)
        self.mode, self.jobs, self.progress = mode, jobs, progress
        self.check_vectors, self.check_rtol = check_vectors, check_rtol
        self.solver = TileSolver()
        p = chip.params
        self.level_linear: bool = chip.level_linear
        """Whether superposition of per-row solves is exact for binary inputs (as in PhysicsReader)."""
        if mode == "superposition" and not self.level_linear:
            raise SimulationError("SPICE mode 'superposition' needs tiles linear in their inputs; nonlinear "
                                  f"'{p.cell}' cells with wire, driver or TIA resistance need mode 'per-vector'")
        self.stepped = (not chip.cell.linear) if stepped is None else stepped
        """Per-vector solves step through a batch in one DC sweep (default for nonlinear cells)
        instead of ``alter`` + ``op`` per vector."""
        self.hs_models = p.cell == "1t1r"
        self.solves = 0
        self.responses: dict[TileKey, Currents] = {}
        """Superposition responses (transfer, admittance) per characterised tile."""
        self.nonlinear_tiles: set[TileKey] = set()
        self._solved: dict[TileKey, dict[bytes, Currents]] = {}
        self.cache, self.scheduler, self.engine = cache, scheduler, engine

    def _cache_context(self, key: TileKey, used_cols: int) -> str | None:
        """The read cache's context of tile ``key`` (None without a cache)."""
        if self.cache is None:
            return None
        options = f"stepped={self.stepped} hsa={self.hs_models} columns={self._n_phys(used_cols)}"
        return self.cache.context(self._netlist(*key), self.engine_name(), options)

    def engine_name(self) -> str:
        """Name and version of the engine that solves the per-vector reads."""
        return engine_label(self.engine)

    def _netlist(self, index: int, rt: int, ct: int) -> Path:
        return self.netlist_dir / tile_netlist_name(self.model.layers[index], rt, ct)

    def _n_phys(self, used_cols: int) -> int:
        return used_cols + 1 if self.chip.encoding == "reference" else 2 * used_cols

    def _response_job(self, index: int, rt: int, ct: int, used_rows: int, used_cols: int) -> ResponseJob:
        v_read = float(self.chip.params.v_read_v)
        bipolar = self.model.hardware.geometry.input_mode == "bipolar"
        return ResponseJob(self._netlist(index, rt, ct), self.hs_models, used_rows, self._n_phys(used_cols), v_read,
                           (-v_read, 0.0, v_read) if bipolar else (0.0, v_read), self.check_vectors,
                           self.check_rtol, (index, rt, ct))

    def _superposition(self, key: TileKey, distinct: int, used_rows: int) -> bool:
        """Whether the reads of tile ``key`` come from its superposition response."""
        if self.engine != "ngspice":
            return False
        if self.mode != "auto":
            return self.mode == "superposition"
        cheaper = distinct > used_rows + self.check_vectors
        return self.level_linear and key not in self.nonlinear_tiles and (key in self.responses or cheaper)

    def response(self, index: int, rt: int, ct: int, used_rows: int, used_cols: int) -> Currents:
        """(transfer (R, P), admittance (R, R)) of a tile, characterised by ngspice and checked."""
        key = (index, rt, ct)
        if key not in self.responses:
            job = self._response_job(index, rt, ct, used_rows, used_cols)
            self._keep_response(key, job, job.run(self.solver))
        return self.responses[key]

    def _keep_response(self, key: TileKey, job: ResponseJob, response: Currents) -> None:
        self.responses[key] = response
        self.solves += job.used_rows + job.check_vectors

    def _run(self, jobs: Sequence[Job], what: str, workers: int) -> list[Currents | SimulationError]:
        """Results of ``jobs`` (a result or the SimulationError it raised, in order), in
        ``workers`` processes when that is more than 1 and there is more than one job; a progress
        bar with ``progress``."""
        results: list[Currents | SimulationError] = []
        quiet = not self.progress or len(jobs) < 2
        if self.scheduler and jobs:
            from ..parallel import run_jobs
            from .shipped import no_setup, ship

            return run_jobs(run_shipped, [ship(job) for job in jobs], no_setup, (), scheduler=self.scheduler,
                            progress=not quiet, desc=what, unit="job")
        with progress_bar(total=len(jobs), desc=what, unit="job", leave=False, disable=quiet) as bar:
            if workers == 1 or len(jobs) < 2:
                for job in jobs:
                    results.append(result_or_error(job, self.solver))
                    bar.update()
                return results
            from ..parallel import single_threaded_pool

            with single_threaded_pool(min(workers, len(jobs))) as pool:
                for result in pool.map(run_job, jobs):
                    results.append(result)
                    bar.update()
        return results

    def prefetch(self, index: int, requests: list[tuple[int, int, np.ndarray, int]]) -> None:
        """Solve, ``jobs`` processes at a time, every read of layer ``index`` that ``requests``
        (``(rt, ct, volts (M, R), used_cols)`` per tile) names; :meth:`read` then serves them.

        Tiles read by superposition are characterised first; if one proves nonlinear (mode
        auto) its vectors are solved with the rest. Reads of other layers are forgotten.
        """
        self._solved = {key: v for key, v in self._solved.items() if key[0] == index}
        wanted: list[tuple[TileKey, np.ndarray, int]] = []
        for rt, ct, volts, used_cols in requests:
            distinct = np.unique(volts, axis=0)
            wanted.append(((index, rt, ct), distinct, used_cols))
        todo = [(key, distinct.shape[1], used) for key, distinct, used in wanted
                if key not in self.responses and self._superposition(key, len(distinct), distinct.shape[1])]
        if self.progress:
            self._announce(index, wanted, todo)
        jobs = [self._response_job(*key, rows, used) for key, rows, used in todo]
        results = self._run(jobs, f"ngspice: {self.model.layers[index].name} tiles by superposition", self.jobs)
        for (key, _, _), job, result in zip(todo, jobs, results, strict=True):
            if isinstance(result, SimulationError):
                if self.mode == "superposition" or not isinstance(result, NotLinearError):
                    raise result
                self.nonlinear_tiles.add(key)
            else:
                self._keep_response(key, job, result)
        self._prefetch_vectors([(key, d, used) for key, d, used in wanted
                                if not self._superposition(key, len(d), d.shape[1])])

    def _announce(self, index: int, wanted: list[tuple[TileKey, np.ndarray, int]],
                  todo: list[tuple[TileKey, int, int]]) -> None:
        """Say, before a layer's solves start, how many there will be (the bars then give the pace)."""
        by_response = sum(rows + self.check_vectors for _, rows, _ in todo)
        superposed = {key for key, _, _ in todo} | set(self.responses)
        per_vector = sum(len(d) for key, d, _ in wanted if key not in superposed)
        say(f"{self.engine}: {self.model.layers[index].name}: {len(wanted)} tile(s), about "
            f"{by_response + per_vector:,} solves ({by_response:,} for superposition responses, "
            f"{per_vector:,} distinct input vectors), {self.jobs} {self.engine} process(es)")

    def _prefetch_vectors(self, wanted: list[tuple[TileKey, np.ndarray, int]], workers: int | None = None) -> None:
        """Solve the not yet solved vectors of ``(key, distinct volts, used_cols)`` tiles on
        ``workers`` processes (default ``jobs``), split so that every worker has work (a single
        large tile is shared out by vector chunks)."""
        workers = workers or self.jobs
        pending, contexts = [], {}
        for key, distinct, used in wanted:
            known = self._solved.setdefault(key, {})
            missing = np.array([v for v in distinct if v.tobytes() not in known]).reshape(-1, distinct.shape[1])
            context = self._cache_context(key, used) if len(missing) else None
            if self.cache is not None and context is not None:
                contexts[key] = context
                known.update(self.cache.lookup(context, missing))
                missing = np.array([v for v in missing if v.tobytes() not in known]).reshape(-1, distinct.shape[1])
            if len(missing):
                pending.append((key, missing, used))
        total = sum(len(m) for _, m, _ in pending)
        if not total:
            return
        # at most one stepped sweep per job, and at least one job per worker when vectors allow
        chunk = -(-total // workers)
        if self.stepped:
            chunk = min(chunk, TileSolver.STEP_BATCH)
        jobs, owners = [], []
        for key, missing, used in pending:
            for start in range(0, len(missing), chunk):
                part = missing[start:start + chunk]
                jobs.append(VectorJob(self._netlist(*key), self.hs_models, part, self._n_phys(used), self.stepped,
                                      self.engine))
                owners.append(key)
        layer = self.model.layers[owners[0][0]].name
        results = self._run(jobs, f"{self.engine}: {layer} tile reads", workers)
        for key, job, result in zip(owners, jobs, results, strict=True):
            if isinstance(result, SimulationError):
                raise result
            cols, drivers = result
            known = self._solved[key]
            for v, c, d in zip(job.volts, cols, drivers, strict=True):
                known[v.tobytes()] = (c, d)
            self.solves += len(job.volts)
            if self.cache is not None:
                self.cache.store(contexts[key], job.volts, cols, drivers)

    def linear_map(self, layer_index: int, rt: int, ct: int, used_rows: int, used_cols: int) -> None:
        """No tile is read as a precomputed linear map: ngspice solves (or superposes) every read
        (:class:`~bmcnn_hw.golden.tile_reader.TileReader`)."""
        return None

    def read(self, layer_index: int, rt: int, ct: int, volts: np.ndarray, used_cols: int) -> TileRead:
        """Currents for row voltages ``volts`` (M, used_rows), from ngspice (reads solved by
        :meth:`prefetch` are served from there)."""
        key = (layer_index, rt, ct)
        unique, inverse = np.unique(volts, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        linear = None
        if self._superposition(key, len(unique), volts.shape[1]):
            try:
                linear = self.response(layer_index, rt, ct, volts.shape[1], used_cols)
            except NotLinearError:
                if self.mode == "superposition":
                    raise
                self.nonlinear_tiles.add(key)
        if linear is not None:
            i_phys, i_drivers = volts @ linear[0], volts @ linear[1]
        else:
            self._prefetch_vectors([(key, unique, used_cols)], workers=1)  # what no prefetch solved
            known = self._solved[key]
            i_phys = np.stack([known[v.tobytes()][0] for v in unique])[inverse]
            i_drivers = np.stack([known[v.tobytes()][1] for v in unique])[inverse]
        i_plus, i_minus = split_columns(i_phys, self.chip.encoding)
        return TileRead(i_plus, i_minus, i_drivers)


