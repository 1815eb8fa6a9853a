"""Reads of a tile of nonlinear cells with wire, driver and TIA resistance (nodal analysis).

The circuit is the one :mod:`bmcnn_hw.golden.tile_physics` describes, with each cell's
nonlinear element ``I = F(v_a, v_b)`` from :mod:`bmcnn_hw.golden.cells`: the whole cell from
row node to column node (sinh), or, for 1T1R, the access transistor from an internal node m
to the column node, the linear device joining the row node to m. Kirchhoff's current law at
every node reads ``G x + A F(x) = b``: ``G`` holds the linear elements (wires, driver and TIA
input resistance, 1T1R devices) plus each nonlinear element's fixed chord conductance
``g_c``, ``A`` is the element incidence (+1 at node a, -1 at node b) and the elements'
deviation from their chord, ``c = F - g_c (v_a - v_b)``, moves to the right-hand side:

    G x_{k+1} = b - A c(x_k)

``G`` is factorised once per tile (sparse LU) and every iteration is a pair of triangular
solves for a batch of reads at once (the chord, or "fixed Jacobian", Newton method). It
converges linearly at a rate set by how far the elements' slopes stray from ``g_c`` times
the share of their voltage the rest of the circuit lets move: a few iterations per decade
for the cells of this toolkit. It stops when no node moves by more than ``tol_v``.

Where the tile has resistive wires, each distinct read is first iterated on the crossbar's own
structure instead (:mod:`bmcnn_hw.golden.tile_mesh`: row and column chains solved in turn, no
factorisation, compiled, one read per thread); the same fixed point, to the same ``tol_v``. Reads
it does not settle (cells strong against the wires) and tiles without wires take the sparse path.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..errors import SimulationError
from .cells import CellModel
from .tile_mesh import MeshSolver
from .tile_physics import conductance_matrix, node_maps

_ORDERING = "MMD_AT_PLUS_A"
BATCH_ELEMENTS = 1 << 21
"""Element evaluations per iteration (batch of reads x cells) kept in memory at once."""


def _stamps(a: np.ndarray, b: np.ndarray, g: np.ndarray, n: int) -> sp.csr_matrix:
    """Nodal matrix of conductances ``g`` between nodes ``a`` and ``b`` (same shapes)."""
    a, b, g = a.ravel(), b.ravel(), np.broadcast_to(g, a.shape).ravel()
    rows = np.concatenate([a, b, a, b])
    cols = np.concatenate([a, b, b, a])
    return sp.csr_matrix((np.concatenate([g, g, -g, -g]), (rows, cols)), shape=(n, n))


class NonlinearTile:
    """One tile's circuit for the chord iteration; :meth:`read` solves batches of reads (by the mesh
    iteration where it applies, else on the sparse factorisation, made on first use).

    Args:
        cell: cell model (``element``, ``element_chord``, ``series_resistor``) of
            :mod:`bmcnn_hw.golden.cells`.
        r_phys: (R, P) device resistances in physical column order.
        dvth: (R, P) access-transistor threshold shifts (1T1R) or None.
        r_wire_ohm, r_source_ohm, r_tia_in_ohm: parasitics as in :func:`tile_response`.
        name: the tile, for error messages.
        mesh: try the mesh iteration of :mod:`bmcnn_hw.golden.tile_mesh` first when the tile has
            resistive wires (no factorisation; the sparse LU is made only if it does not settle).
    """

    def __init__(self, cell: CellModel, r_phys: np.ndarray, dvth: np.ndarray | None, r_wire_ohm: float,
                 r_source_ohm: float, r_tia_in_ohm: float, name: str = "tile", tol_v: float = 1e-11,
                 max_iter: int = 300, mesh: bool = True) -> None:
        self.cell, self.r, self.dvth, self.name = cell, r_phys, dvth, name
        self.tol_v, self.max_iter = tol_v, max_iter
        self.r_wire_ohm, self.r_last = r_wire_ohm, r_wire_ohm + r_tia_in_ohm
        self.gs = 1.0 / r_source_ohm if r_source_ohm > 0 else 0.0
        self.gc = cell.element_chord(r_phys, dvth)
        self._sparse_ready = False
        self._lu: spla.SuperLU | None = None
        self.mesh = MeshSolver(cell, r_phys, dvth, r_wire_ohm, r_source_ohm, self.r_last, tol_v) \
            if mesh and r_wire_ohm > 0 else None
        self.served = {"mesh": 0, "sparse": 0}
        """Reads solved by the mesh iteration and by the sparse factorisation (:meth:`read`)."""

    def _setup_sparse(self) -> None:
        """Build the sparse nodal matrix and incidence of the chord iteration (on first use: the
        mesh iteration needs neither, and a tile's matrices are held for as long as the tile)."""
        rows, cols = self.r.shape
        self.row_node, self.col_node, n = node_maps(rows, cols, self.r_wire_ohm > 0)
        self.first = self.row_node[:, 0]
        if self.cell.series_resistor:  # 1T1R: device row -> m (linear), transistor m -> column
            self.a = n + np.arange(rows * cols).reshape(rows, cols)
            n += rows * cols
            linear = _stamps(self.row_node, self.a, 1.0 / self.r, n)
        else:
            self.a, linear = self.row_node, None
        extra = (self.first, np.full(rows, self.gs)) if self.gs else None
        matrix = conductance_matrix(np.zeros_like(self.r), self.row_node, self.col_node, n, self.r_wire_ohm,
                                    self.r_last, extra) + _stamps(self.a, self.col_node, self.gc, n)
        self.matrix = (matrix + linear if linear is not None else matrix).tocsr()
        fixed = [] if self.gs else [self.first]
        if self.r_last == 0:  # columns held at 0 V by ideal TIAs
            fixed.append(np.unique(self.col_node))
        self.fixed = np.concatenate(fixed) if fixed else np.zeros(0, dtype=np.intp)
        self.free = np.setdiff1d(np.arange(n), self.fixed)
        self.g_free_fixed = self.matrix[self.free][:, self.fixed]
        cells = rows * cols
        data = np.concatenate([np.ones(cells), -np.ones(cells)])
        idx = np.concatenate([self.a.ravel(), self.col_node.ravel()])
        self.incidence = sp.csr_matrix((data, (idx, np.tile(np.arange(cells), 2))), shape=(n, cells))
        self.incidence_free = self.incidence[self.free]
        self.n = n
        self._sparse_ready = True

    @property
    def lu(self) -> spla.SuperLU | None:
        """The sparse LU of the free nodes' chord matrix, made on first use (None when every node is
        fixed: ideal wires and drivers with two-terminal cells, so cells see the drives)."""
        if self._lu is None and len(self.free):
            self._lu = spla.splu(self.matrix[self.free][:, self.free].tocsc(), permc_spec=_ORDERING)
        return self._lu

    def _element_currents(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Element currents F and deviations c = F - g_c v, each (R*P, M)."""
        v_a, v_b = x[self.a.ravel()], x[self.col_node.ravel()]
        r = self.r.reshape(-1, 1)
        dvth = None if self.dvth is None else self.dvth.reshape(-1, 1)
        current = self.cell.element(v_a, v_b, r, dvth)
        return current, current - self.gc.reshape(-1, 1) * (v_a - v_b)

    def _solve(self, volts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Node voltages (n, M), element currents and deviations for row drives ``volts`` (M, R)."""
        m = volts.shape[0]
        x = np.zeros((self.n, m))
        b = np.zeros((self.n, m))
        if self.gs:
            b[self.first] = self.gs * volts.T
        else:
            x[self.first] = volts.T
        if self.lu is None:
            current, c = self._element_currents(x)
            return x, current, c
        base = b[self.free] - self.g_free_fixed @ x[self.fixed]
        x[self.free] = self.lu.solve(base)
        moved = np.inf
        for _ in range(self.max_iter):
            current, c = self._element_currents(x)
            new = self.lu.solve(base - self.incidence_free @ c)
            moved = float(np.max(np.abs(new - x[self.free]), initial=0.0))
            x[self.free] = new
            if moved <= self.tol_v:
                current, c = self._element_currents(x)
                return x, current, c
        raise SimulationError(f"{self.name}: nonlinear nodal solve did not converge in {self.max_iter} "
                              f"iterations (last change {moved:.1e} V)")

    def read(self, volts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Physical column currents (M, P) into the TIAs and driver currents (M, R) for ``volts`` (M, R).

        Identical input vectors are solved once (binary bit planes repeat: background patches,
        all-zero slices); each distinct one by the mesh iteration where the tile has wires and
        the read settles there, else by the sparse factorisation (:attr:`served` counts both).
        """
        i_cols, drivers, _ = self.read_reusable(volts)
        return i_cols, drivers

    def read_reusable(self, volts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`read`, and a mask (M,) of the reads whose currents depend on their own vector only:
        those the mesh iteration settled (each iterated alone, so its result is the same in any
        batch), not the sparse path's (a chunk iterates until all of its reads have settled)."""
        unique, inverse = np.unique(volts, axis=0, return_inverse=True)
        i_cols = np.zeros((len(unique), self.r.shape[1]))
        drivers = np.zeros((len(unique), self.r.shape[0]))
        pending = np.arange(len(unique))
        if self.mesh is not None and len(unique):
            i_cols, drivers, settled = self.mesh.read(unique)
            pending = np.flatnonzero(~settled)
        self.served["mesh"] += len(unique) - len(pending)
        self.served["sparse"] += len(pending)
        reusable = np.ones(len(unique), dtype=bool) if self.mesh is not None else np.zeros(len(unique), dtype=bool)
        reusable[pending] = False
        rows, cols = self.r.shape
        batch = max(1, BATCH_ELEMENTS // (rows * cols))
        for start in range(0, len(pending), batch):
            which = pending[start:start + batch]
            i_cols[which], drivers[which] = self._read_sparse(unique[which])
        inverse = inverse.ravel()
        return i_cols[inverse], drivers[inverse], reusable[inverse]

    def _read_sparse(self, chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Column and driver currents of ``chunk`` by the chord iteration on the sparse LU."""
        if not self._sparse_ready:
            self._setup_sparse()
        rows, cols = self.r.shape
        x, current, c = self._solve(chunk)
        if self.r_last > 0:
            i_cols = x[self.col_node[-1, :]] / self.r_last
        else:
            i_cols = current.reshape(rows, cols, -1).sum(axis=0)
        if self.gs:
            drivers = (chunk.T - x[self.first]) * self.gs
        else:
            drivers = (self.matrix @ x + self.incidence @ c)[self.first]
        return i_cols.T, drivers.T
