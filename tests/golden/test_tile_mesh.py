"""The mesh iteration of nonlinear tiles with wires equals the sparse chord iteration it replaces."""

from __future__ import annotations

import numpy as np
import pytest

from bmcnn_hw.config import DeviceParams
from bmcnn_hw.golden.cells import LinearCell, OneTransistorOneResistorCell, SinhCell, TransistorTable
from bmcnn_hw.golden.tile_mesh import MeshSolver, thomas_factors
from bmcnn_hw.golden.tile_nonlinear import NonlinearTile

RTOL = 1e-9
"""Mesh vs sparse, relative to the largest current: both stop when no node moves by 1e-11 V."""


def _triode_table() -> TransistorTable:
    """A smooth synthetic nMOS (square law, triode and saturation, body effect) on the grid shape
    the sky130 tables use, so the 1T1R path runs without ngspice."""
    vg = np.linspace(1.7, 1.9, 51)
    vd = np.linspace(-0.02, 0.22, 481)
    vs = np.linspace(-0.02, 0.22, 241)
    g, d, s = np.meshgrid(vg, vd, vs, indexing="ij")
    vt = 0.45 + 0.1 * (np.sqrt(0.7 + np.maximum(s, -0.3)) - np.sqrt(0.7))
    vov = np.maximum(g - s - vt, 0.0)
    vds = d - s
    ids = 4e-4 * np.where(np.abs(vds) < vov, vov * vds - 0.5 * vds * np.abs(vds), 0.5 * vov ** 2 * np.sign(vds))
    return TransistorTable(vg, vd, vs, ids, "synthetic square-law nMOS")


def _cell(kind: str):
    params = DeviceParams(cell=kind, r_on_ohm=20e3, r_off_ohm=200e3, sinh_v0_v=0.25)
    if kind == "1t1r":
        return OneTransistorOneResistorCell(params, _triode_table())
    return SinhCell(params) if kind == "sinh" else LinearCell(params)


def _tile(rows: int, cols: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    r = np.where(rng.random((rows, cols)) < 0.5, 20e3, 200e3) * rng.normal(1.0, 0.1, (rows, cols))
    dvth = rng.normal(0.0, 0.01, (rows, cols))
    volts = rng.integers(0, 2, (9, rows)) * 0.2
    return r, dvth, volts


def _both(cell, r, dvth, volts, r_wire, r_source, r_tia):
    mesh = NonlinearTile(cell, r, dvth, r_wire, r_source, r_tia)
    sparse = NonlinearTile(cell, r, dvth, r_wire, r_source, r_tia, mesh=False)
    return mesh, mesh.read(volts), sparse.read(volts)


@pytest.mark.parametrize("kind", ["linear", "sinh", "1t1r"])
@pytest.mark.parametrize("shape, r_wire, r_source, r_tia", [
    ((12, 10), 2.0, 0.0, 0.0), ((12, 10), 1.0, 40.0, 5.0), ((1, 7), 3.0, 0.0, 2.0), ((6, 1), 3.0, 25.0, 0.0)])
def test_mesh_equals_the_sparse_solve(kind, shape, r_wire, r_source, r_tia):
    r, dvth, volts = _tile(*shape)
    mesh, (cols_m, drv_m), (cols_s, drv_s) = _both(_cell(kind), r, dvth, volts, r_wire, r_source, r_tia)
    assert mesh.served == {"mesh": len(np.unique(volts, axis=0)), "sparse": 0}
    assert np.max(np.abs(cols_m - cols_s)) <= RTOL * np.max(np.abs(cols_s))
    assert np.max(np.abs(drv_m - drv_s)) <= RTOL * np.max(np.abs(drv_s))


def test_linear_cells_on_the_mesh_obey_kirchhoff():
    """Column currents plus nothing else leave the tile: what the drivers send reaches the TIAs."""
    r, _, volts = _tile(16, 12, seed=3)
    cols, drivers = NonlinearTile(LinearCell(DeviceParams()), r, None, 2.5, 30.0, 4.0).read(volts)
    assert np.allclose(cols.sum(axis=1), drivers.sum(axis=1), rtol=1e-10, atol=0)


def test_reads_that_do_not_settle_take_the_sparse_path():
    """Strong cells behind heavy wires: the block sweep cannot converge, every read falls back."""
    r = np.full((24, 24), 50.0)
    volts = np.random.default_rng(1).integers(0, 2, (5, 24)) * 0.2
    cell = LinearCell(DeviceParams(r_on_ohm=50.0, r_off_ohm=500.0))
    tile = NonlinearTile(cell, r, None, 20.0, 0.0, 0.0)
    got = tile.read(volts)
    want = NonlinearTile(cell, r, None, 20.0, 0.0, 0.0, mesh=False).read(volts)
    assert tile.served == {"mesh": 0, "sparse": len(np.unique(volts, axis=0))}
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_repeated_vectors_are_solved_once_and_a_read_does_not_depend_on_its_batch():
    r, dvth, volts = _tile(10, 8, seed=5)
    batch = np.concatenate([volts, volts[::-1], np.zeros((3, 10))])
    tile = NonlinearTile(_cell("1t1r"), r, dvth, 1.5, 0.0, 0.0)
    cols, drivers = tile.read(batch)
    assert tile.served["mesh"] == len(np.unique(batch, axis=0))
    assert np.array_equal(cols[:9], cols[9:18][::-1]) and np.array_equal(drivers[:9], drivers[9:18][::-1])
    # no drive, no current (to the table's rounding: its fractions at 0 V are not exactly 0)
    assert np.abs(cols[-3:]).max() <= 1e-15 * np.abs(cols).max()
    alone, _ = NonlinearTile(_cell("1t1r"), r, dvth, 1.5, 0.0, 0.0).read(volts[4:5])
    assert np.array_equal(alone[0], cols[4])


def test_thomas_factors_solve_a_chain():
    diag = np.array([[3.0, 2.5, 2.2, 4.0]])
    inv, cp = thomas_factors(diag, 1.0)
    matrix = np.diag(diag[0]) - np.eye(4, k=1) - np.eye(4, k=-1)
    rhs = np.array([1.0, -2.0, 0.5, 3.0])
    d = rhs.copy()
    d[0] *= inv[0, 0]
    for j in range(1, 4):
        d[j] = (d[j] + d[j - 1]) * inv[0, j]
    for j in range(2, -1, -1):
        d[j] -= cp[0, j] * d[j + 1]
    assert np.allclose(d, np.linalg.solve(matrix, rhs), rtol=1e-14)


def test_mesh_solver_reports_its_iterations():
    r, _, volts = _tile(8, 8, seed=2)
    solver = MeshSolver(_cell("sinh"), r, None, 1.0, 0.0, 1.0)
    _, _, settled = solver.read(volts)
    assert settled.all() and (solver.iterations >= 2).all() and (solver.iterations <= solver.max_iter).all()
