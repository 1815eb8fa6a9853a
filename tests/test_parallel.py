"""Worker pools: single-threaded workers, and an interrupted caller does not wait for queued work."""

from __future__ import annotations

import os
import time

import pytest

from bmcnn_hw.parallel import single_threaded_pool


def _threads_and_sleep(seconds: float) -> str:
    time.sleep(seconds)
    return os.environ["OMP_NUM_THREADS"]


def test_workers_are_single_threaded():
    with single_threaded_pool(2) as pool:
        assert list(pool.map(_threads_and_sleep, [0.0, 0.0])) == ["1", "1"]


def test_an_interrupted_caller_cancels_queued_jobs_and_stops_workers():
    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt), single_threaded_pool(2) as pool:
        futures = [pool.submit(_threads_and_sleep, 30.0) for _ in range(6)]  # 90 s of queued work
        time.sleep(0.5)
        manager = pool._executor_manager_thread
        raise KeyboardInterrupt
    assert time.perf_counter() - start < 10  # not the 90 s the queued jobs would take
    assert not any(f.done() and not f.cancelled() and f.exception() is None for f in futures)
    # The pool's manager thread has ended (and closed its wake-up pipe) before the Ctrl-C goes on:
    # left running, it raced Python 3.11's exit hook, which then printed "Exception ignored ... Bad
    # file descriptor" with a traceback after `bmcnn-hw: interrupted` (explore, lifetime, sweep).
    assert manager is not None and not manager.is_alive()
