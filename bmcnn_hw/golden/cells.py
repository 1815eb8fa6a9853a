"""Read I-V of one crossbar cell, vectorised: linear resistor, sinh RRAM, 1T1R.

A cell is a two-terminal element between its row node and its column node. Every model
takes the cell's programmed read resistance ``r`` (ohm, sampled per device by the Chip) and
the voltage ``v`` across the cell (row node minus column node) and returns the current from
row to column:

- ``linear``: ``I = v / r``.
- ``sinh`` (filamentary RRAM read regime): ``I = I_s sinh(v / V_0)`` with
  ``I_s = V_read / (r sinh(V_read / V_0))``, so ``I(V_read) = V_read / r`` exactly.
- ``1t1r``: a linear device ``r`` from the row node to an internal node m, then an nMOS
  access transistor from m (drain) to the column node (source), gate at
  ``V_wl - dVth`` (the cell's threshold mismatch), body at 0 V. The transistor is the
  ngspice-characterised table :class:`TransistorTable` (sky130 ``nfet_01v8`` of the
  chip's corner, tabulated over gate, drain and source voltage with the body at 0 V, so the
  column node's rise under IR drop is followed, body effect included); the series equation
  ``(v - v_ds) / r = I_d(v_g, v_col + v_ds, v_col)`` is solved per cell by safeguarded
  Newton on the table's trilinear interpolant. The interpolation is the only difference
  from ngspice; the tests measure the residual.

``current`` is the two-terminal view (ideal wires, the ADC unit). The nodal solve of
:mod:`bmcnn_hw.golden.tile_nonlinear` uses ``element`` / ``element_chord`` instead: the whole
cell for two-terminal models, and for 1T1R only the transistor (the device becomes a linear
element to an internal node), so no per-cell inner solve is needed there.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from ..config import DeviceParams
from ..errors import SimulationError


@dataclass(frozen=True)
class TransistorTable:
    """Drain current I_d(v_g, v_d, v_s) of one transistor on a regular grid, body at 0 V."""

    vg_v: np.ndarray
    """(G,) increasing, uniformly spaced gate voltages (V)."""
    vd_v: np.ndarray
    """(D,) increasing, uniformly spaced drain voltages (V)."""
    vs_v: np.ndarray
    """(S,) increasing, uniformly spaced source voltages (V)."""
    ids_a: np.ndarray
    """(G, D, S) current into the drain (A)."""
    source: str = ""
    """Where the table comes from (model, corner, W/L), for reports."""

    @staticmethod
    def _locate(grid: np.ndarray, value: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        f = np.clip((value - grid[0]) / (grid[1] - grid[0]), 0, len(grid) - 1 - 1e-9)
        i = f.astype(np.intp)
        return i, f - i

    def current(self, vg: np.ndarray | float, vd: np.ndarray, vs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Trilinear I_d and its derivative dI_d/dv_d at (vg, vd, vs) (broadcast shapes); values
        outside the grid are clamped to its edge."""
        (ig, tg), (id_, td), (is_, ts) = (self._locate(self.vg_v, vg), self._locate(self.vd_v, vd),
                                          self._locate(self.vs_v, vs))
        t = self.ids_a.ravel()  # flat gathers: one index computation instead of three per corner
        step_d, step_g = self.ids_a.shape[2], self.ids_a.shape[1] * self.ids_a.shape[2]
        base = ig * step_g + id_ * step_d + is_

        def plane(d: int) -> np.ndarray:  # bilinear in (vg, vs) at drain index id_ + d
            at = base + d * step_d
            low = t.take(at) * (1 - ts) + t.take(at + 1) * ts
            high = t.take(at + step_g) * (1 - ts) + t.take(at + step_g + 1) * ts
            mixed: np.ndarray = low * (1 - tg) + high * tg
            return mixed

        a, b = plane(0), plane(1)
        return a + (b - a) * td, (b - a) / (self.vd_v[1] - self.vd_v[0])


class _TwoTerminalCell(ABC):
    """Cells whose nonlinear element in the nodal solve is the whole cell, row to column node."""

    series_resistor = False

    @abstractmethod
    def current(self, v: np.ndarray | float, r: np.ndarray, dvth: np.ndarray | None = None,
                v_col: np.ndarray | float | None = None) -> np.ndarray:
        """Current (A) from row to column for ``v`` across cells of resistance ``r``."""

    @abstractmethod
    def chord(self, r: np.ndarray, dvth: np.ndarray | None = None) -> np.ndarray:
        """Chord conductance of the cell (S)."""

    def element(self, v_a: np.ndarray, v_b: np.ndarray, r: np.ndarray, dvth: np.ndarray | None = None) -> np.ndarray:
        """Current of the nonlinear element from node a (row) to node b (column)."""
        return self.current(v_a - v_b, r)

    def element_chord(self, r: np.ndarray, dvth: np.ndarray | None = None) -> np.ndarray:
        """Chord conductance of the element: the cell's own :meth:`chord`."""
        return self.chord(r, dvth)


class LinearCell(_TwoTerminalCell):
    """Two-state resistor: ``I = v / r``."""

    linear = True

    def __init__(self, params: DeviceParams) -> None:
        self.params = params

    def current(self, v: np.ndarray | float, r: np.ndarray, dvth: np.ndarray | None = None,
                v_col: np.ndarray | float | None = None) -> np.ndarray:
        """Current (A) from row to column for ``v`` across cells of resistance ``r``."""
        return v / r

    def chord(self, r: np.ndarray, dvth: np.ndarray | None = None) -> np.ndarray:
        """Fixed conductance used as the Jacobian of the nodal iteration (S)."""
        return 1.0 / r


class SinhCell(_TwoTerminalCell):
    """Filamentary RRAM read model ``I = I_s sinh(v / V_0)``, ``I(V_read) = V_read / r``."""

    linear = False

    def __init__(self, params: DeviceParams) -> None:
        self.params = params
        self.v0 = params.sinh_v0_v
        self._shape: float = params.v_read_v / np.sinh(params.v_read_v / self.v0)  # I_s * r

    def current(self, v: np.ndarray | float, r: np.ndarray, dvth: np.ndarray | None = None,
                v_col: np.ndarray | float | None = None) -> np.ndarray:
        """Current (A) from row to column for ``v`` across cells of read resistance ``r``."""
        return (self._shape / r) * np.sinh(v / self.v0)

    def chord(self, r: np.ndarray, dvth: np.ndarray | None = None) -> np.ndarray:
        """Tangent conductance at V_read (the operating point of an active cell)."""
        g: np.ndarray = (self._shape / r) * np.cosh(self.params.v_read_v / self.v0) / self.v0
        return g


class OneTransistorOneResistorCell:
    """Linear device in series with an access transistor from a :class:`TransistorTable`."""

    linear = False

    def __init__(self, params: DeviceParams, table: TransistorTable) -> None:
        self.params, self.table = params, table
        _, gds0 = table.current(np.array(params.v_wordline_v), np.array(0.0), np.array(0.0))
        self._r_channel = 1.0 / float(gds0)  # small-signal channel resistance at v_ds = 0

    def _vds(self, v: np.ndarray, r: np.ndarray, vg: np.ndarray, v_col: np.ndarray) -> np.ndarray:
        """Drain-source voltage solving ``(v - vds) / r = I_d(vg, v_col + vds, v_col)`` per cell
        (Newton on the table's interpolant, kept inside the bracket [min(v, 0), max(v, 0)])."""
        lo, hi = np.minimum(v, 0.0), np.maximum(v, 0.0)
        vds = v * (self._r_channel / (r + self._r_channel))
        for _ in range(60):
            ids, gds = self.table.current(vg, v_col + vds, v_col)
            h = ids - (v - vds) / r
            lo = np.where(h < 0, vds, lo)  # h rises with vds: the root lies above
            hi = np.where(h > 0, vds, hi)
            nxt = vds - h / (gds + 1.0 / r)
            nxt = np.where((nxt <= lo) | (nxt >= hi), 0.5 * (lo + hi), nxt)
            if np.max(np.abs(nxt - vds), initial=0.0) <= 1e-16:
                return nxt
            vds = nxt
        raise SimulationError("1T1R cell: the series device/transistor equation did not converge in 60 steps")

    def current(self, v: np.ndarray | float, r: np.ndarray, dvth: np.ndarray | None = None,
                v_col: np.ndarray | float | None = None) -> np.ndarray:
        """Current (A) from row to column for ``v`` across cells of device resistance ``r``, the
        column node at ``v_col`` (default 0 V) and gate at V_wl - ``dvth``."""
        vg = self.params.v_wordline_v - (0.0 if dvth is None else dvth)
        v_col = 0.0 if v_col is None else v_col
        v, r, vg, v_col = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (v, r, vg, v_col)))
        i: np.ndarray = (v - self._vds(v, r, vg, v_col)) / r
        return i

    def chord(self, r: np.ndarray, dvth: np.ndarray | None = None) -> np.ndarray:
        """Series conductance of the device and the channel at v_ds = 0."""
        return 1.0 / (r + self._r_channel)

    series_resistor = True
    """The nodal solve gives each cell an internal node m: the linear device ``r`` from the row
    node to m, and the transistor (the nonlinear element) from m to the column node."""

    def element(self, v_a: np.ndarray, v_b: np.ndarray, r: np.ndarray, dvth: np.ndarray | None = None) -> np.ndarray:
        """Drain current of the access transistor, drain at ``v_a`` (node m), source at ``v_b``."""
        vg = self.params.v_wordline_v - (0.0 if dvth is None else dvth)
        return self.table.current(vg, v_a, v_b)[0]

    def element_chord(self, r: np.ndarray, dvth: np.ndarray | None = None) -> np.ndarray:
        """The channel conductance at v_ds = 0 for every transistor."""
        return np.full(np.shape(r), 1.0 / self._r_channel)


CellModel = LinearCell | SinhCell | OneTransistorOneResistorCell
"""A read model of one crossbar cell (:func:`cell_model` picks it)."""


def cell_model(params: DeviceParams, table: TransistorTable | None = None) -> CellModel:
    """The cell model of ``params.cell`` (1T1R needs the transistor ``table``).

    Raises:
        SimulationError: for a 1T1R cell without a table.
    """
    if params.cell == "sinh":
        return SinhCell(params)
    if params.cell == "1t1r":
        if table is None:
            raise SimulationError("1T1R cells need a transistor table characterised by ngspice")
        return OneTransistorOneResistorCell(params, table)
    return LinearCell(params)
