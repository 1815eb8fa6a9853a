"""The chord iteration of :mod:`bmcnn_hw.golden.tile_nonlinear` on the crossbar's own structure.

A tile with resistive wires is a mesh: every row is a chain of wire segments fed by its driver
(node 0 held at the drive, or reached through ``r_source``), every column a chain of segments
ending in the TIA (``r_last`` to a virtual ground), and each cell joins one row node to one
column node. With each cell's nonlinear element replaced by its chord ``g_c`` plus a deviation
current ``dev`` (as the sparse solver does), a cell is a conductance and a current source:

- two-terminal cells: ``I = g_c (r - c) + dev``;
- 1T1R: the device ``rho`` (row node to m) in series with the transistor's chord (m to the
  column node); eliminating m, ``I = g_s (r - c) + alpha dev`` with ``g_s = g_c / (1 + rho g_c)``
  and ``alpha = 1 / (1 + rho g_c)``, and m is recovered per cell.

One iteration evaluates the elements at the present voltages (deviation currents), then solves
every row chain with the column voltages held (``(L_row + diag g) r_i = s_i + g c_i - d_i``),
then every column chain with the new row voltages (``(L_col + diag g) c_j = g r_j + d_j``):
tridiagonal systems, solved by Thomas substitution with factors prepared once per tile,
O(cells) per read and iteration and no factorisation to store. It is the chord
iteration with its linear solve replaced by one block Gauss-Seidel sweep, so it has the same
fixed point; it converges fast where the cells are weak against the wires (a cell conductance
times a chain's resistance well below 1: high-resistance cells, short tiles) and slowly or not
at all where they are strong, which :meth:`MeshSolver.read` reports per read so the caller can
solve those reads by the sparse factorisation instead. The loops run compiled, one read per
thread (:mod:`bmcnn_hw.golden.mesh_kernel`).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .cells import CellModel, OneTransistorOneResistorCell, SinhCell
from .mesh_kernel import LINEAR, ONE_T_ONE_R, SINH, mesh_reads

_KERNEL = threading.Lock()
"""One kernel call at a time per process: the call is parallel inside, and numba's fallback
threading layer (workqueue, where no OpenMP runtime is found) aborts on concurrent calls."""


def thomas_factors(diagonal: np.ndarray, g_w: float, held_first: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Pivot inverses and modified super-diagonals of symmetric tridiagonal chains, one per row of
    ``diagonal`` (lines, n), off-diagonals ``-g_w``; ``held_first``: node 0's equation is ``x_0 = d_0``."""
    diag = diagonal.astype(float).copy()
    upper = np.full(diag.shape, -g_w)
    if held_first:
        diag[:, 0], upper[:, 0] = 1.0, 0.0
    inv, cp = np.empty_like(diag), np.empty_like(diag)
    inv[:, 0] = 1.0 / diag[:, 0]
    cp[:, 0] = upper[:, 0] * inv[:, 0]
    for j in range(1, diag.shape[1]):
        inv[:, j] = 1.0 / (diag[:, j] + g_w * cp[:, j - 1])
        cp[:, j] = upper[:, j] * inv[:, j]
    return inv, cp


def _chain_diagonal(n: int, g_w: float, g_first: float, g_last: float) -> np.ndarray:
    """Wire part of a chain's diagonal: segments between neighbours, ``g_first``/``g_last`` to ground at the ends."""
    diag = np.full(n, 2 * g_w)
    diag[0] -= g_w
    diag[-1] -= g_w
    diag[0] += g_first
    diag[-1] += g_last
    return diag


class MeshSolver:
    """Batched chord iteration of one tile with resistive wires (see the module docstring).

    Args:
        cell: the cell model (``element``, ``element_chord``, ``series_resistor``).
        r_phys: (R, P) device resistances in physical column order.
        dvth: (R, P) access-transistor threshold shifts (1T1R) or None.
        r_wire_ohm: wire segment resistance (> 0).
        r_source_ohm: driver resistance (0: the row's first node is held at the drive).
        r_last_ohm: the last column segment plus the TIA's input resistance (> 0).
        tol_v: a read has settled when no node moved by more than this in its last iteration.
        max_iter: iterations after which a read that has not settled is given up.
    """

    def __init__(self, cell: CellModel, r_phys: np.ndarray, dvth: np.ndarray | None, r_wire_ohm: float,
                 r_source_ohm: float, r_last_ohm: float, tol_v: float = 1e-11, max_iter: int = 60) -> None:
        self.r = np.ascontiguousarray(r_phys, dtype=float)
        self.tol_v, self.max_iter = tol_v, max_iter
        self.g_w, self.g_last = 1.0 / r_wire_ohm, 1.0 / r_last_ohm
        self.gs = 1.0 / r_source_ohm if r_source_ohm > 0 else 0.0
        self.gc = np.ascontiguousarray(cell.element_chord(r_phys, dvth), dtype=float)
        if cell.series_resistor:  # 1T1R: the device in series with the transistor's chord, m eliminated
            self.alpha = 1.0 / (1.0 + self.r * self.gc)
            self.g = self.gc * self.alpha
        else:
            self.alpha, self.g = np.ones_like(self.r), self.gc
        self.g_rho = 1.0 / self.r
        self.m_den = 1.0 / (self.g_rho + self.gc)
        rows, cols = self.r.shape
        row_inv, row_cp = thomas_factors(self.g + _chain_diagonal(cols, self.g_w, self.gs, 0.0), self.g_w,
                                         held_first=not self.gs)
        self.row_inv, self.row_cp = np.ascontiguousarray(row_inv.T), np.ascontiguousarray(row_cp.T)  # (P, R)
        col_inv, col_cp = thomas_factors((self.g + _chain_diagonal(rows, self.g_w, 0.0, self.g_last)[:, None]).T,
                                         self.g_w)
        self.col_inv, self.col_cp = np.ascontiguousarray(col_inv.T), np.ascontiguousarray(col_cp.T)  # (R, P)
        self._cell_args = _cell_arguments(cell, self.r.shape, dvth)

    def read(self, volts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Column currents (M, P) into the TIAs, driver currents (M, R) and a mask (M,) of the reads
        that settled, for row drives ``volts`` (M, R); the others' currents are not to be used."""
        with _KERNEL:
            i_cols, drivers, iterations = self._kernel(volts)
        self.iterations = iterations
        return i_cols, drivers, iterations <= self.max_iter

    def _kernel(self, volts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The compiled iteration of every read of ``volts`` (:func:`mesh_kernel.mesh_reads`)."""
        result: tuple[np.ndarray, np.ndarray, np.ndarray] = mesh_reads(  # type: ignore[call-arg]  # numba hides it
            np.ascontiguousarray(volts, dtype=float), self._cell_args[0], self.g_rho, self.m_den, self.gc, self.g,
            self.alpha, self.row_inv, self.row_cp, self.col_inv, self.col_cp, self.g_w, self.gs, self.g_last,
            *self._cell_args[1:], self.tol_v, self.max_iter)
        return result


def _cell_arguments(cell: CellModel, shape: tuple[int, int], dvth: np.ndarray | None) -> tuple[Any, ...]:
    """The kernel's description of the cell: kind, sinh shape and 1 / V_0, transistor table, its
    (drain, source) grid as (origin, 1 / step) pairs and sizes, and per cell the flat index of its
    gate's grid plane and the fraction towards the next."""
    no_table = (np.zeros(1), np.zeros(4), np.ones(2, dtype=np.int64), np.zeros(shape, dtype=np.int64),
                np.zeros(shape))
    if isinstance(cell, SinhCell):
        return (SINH, cell._shape, 1.0 / cell.v0) + no_table
    if not isinstance(cell, OneTransistorOneResistorCell):
        return (LINEAR, 0.0, 1.0) + no_table
    t = cell.table
    vg = cell.params.v_wordline_v - (np.zeros(shape) if dvth is None else dvth)
    ig, tg = t._locate(t.vg_v, vg)
    sizes = np.array(t.ids_a.shape[1:], dtype=np.int64)
    grid = np.array([t.vd_v[0], 1.0 / (t.vd_v[1] - t.vd_v[0]), t.vs_v[0], 1.0 / (t.vs_v[1] - t.vs_v[0])])
    gate_base = np.ascontiguousarray(ig * sizes[0] * sizes[1], dtype=np.int64)
    return (ONE_T_ONE_R, 0.0, 1.0, np.ascontiguousarray(t.ids_a.ravel()), grid, sizes, gate_base,
            np.ascontiguousarray(tg, dtype=float))
