"""Process pools whose workers each use one BLAS/OpenMP thread, thread maps, Dask helpers.

Workers run side by side on the cores; if each also started a BLAS thread per core,
N workers would run N x cores threads and slow each other down (measured: a 2-worker
sweep on 2 cores ran 2.6x slower). The thread-count variables must be set before a
worker imports NumPy, so workers are spawned (not forked) with them in the environment.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from .errors import ConfigError

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
T = TypeVar("T")
R = TypeVar("R")


@contextlib.contextmanager
def single_threaded_pool(workers: int, initializer=None, initargs: tuple = ()):
    """A spawned ProcessPoolExecutor of ``workers`` single-threaded processes.

    Workers ignore SIGINT; on Ctrl-C (or any error) in the caller the queued jobs are cancelled
    and the workers terminated at once, instead of the executor finishing every queued job.
    """
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: "1" for name in THREAD_VARIABLES})
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_init, initargs=(initializer, initargs))
    try:
        yield pool
    except BaseException:
        # taken before shutdown(), which forgets them (3.14 has terminate_workers())
        processes = list((getattr(pool, "_processes", None) or {}).values())
        manager = getattr(pool, "_executor_manager_thread", None)
        for process in processes:
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.join(timeout=5)
        if manager is not None:
            # Its exit closes the pool's wake-up pipe. Left running, it can close the pipe while the
            # interpreter's exit hook writes to it (Python 3.11): "Exception ignored ... Bad file
            # descriptor" with a traceback after the one line of a Ctrl-C.
            manager.join(timeout=10)
        raise
    else:
        pool.shutdown(wait=True)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def dask_client(scheduler: str):
    """A ``distributed.Client`` connected to ``scheduler``, closed on exit.

    Raises:
        ConfigError: dask.distributed is not installed, or the scheduler cannot be reached.
    """
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("--scheduler needs dask.distributed: pip install 'dask[distributed]'") from None
    try:
        client = Client(scheduler, timeout="10s")
    except OSError as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from None
    with client:
        yield client


def _same(value):
    return value


def shared_inputs(client, values: list) -> list:
    """Futures of ``values`` that many tasks depend on and that survive a worker's death.

    Each value is a small task that returns it, so the scheduler can recompute it on another
    worker when the one holding its result dies; data from ``client.scatter`` is not
    recomputable and is lost with its workers (the retried tasks then fail as "already
    forgotten"). The values travel once in the task graph (tens of MB at most here).
    """
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Large object.*")  # intended: see the docstring
        return [client.submit(_same, value, pure=False) for value in values]


def results_in_order(futures: list, desc: str, unit: str, progress: bool,
                     on_result: Callable[[int, Any], None] | None = None) -> list:
    """The results of Dask ``futures`` in submission order, collected as they complete (progress
    bar); ``on_result(index, result)`` is called for each as it arrives."""
    from distributed import as_completed

    from .progress import bar

    index = {f.key: k for k, f in enumerate(futures)}
    results: list = [None] * len(futures)
    for future in bar(as_completed(futures), total=len(futures), desc=desc, unit=unit, disable=not progress):
        results[index[future.key]] = future.result()
        if on_result is not None:
            on_result(index[future.key], results[index[future.key]])
    return results


def run_jobs(point: Callable, jobs: list, initializer: Callable, initargs: tuple, *, workers: int | None = None,
             scheduler: str | None = None, shared_from: int = 1, retries: int = 3, progress: bool = True,
             desc: str = "jobs", unit: str = "job", on_result: Callable[[int, Any], None] | None = None) -> list:
    """``point(job)`` for every job, results in job order, in processes that ran ``initializer(*initargs)``.

    Locally: a pool of ``workers`` single-threaded processes (default one per core, at most one
    per job). With ``scheduler``: the Dask cluster there. ``initargs[shared_from:]`` (the data)
    travel once as :func:`shared_inputs`, each worker runs the initializer once per distinct
    ``initargs[:shared_from]``, and the tasks of a worker that dies are retried ``retries`` times.
    ``on_result(index, result)`` runs in this process as each job's result arrives (to record it).
    """
    if scheduler:
        with dask_client(scheduler) as client:
            shared = shared_inputs(client, list(initargs[shared_from:]))
            # ``key`` is client.map's own keyword (task names): the worker's cache key is ``setup``
            setup = (f"{initializer.__module__}.{initializer.__qualname__}", tuple(initargs[:shared_from]))
            futures = client.map(_dask_job, jobs, point=point, initializer=initializer, setup=setup,
                                 initargs=[*initargs[:shared_from], *shared], retries=retries, pure=False)
            return results_in_order(futures, f"{desc} (dask)", unit, progress, on_result)
    from .progress import bar

    with single_threaded_pool(workers or min(len(jobs), os.cpu_count() or 1), initializer, initargs) as pool:
        results = []
        for k, result in enumerate(bar(pool.map(point, jobs), total=len(jobs), desc=desc, unit=unit,
                                       disable=not progress)):
            results.append(result)
            if on_result is not None:
                on_result(k, result)
        return results


_DASK_WORKER: dict = {}


def _dask_job(job, point: Callable, initializer: Callable, setup: tuple, initargs: list):
    """:func:`run_jobs`' task on a Dask worker (Dask resolves the shared futures in ``initargs``).

    Fault injection for tests: when ``$BMCNN_HW_CRASH_ONCE`` names a file that does not exist
    yet, the first task to see it creates it and kills its worker process.
    """
    marker = os.environ.get("BMCNN_HW_CRASH_ONCE")
    if marker and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    if _DASK_WORKER.get("setup") != setup:
        initializer(*initargs)
        _DASK_WORKER["setup"] = setup
    return point(job)


def _worker_init(initializer, initargs: tuple) -> None:
    """Ignore Ctrl-C in a worker (the caller stops the pool), then run the pool's initializer."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer(*initargs)


@contextlib.contextmanager
def blas_threads(limit: int) -> Iterator[None]:
    """BLAS/OpenMP pools limited to ``limit`` threads inside the block (threadpoolctl)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=limit):
        yield


def thread_map(fn: Callable[[T], R], items: Iterable[T], threads: int) -> list[R]:
    """``[fn(x) for x in items]`` on ``threads`` threads, results in order.

    For NumPy work that releases the GIL (gathers, sorts, matrix products on independent
    batches); BLAS runs one thread per worker so ``threads`` is the number of busy cores.
    """
    if threads <= 1:
        with blas_threads(1):
            return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    with blas_threads(1), ThreadPoolExecutor(threads) as pool:
        return list(pool.map(fn, items))
