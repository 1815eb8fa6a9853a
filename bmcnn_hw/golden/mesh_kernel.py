"""Compiled inner loop of the mesh iteration (:mod:`bmcnn_hw.golden.tile_mesh`), one read per thread.

Each read of a batch is iterated on its own until no node moves by more than ``tol``: evaluate
every cell's nonlinear element at the present voltages, solve the row chains with the column
voltages held, then the column chains with the new row voltages (Thomas substitution with the
factors the caller prepared), then (1T1R) each cell's internal node. Reads are independent, so
they run in parallel (``prange``) and a read's result does not depend on the rest of its batch.
Every chain of a kind is substituted at once, the chains side by side in memory, so the
substitution's serial recurrence runs vectorised across chains instead of one chain at a time
(with the transistor's cached corners and the fused passes below: 34.8 -> 13.0 ns per cell and
iteration on a 64 x 128 1T1R tile, ``bench/bench_mesh_kernel.py``).

Cell kinds: ``LINEAR`` (``I = v / r``), ``SINH`` (``I = (k / r) sinh(v / v0)``), ``ONE_T_ONE_R``
(the element is the access transistor, drain at the internal node m, source at the column
node, its current the trilinear interpolant of the ngspice table, the arithmetic of
:meth:`bmcnn_hw.golden.cells.TransistorTable.current` with reciprocals prepared, so the two agree
to rounding). The inner loop has no division: every reciprocal comes prepared. A cell keeps
its transistor's four (drain, source) corners at its own gate while its operating point stays in
the same grid cell, so only an iteration that moves it to another grid cell reads the table.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

LINEAR, SINH, ONE_T_ONE_R = 0, 1, 2


@njit(cache=True, inline="always")
def _locate(value: float, origin: float, inv_step: float, size: int) -> tuple[int, float]:
    """Grid cell index and fraction of ``value`` on a uniform grid (``1 / step`` given: no division in
    the inner loop), clamped to the grid."""
    f = (value - origin) * inv_step
    f = min(max(f, 0.0), size - 1 - 1e-9)
    i = int(f)
    return i, f - i


@njit(cache=True, inline="always")
def _transistor_cached(table: np.ndarray, grid: np.ndarray, sizes: np.ndarray, gate_base: int, tg: float,
                       vd: float, vs: float, key: np.ndarray, coef: np.ndarray, i: int, j: int) -> float:
    """Drain current of cell (i, j)'s transistor, its gate at grid index ``gate_base`` (flat) plus
    fraction ``tg``: the trilinear interpolant of the table. The cell's four (drain, source)
    corners at its own gate are kept in ``coef[i, j]`` while ``key[i, j]`` (the grid cell) holds,
    so an iteration that stays in the same grid cell reads no table (the table is about 50 MB;
    its gathers, not the arithmetic, set the cost)."""
    id_, td = _locate(vd, grid[0], grid[1], sizes[0])
    is_, ts = _locate(vs, grid[2], grid[3], sizes[1])
    cell = id_ * sizes[1] + is_
    if key[i, j] != cell:
        key[i, j] = cell
        step_d, step_g = sizes[1], sizes[0] * sizes[1]
        at = gate_base + id_ * step_d + is_
        coef[i, j, 0] = table[at] * (1 - tg) + table[at + step_g] * tg
        coef[i, j, 1] = table[at + 1] * (1 - tg) + table[at + step_g + 1] * tg
        at += step_d
        coef[i, j, 2] = table[at] * (1 - tg) + table[at + step_g] * tg
        coef[i, j, 3] = table[at + 1] * (1 - tg) + table[at + step_g + 1] * tg
    a = coef[i, j, 0] * (1 - ts) + coef[i, j, 1] * ts
    b = coef[i, j, 2] * (1 - ts) + coef[i, j, 3] * ts
    current: float = a + (b - a) * td
    return current


@njit(cache=True)
def _element(kind: int, v_a: float, v_b: float, g_r: float, shape: float, v0: float) -> float:
    """Current of a two-terminal cell (``LINEAR`` or ``SINH``) from node a to node b (``g_r`` = 1 / r,
    ``v0`` = 1 / V_0); a 1T1R cell's element is :func:`_transistor_cached`."""
    if kind == SINH:
        sinh: float = shape * g_r * np.sinh((v_a - v_b) * v0)
        return sinh
    return (v_a - v_b) * g_r


@njit(cache=True)
def _substitute_all(d: np.ndarray, inv: np.ndarray, cp: np.ndarray, g_w: float) -> None:
    """Thomas substitution in place for every chain at once: ``d``, ``inv``, ``cp`` (n, chains), chain
    ``j`` in column ``j``; the inner loop runs over chains (contiguous)."""
    n, chains = d.shape
    for j in range(chains):
        d[0, j] *= inv[0, j]
    for i in range(1, n):
        for j in range(chains):
            d[i, j] = (d[i, j] + g_w * d[i - 1, j]) * inv[i, j]
    for i in range(n - 2, -1, -1):
        for j in range(chains):
            d[i, j] -= cp[i, j] * d[i + 1, j]


@njit(cache=True, parallel=True)
def mesh_reads(drive: np.ndarray, kind: int, g_rho: np.ndarray, m_den: np.ndarray, gc: np.ndarray, g: np.ndarray,
               alpha: np.ndarray,
               row_inv: np.ndarray, row_cp: np.ndarray, col_inv: np.ndarray, col_cp: np.ndarray, g_w: float,
               gs: float, g_last: float, shape: float, v0: float, table: np.ndarray, grid: np.ndarray,
               sizes: np.ndarray, gate_base: np.ndarray, tg: np.ndarray, tol: float, max_iter: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column currents (M, P), driver currents (M, R) and iterations (M,; ``max_iter + 1`` where a
    read did not settle) for row drives ``drive`` (M, R). Thomas factors, one chain per column of
    the array (all chains of a kind are substituted together, vectorised): row chains
    ``row_inv``/``row_cp`` (P, R), column chains ``col_inv``/``col_cp`` (R, P). ``gs`` 0 holds each
    row's first node at its drive. Per-cell arrays are (R, P): ``g_rho`` 1 / device resistance, ``m_den``
    1 / (1 / rho + g_c) (1T1R), ``gc`` element chords, ``g`` and ``alpha`` the linearised cells.
    ``grid`` is (drain origin, 1 / drain step, source origin, 1 / source step); ``v0`` 1 / V_0."""
    reads, rows = drive.shape
    cols = g_rho.shape[1]
    series = kind == ONE_T_ONE_R
    i_cols = np.zeros((reads, cols))
    drivers = np.zeros((reads, rows))
    iterations = np.zeros(reads, dtype=np.int64)
    for k in prange(reads):
        r = np.empty((rows, cols))
        c = np.zeros((rows, cols))
        m = np.zeros((rows, cols))
        dev = np.zeros((rows, cols))
        key = np.full((rows, cols), -1, dtype=np.int64)
        coef = np.empty((rows, cols, 4))
        lines = np.empty((cols, rows))
        columns = np.empty((rows, cols))
        for i in range(rows):
            for j in range(cols):
                r[i, j] = drive[k, i]
                if series:  # KCL at m with the chord and no deviation
                    m[i, j] = r[i, j] * g_rho[i, j] * m_den[i, j]
        done = max_iter + 1
        for it in range(1, max_iter + 1):
            # Three passes per iteration, each fusing what the next step needs: the elements'
            # deviations with the row chains' right-hand sides, the new row voltages with the
            # column chains' right-hand sides, the new column voltages with the internal nodes.
            for i in range(rows):
                for j in range(cols):
                    v_a = m[i, j] if series else r[i, j]
                    if series:
                        current = _transistor_cached(table, grid, sizes, gate_base[i, j], tg[i, j], v_a, c[i, j],
                                                     key, coef, i, j)
                    else:
                        current = _element(kind, v_a, c[i, j], g_rho[i, j], shape, v0)
                    dev[i, j] = current - gc[i, j] * (v_a - c[i, j])
                    lines[j, i] = g[i, j] * c[i, j] - alpha[i, j] * dev[i, j]
                lines[0, i] = drive[k, i] if gs == 0.0 else lines[0, i] + gs * drive[k, i]
            _substitute_all(lines, row_inv, row_cp, g_w)  # every row chain at once (transposed)
            moved = 0.0
            for i in range(rows):
                for j in range(cols):
                    moved = max(moved, abs(lines[j, i] - r[i, j]))
                    r[i, j] = lines[j, i]
                    columns[i, j] = g[i, j] * r[i, j] + alpha[i, j] * dev[i, j]
            _substitute_all(columns, col_inv, col_cp, g_w)  # every column chain at once
            for i in range(rows):
                for j in range(cols):
                    moved = max(moved, abs(columns[i, j] - c[i, j]))
                    c[i, j] = columns[i, j]
                    if series:
                        new = (r[i, j] * g_rho[i, j] + gc[i, j] * c[i, j] - dev[i, j]) * m_den[i, j]
                        moved = max(moved, abs(new - m[i, j]))
                        m[i, j] = new
            if moved <= tol:
                done = it
                break
        iterations[k] = done
        for j in range(cols):
            i_cols[k, j] = c[rows - 1, j] * g_last
        for i in range(rows):
            if gs != 0.0:
                drivers[k, i] = (drive[k, i] - r[i, 0]) * gs
                continue
            if series:  # the held first node feeds its own cell and the first segment
                first = (r[i, 0] - m[i, 0]) * g_rho[i, 0]
            else:
                first = _element(kind, r[i, 0], c[i, 0], g_rho[i, 0], shape, v0)
            drivers[k, i] = first + ((r[i, 0] - r[i, 1]) * g_w if cols > 1 else 0.0)
    return i_cols, drivers, iterations
