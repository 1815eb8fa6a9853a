"""Linear response of one crossbar tile with wire, driver and TIA resistance (sparse nodal analysis).

Circuit (the same one the netlist writer emits): row r is driven by an ideal source V_r
through ``r_source`` (omitted when 0) into the row's first cell; along a row, ``r_wire``
joins adjacent cells; each device joins its row node to its column node; down a column,
``r_wire`` joins adjacent cells and one last segment joins the bottom cell to the TIA.
A TIA of open-loop gain A and feedback R_f presents R_f / (1 + A) at its input (0 for an
ideal TIA: a virtual ground) and senses the column current.

The circuit is linear in the row voltages, so the tile is characterised exactly by two
matrices: ``transfer`` (R, P), column currents ``I = V @ transfer``, and ``admittance``
(R, R), driver currents ``I_drv = V @ admittance`` (read power is ``V . I_drv``).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

_ORDERING = "MMD_AT_PLUS_A"  # the nodal matrix is structurally symmetric: ~25 % less fill than COLAMD
NODAL_MEMO_SIZE = 64
"""Nodal responses kept per process, by content: a 768 x 129 met1 tile takes ~30 s to characterise,
and the commands that read one chip several times (tuning, then its before/after accuracy, SPICE
against physics, ``ppa``, the demo) would otherwise pay that each time."""
_NODAL_MEMO: OrderedDict[tuple[object, ...], TileResponse] = OrderedDict()


class TileResponse:
    """Exact linear response of a tile (see module docstring).

    ``admittance`` may be given as a function that computes it: a wired tile's driver
    admittance costs one solve per row while its transfer costs one per column, and reads
    that count no energy (accuracy runs) never need it. It is computed once, when first read.
    ``drivers``, given with such a function, solves driver currents for a few reads directly (one
    solve per distinct read, :meth:`driver_currents`), so that a check of a few images does not pay
    a solve per row.
    """

    def __init__(self, transfer: np.ndarray, admittance: np.ndarray | Callable[[], np.ndarray],
                 drivers: Callable[[np.ndarray], np.ndarray] | None = None):
        self.transfer = transfer
        """(R, P) column current per volt on each row (A/V)."""
        self._admittance = admittance
        self._drivers = drivers
        self.solved_reads = 0
        """Distinct reads whose driver currents were solved one by one (:meth:`driver_currents`)."""

    @property
    def admittance(self) -> np.ndarray:
        """(R, R) current delivered by driver k per volt on row r (A/V)."""
        if callable(self._admittance):
            self._admittance = _read_only(self._admittance())
        return self._admittance

    @property
    def diagonal_admittance(self) -> bool | None:
        """Whether the admittance is diagonal (ideal wires), None if it is not computed yet."""
        return None if callable(self._admittance) else not np.count_nonzero(
            self._admittance - np.diag(np.diag(self._admittance)))

    def driver_currents(self, volts: np.ndarray) -> np.ndarray:
        """(M, R) driver currents for row voltages ``volts`` (M, R): ``volts @ admittance``, or, while
        the admittance is not computed and the distinct reads solved so far stay below half the
        rows, one solve per distinct read (equal to rounding; the admittance is computed once
        that would cost more)."""
        if self._drivers is not None and callable(self._admittance):
            unique, inverse = np.unique(volts, axis=0, return_inverse=True)
            if 2 * (self.solved_reads + len(unique)) < volts.shape[1]:
                self.solved_reads += len(unique)
                solved: np.ndarray = self._drivers(unique)[inverse.ravel()]
                return solved
        currents: np.ndarray = volts @ self.admittance
        return currents


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False  # shared between readers of the same tile
    return array


def tile_response(r_phys: np.ndarray, r_wire_ohm: float = 0.0, r_source_ohm: float = 0.0,
                  r_tia_in_ohm: float = 0.0) -> TileResponse:
    """Characterise a tile of resistances ``r_phys`` (R, P) in physical column order."""
    g = 1.0 / r_phys
    if r_wire_ohm == 0 and r_tia_in_ohm == 0:
        if r_source_ohm == 0:
            return TileResponse(g.copy(), np.diag(g.sum(axis=1)))
        # Each row is one node: v_r = V_r * Gs / (Gs + sum_j g_rj); columns sit at 0 V.
        gs = 1.0 / r_source_ohm
        a = gs / (gs + g.sum(axis=1))
        return TileResponse(g * a[:, None], np.diag(a * g.sum(axis=1)))
    key = (hashlib.sha256(np.ascontiguousarray(r_phys, dtype=float).tobytes()).hexdigest(), r_phys.shape,
           float(r_wire_ohm), float(r_source_ohm), float(r_tia_in_ohm))
    if key in _NODAL_MEMO:
        _NODAL_MEMO.move_to_end(key)
        return _NODAL_MEMO[key]
    response = _nodal_response(g, r_wire_ohm, r_source_ohm, r_tia_in_ohm)
    _read_only(response.transfer)
    _NODAL_MEMO[key] = response
    if len(_NODAL_MEMO) > NODAL_MEMO_SIZE:
        _NODAL_MEMO.popitem(last=False)
    return response


def node_maps(rows: int, cols: int, wires: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """Row and column node index of every cell; with ideal wires a row (column) is one node."""
    if wires:
        row_node = np.arange(rows * cols).reshape(rows, cols)
        return row_node, rows * cols + row_node, 2 * rows * cols
    row_node = np.repeat(np.arange(rows)[:, None], cols, axis=1)
    col_node = rows + np.repeat(np.arange(cols)[None, :], rows, axis=0)
    return row_node, col_node, rows + cols


def conductance_matrix(g: np.ndarray, row_node: np.ndarray, col_node: np.ndarray, n: int, r_wire_ohm: float,
                       r_last_ohm: float, extra_diag: tuple[np.ndarray, np.ndarray] | None = None) -> sp.csr_matrix:
    """Sparse nodal matrix: devices ``g``, wire segments, the last segment to ground (left out when
    ``r_last_ohm`` is 0: the caller then holds the column nodes at 0 V) and ``extra_diag``
    (nodes, conductances to ground)."""
    a: list[np.ndarray] = []
    b: list[np.ndarray] = []
    v: list[np.ndarray] = []

    def stamp(i: np.ndarray, j: np.ndarray, cond: np.ndarray | float) -> None:
        cond = np.broadcast_to(cond, np.shape(i)).ravel()
        i, j = np.ravel(i), np.ravel(j)
        a.extend([i, j, i, j])
        b.extend([i, j, j, i])
        v.extend([cond, cond, -cond, -cond])

    stamp(row_node, col_node, g)
    if r_wire_ohm > 0:
        stamp(row_node[:, :-1], row_node[:, 1:], 1.0 / r_wire_ohm)
        stamp(col_node[:-1, :], col_node[1:, :], 1.0 / r_wire_ohm)
    if r_last_ohm > 0:
        bottom = col_node[-1, :]
        a.append(bottom)
        b.append(bottom)
        v.append(np.full(bottom.shape, 1.0 / r_last_ohm))
    if extra_diag is not None:
        nodes, cond = extra_diag
        a.append(nodes)
        b.append(nodes)
        v.append(cond)
    return sp.csr_matrix((np.concatenate(v), (np.concatenate(a), np.concatenate(b))), shape=(n, n))


def _nodal_response(g: np.ndarray, r_wire_ohm: float, r_source_ohm: float, r_tia_in_ohm: float) -> TileResponse:
    """The transfer now (by the adjoint when the tile has fewer columns than rows), the driver
    admittance when first asked for, and driver currents of a few reads on the circuit factorised
    once (held while such reads come, :data:`HELD_CIRCUITS` tiles at most)."""
    def circuit() -> _NodalCircuit:
        return _NodalCircuit(g, r_wire_ohm, r_source_ohm, r_tia_in_ohm)

    rows, cols = g.shape
    if cols >= rows:
        transfer, admittance = circuit().solve_rows()
        return TileResponse(transfer, admittance)
    token = object()  # this response's place among the held circuits

    def drivers(volts: np.ndarray) -> np.ndarray:
        return _held_circuit(token, circuit).driver_currents(volts)

    def full_admittance() -> np.ndarray:
        _HELD.pop(token, None)  # the admittance serves every later read
        return circuit().solve_rows()[1]

    # the circuit is built again for the admittance: the response keeps only g meanwhile
    return TileResponse(circuit().transfer_adjoint(), full_admittance, drivers)


HELD_CIRCUITS = 8
"""Factorised circuits kept for tiles whose driver currents are solved read by read (a check of a
few images asks one tile many times, a few reads each)."""
_HELD: OrderedDict[object, _NodalCircuit] = OrderedDict()
"""Keyed by the response's own token object (kept alive here, so never confused with another's)."""


def _held_circuit(token: object, build: Callable[[], _NodalCircuit]) -> _NodalCircuit:
    """The circuit held for ``token``'s tile, built (and the least recently used one let go) if none is."""
    if token in _HELD:
        _HELD.move_to_end(token)
        return _HELD[token]
    _HELD[token] = circuit = build()
    if len(_HELD) > HELD_CIRCUITS:
        _HELD.popitem(last=False)
    return circuit


class _NodalCircuit:
    """The nodal equations of a wired tile: the driven first node of each row is either behind
    ``r_source`` (a port node with a Norton source) or held at its row's voltage (eliminated).

    The matrix is symmetric (a reciprocal resistor network), which the adjoint solve uses: the
    current into TIA p for 1 V on row r is the row-r entry of one solve per column instead of
    the column-p entry of one solve per row.
    """

    def __init__(self, g: np.ndarray, r_wire_ohm: float, r_source_ohm: float, r_tia_in_ohm: float):
        rows, cols = g.shape
        row_node, col_node, n = node_maps(rows, cols, r_wire_ohm > 0)
        self.rows, self.first, self.bottom = rows, row_node[:, 0], col_node[-1, :]
        self.r_last = r_wire_ohm + r_tia_in_ohm  # last wire segment in series with the TIA input
        self.gs = 1.0 / r_source_ohm if r_source_ohm > 0 else 0.0
        extra = (self.first, np.full(rows, self.gs)) if self.gs else None
        matrix = conductance_matrix(g, row_node, col_node, n, r_wire_ohm, self.r_last, extra)
        if self.gs:
            self.free = np.arange(n)
            self.system, self.coupling = matrix.tocsc(), None
        else:  # ideal drivers fix the first node of each row; the other nodes are unknown
            self.free = np.setdiff1d(np.arange(n), self.first)
            self.system = matrix[self.free][:, self.free].tocsc()
            self.coupling = matrix[self.free][:, self.first].tocsc()  # (free, R)
        self.matrix = matrix
        self._lu: spla.SuperLU | None = None

    def _solve(self, rhs: np.ndarray) -> np.ndarray:
        if self._lu is None:
            self._lu = spla.splu(self.system, permc_spec=_ORDERING)
        solution: np.ndarray = self._lu.solve(rhs)
        return solution

    def transfer_adjoint(self) -> np.ndarray:
        """(R, P) transfer from one solve per TIA column (the matrix is symmetric)."""
        bottom = np.searchsorted(self.free, self.bottom)  # column nodes are never driven nodes
        unit = np.zeros((len(self.free), len(bottom)))
        unit[bottom, np.arange(len(bottom))] = 1.0
        z = self._solve(unit)  # z[:, p] = A^-1 e_p, so e_p . A^-1 b = z[:, p] . b
        transfer = self.gs * z[self.first, :] if self.coupling is None else -(self.coupling.T @ z)
        return np.ascontiguousarray(transfer / self.r_last)

    def driver_currents(self, volts: np.ndarray) -> np.ndarray:
        """(M, R) driver currents for row voltages ``volts`` (M, R), one solve per read."""
        if self.coupling is None:
            rhs = np.zeros((len(self.free), len(volts)))
            rhs[self.first] = self.gs * volts.T
            x = self._solve(rhs)
            return np.ascontiguousarray(((volts.T - x[self.first]) * self.gs).T)
        x = np.zeros((self.matrix.shape[0], len(volts)))
        x[self.first] = volts.T
        x[self.free] = self._solve(-(self.coupling @ volts.T))
        return np.ascontiguousarray(np.asarray(self.matrix[self.first] @ x).T)

    def solve_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(transfer (R, P), admittance (R, R)) from one solve per driven row."""
        rows, eye = self.rows, np.arange(self.rows)
        if self.coupling is None:
            rhs = np.zeros((len(self.free), rows))
            rhs[self.first, eye] = self.gs
            x = self._solve(rhs)
            drivers = (np.eye(rows) - x[self.first, :]) * self.gs  # (k, r): driver k's current for 1 V on row r
        else:
            x = np.zeros((self.matrix.shape[0], rows))
            x[self.first, eye] = 1.0
            x[self.free] = self._solve(-self.coupling.toarray())
            drivers = np.asarray(self.matrix[self.first] @ x)  # net current injected at each driven node
        currents = x[self.bottom, :] / self.r_last  # (P, R)
        return np.ascontiguousarray(currents.T), np.ascontiguousarray(drivers.T)
