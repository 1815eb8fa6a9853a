"""SPICE tile reads on a Dask cluster: circuits travel by content, results equal a local run's."""

from __future__ import annotations

import subprocess
import sys
import tempfile

import numpy as np
import pytest

from bmcnn_hw.config import DeviceParams
from bmcnn_hw.errors import SimulationError
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.spice.circuit import circuit_files
from bmcnn_hw.spice.netlist import write_netlists
from bmcnn_hw.spice.run import SpiceReader
from bmcnn_hw.spice.shipped import ShippedJob, ship
from bmcnn_hw.spice.solver import TileSolver, VectorJob, run_shipped
from tests.helpers import needs, random_fc_model

pytestmark = [pytest.mark.ngspice, needs("ngspice")]


def _tile(tmp_path):
    device = DeviceParams(cell="sinh", sinh_v0_v=0.1, r_wire_ohm=3.0, sigma_on_rel=0.3, sigma_off_rel=0.3)
    model = random_fc_model(10, 6, 3, tile_rows=10, tile_cols=6, device=device)
    chip = Chip(model, device, 3)
    write_netlists(model, chip, tmp_path / "n")
    return model, chip


def test_a_shipped_job_runs_from_its_own_copy_of_the_circuit(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "worker"))  # the worker's temp directory
    (tmp_path / "worker").mkdir()
    _tile(tmp_path)
    files = circuit_files(tmp_path / "n" / "fc0_r0_c0.cir")
    assert next(iter(files)) == "fc0_r0_c0.cir" and "fc0_r0_c0.sub" in files and "lib/rram_sinh.lib" in files
    volts = np.random.default_rng(1).integers(0, 2, (5, 10)) * 0.2
    job = VectorJob(tmp_path / "n" / "fc0_r0_c0.cir", False, volts, 12, True)
    shipped = ship(job)
    want = job.run(TileSolver())
    (tmp_path / "n").rename(tmp_path / "gone")  # the worker must not need the caller's files
    got = run_shipped(shipped)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    # files that do not match their digest are refused (on a worker that has no copy yet)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "other"))
    (tmp_path / "other").mkdir()
    tampered = ShippedJob(shipped.job, shipped.entry, ((shipped.entry, b"* other\n.end\n"),), shipped.digest)
    error = run_shipped(tampered)
    assert isinstance(error, SimulationError) and "do not match their digest" in str(error)


@pytest.mark.slow
def test_reads_on_a_local_cluster_equal_local_workers_and_survive_a_crash(tmp_path, monkeypatch):
    from distributed import LocalCluster

    model, chip = _tile(tmp_path)
    volts = np.random.default_rng(2).integers(0, 2, (40, 10)) * 0.2
    local = SpiceReader(model, chip, tmp_path / "n", mode="per-vector", jobs=2)
    local.prefetch(0, [(0, 0, volts, 6)])
    want = local.read(0, 0, 0, volts, 6)
    monkeypatch.setenv("BMCNN_HW_CRASH_ONCE", str(tmp_path / "crashed"))  # one worker dies on its first task
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        remote = SpiceReader(model, chip, tmp_path / "n", mode="per-vector", jobs=2,
                             scheduler=cluster.scheduler_address)
        remote.prefetch(0, [(0, 0, volts, 6)])
        got = remote.read(0, 0, 0, volts, 6)
    assert (tmp_path / "crashed").exists()  # the crash happened and its task ran again
    assert remote.solves == local.solves == len(np.unique(volts, axis=0))
    for a, b in ((got.i_plus, want.i_plus), (got.i_minus, want.i_minus), (got.i_drivers, want.i_drivers)):
        assert np.array_equal(a, b)


@pytest.mark.slow
def test_an_unreachable_scheduler_is_one_line_before_any_work(tmp_path, build_dir, mnist_dir):
    proc = subprocess.run([sys.executable, "-m", "bmcnn_hw.cli", "spice", str(build_dir), "--images", "1",
                           "--data-dir", str(mnist_dir), "--scheduler", "tcp://127.0.0.1:9"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("bmcnn-hw: error: cannot reach the Dask scheduler at tcp://127.0.0.1:9")
    assert len(proc.stderr.strip().splitlines()) == 1
