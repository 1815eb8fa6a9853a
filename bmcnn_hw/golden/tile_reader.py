"""Tile readers: what a read of a crossbar tile returns, and the physics executor's reader.

A tile read drives its used rows with voltages ``volts`` (M, rows): {0, V_read} for unipolar
inputs, {-V_read, +V_read} for bipolar ones. The reader returns the physical column currents
split into ``i_plus`` / ``i_minus`` (differential: G+ and G- columns; reference encoding: each
weight column and the shared reference column) and the current of every row driver. Readers are
pluggable (:class:`TileReader`): :class:`PhysicsReader` here (NumPy/SciPy) and the SPICE reader in
:mod:`bmcnn_hw.spice.run`. A reader that knows a tile's exact linear map offers it
(:meth:`TileReader.linear_map`), and :class:`~bmcnn_hw.golden.crossbar.CrossbarAccumulator` then
reads distinct inputs with one matrix product instead of a read call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from ..errors import SimulationError
from .chip import Chip, TileKey
from .code_memo import BUDGET_BYTES, CodeMemo
from .readout import split_columns
from .tile_nonlinear import NonlinearTile
from .tile_physics import TileResponse, tile_response


@dataclass(frozen=True)
class TileRead:
    """Currents of one batch of reads of one tile."""

    i_plus: np.ndarray
    """(M, C) current of each G+ column (or weight column, reference encoding), A."""
    i_minus: np.ndarray
    """(M, C) current of each G- column (or the reference column, repeated), A."""
    i_drivers: np.ndarray
    """(M, R) current delivered by each row driver, A."""
    reusable: np.ndarray | None = None
    """(M,) True where a read's currents depend on its input vector alone, not on the other reads
    of the call (a :class:`CodeMemo` keeps only those); None: none may be kept."""


class RecordedRead(NamedTuple):
    """One tile read as :class:`CrossbarAccumulator` records it (``record=True``)."""

    layer: int
    """Layer index."""
    rt: int
    """Row tile."""
    ct: int
    """Column tile."""
    plane: int
    """Input bit plane (0 = least significant)."""
    volts: np.ndarray
    """(M, R) row voltages."""
    i_plus: np.ndarray
    """(M, C) G+ (or weight) column currents, A."""
    i_minus: np.ndarray
    """(M, C) G- (or reference) column currents, A."""
    codes: np.ndarray
    """(M, C) ADC codes."""


class TileDifference:
    """Linear response of a tile reduced to what the ADC and the energy meter need."""

    def __init__(self, response: TileResponse, encoding: str):
        self.encoding = encoding
        plus, minus = split_columns(response.transfer, encoding)
        self.transfer = plus - minus
        """(R, C) differential column current ``I+ - I-`` per volt on each row (A/V)."""
        self._response = response
        self._diagonal: tuple[np.ndarray | None] | None = None

    def column_currents(self, volts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(i_plus, i_minus), each (M, C), for row voltages ``volts`` (M, R): what the TIAs see
        before their rails clip."""
        return split_columns(volts @ self._response.transfer, self.encoding)

    @property
    def admittance(self) -> np.ndarray:
        """(R, R) driver admittance (read power is ``V . V @ admittance``); a wired tile's is
        computed when first asked for (see :class:`TileResponse`)."""
        return self._response.admittance

    @property
    def diagonal(self) -> np.ndarray | None:
        """The admittance's diagonal when it is diagonal (ideal wires), else None (a wired tile's
        admittance, not computed for it)."""
        if self._diagonal is None:
            diagonal = self._response.diagonal_admittance
            self._diagonal = (np.diag(self.admittance) if diagonal else None,)
        return self._diagonal[0]

    def power_form(self, volts: np.ndarray) -> np.ndarray:
        """``V . (V @ admittance)`` per read (W)."""
        diagonal = self.diagonal
        power: np.ndarray = ((volts * volts) @ diagonal if diagonal is not None
                             else np.sum(volts * self._response.driver_currents(volts), axis=1))
        return power


ReadKey = tuple[int, int, int, int, int]
"""A tile and what a read of it uses: (layer index, row tile, column tile, used rows, used columns)."""


class TileReader(Protocol):
    """What :class:`CrossbarAccumulator` needs of a tile reader (:class:`PhysicsReader`,
    :class:`~bmcnn_hw.spice.run.SpiceReader`)."""

    chip: Chip
    memo: CodeMemo | None
    """Codes of earlier reads kept across accumulators (batches), or None."""
    solves_in_bulk: bool
    """Whether :meth:`prefetch` wants every distinct read of a layer before the layer is read
    (ngspice worker processes); the accumulator skips collecting them where it does not."""

    def prefetch(self, layer_index: int, requests: list[tuple[int, int, np.ndarray, int]]) -> None:
        """Solve the ``(rt, ct, volts, used_cols)`` reads of a layer ahead (if :attr:`solves_in_bulk`)."""
        ...

    def read(self, layer_index: int, rt: int, ct: int, volts: np.ndarray, used_cols: int) -> TileRead:
        """Currents of ``volts`` (M, used_rows) on the used part of tile (rt, ct) of a layer."""
        ...

    def linear_map(self, layer_index: int, rt: int, ct: int, used_rows: int, used_cols: int) -> TileDifference | None:
        """The tile's exact linear map, when every read of it is one (else None: call :meth:`read`)."""
        ...


class PhysicsReader:
    """Tile reads of a chip: from each tile's exact linear response where the tile is linear in
    its binary inputs, else by the nonlinear nodal solve of :mod:`bmcnn_hw.golden.tile_nonlinear`.

    A tile is linear in its inputs when its cells are linear resistors, or when every cell sees
    exactly its row's drive (ideal wires, drivers and TIA): a cell then carries
    ``F(+-V_read) = +-V_read g_eff`` or nothing, with ``g_eff = F(V_read) / V_read``.
    """

    nonlinear_tile_class: type[NonlinearTile] = NonlinearTile
    """What :meth:`nonlinear_tile` builds (a benchmark swaps in the previous read path)."""
    solves_in_bulk = False
    """Reads are solved when read (:class:`TileReader`)."""

    def __init__(self, chip: Chip, memo_bytes: int = BUDGET_BYTES):
        self.chip = chip
        self._responses: dict[ReadKey, TileResponse] = {}
        self._differences: dict[ReadKey, TileDifference] = {}
        self._nonlinear: dict[ReadKey, NonlinearTile] = {}
        self.level_linear = chip.level_linear
        """True when every tile read is a linear map of the row voltages (see class docstring)."""
        self.memo = None if self.level_linear else CodeMemo(memo_bytes)
        """Nonlinear reads' codes kept across batches (:mod:`bmcnn_hw.golden.code_memo`); None when
        every read is a linear map (a matrix product is cheaper than a look-up)."""

    def _effective_resistance(self, key: TileKey, used_rows: int, used_cols: int) -> np.ndarray:
        tile = self.chip.tiles[key]
        r_phys, _ = tile.physical(used_rows, used_cols)
        if self.chip.cell.linear:
            return r_phys
        v = self.chip.params.v_read_v
        return v / self.chip.cell.current(np.full(r_phys.shape, v), r_phys, tile.physical_dvth(used_rows, used_cols))

    def response(self, layer_index: int, rt: int, ct: int, used_rows: int, used_cols: int) -> TileResponse:
        """The (cached) linear response of the used part of a tile (for ``level_linear`` chips)."""
        key = (layer_index, rt, ct, used_rows, used_cols)
        if not self.level_linear:
            raise SimulationError("a tile of nonlinear cells with wire, driver or TIA resistance has no linear "
                                  "response; read it with PhysicsReader.read")
        if key not in self._responses:
            r_phys = self._effective_resistance((layer_index, rt, ct), used_rows, used_cols)
            p = self.chip.params
            self._responses[key] = tile_response(r_phys, p.r_wire_ohm, p.r_source_ohm, self.chip.readout.tia_input_ohm)
        return self._responses[key]

    def nonlinear_tile(self, layer_index: int, rt: int, ct: int, used_rows: int, used_cols: int) -> NonlinearTile:
        """The (cached) factorised nonlinear circuit of the used part of a tile."""
        key = (layer_index, rt, ct, used_rows, used_cols)
        if key not in self._nonlinear:
            tile = self.chip.tiles[(layer_index, rt, ct)]
            r_phys, _ = tile.physical(used_rows, used_cols)
            p = self.chip.params
            self._nonlinear[key] = self.nonlinear_tile_class(
                self.chip.cell, r_phys, tile.physical_dvth(used_rows, used_cols), p.r_wire_ohm, p.r_source_ohm,
                self.chip.readout.tia_input_ohm, name=f"layer {layer_index} tile ({rt},{ct})")
        return self._nonlinear[key]

    def nonlinear_reads(self) -> dict[str, int]:
        """Distinct reads the nonlinear tiles solved so far: by the mesh iteration and by the sparse
        factorisation (identical input vectors of one read call count once), and ``memo``: distinct
        reads of a batch served by an earlier batch's codes (:attr:`memo`), not solved again."""
        served = {"mesh": 0, "sparse": 0, "memo": self.memo.hits if self.memo is not None else 0}
        for tile in self._nonlinear.values():
            for path, count in tile.served.items():
                served[path] += count
        return served

    def difference(self, layer_index: int, rt: int, ct: int, used_rows: int, used_cols: int) -> TileDifference:
        """The (cached) response of ``I+ - I-`` per volt and the read-power form of a tile."""
        key = (layer_index, rt, ct, used_rows, used_cols)
        if key not in self._differences:
            resp = self.response(layer_index, rt, ct, used_rows, used_cols)
            self._differences[key] = TileDifference(resp, self.chip.encoding)
        return self._differences[key]

    def prefetch(self, layer_index: int, requests: list[tuple[int, int, np.ndarray, int]]) -> None:
        """Nothing: physics solves each read when it is read (:class:`TileReader`)."""

    def linear_map(self, layer_index: int, rt: int, ct: int, used_rows: int, used_cols: int) -> TileDifference | None:
        """:meth:`difference` on ``level_linear`` chips, else None (:class:`TileReader`)."""
        return self.difference(layer_index, rt, ct, used_rows, used_cols) if self.level_linear else None

    def read(self, layer_index: int, rt: int, ct: int, volts: np.ndarray, used_cols: int) -> TileRead:
        """Currents for row voltages ``volts`` (M, used_rows).

        Padding rows sit at 0 V and padding columns are not read: with ideal wires they
        carry no current; with resistive wires they are left out of the circuit (the
        netlist writer does the same).
        """
        if not self.level_linear:
            tile = self.nonlinear_tile(layer_index, rt, ct, volts.shape[1], used_cols)
            i_phys, i_drivers, reusable = tile.read_reusable(volts)
            i_plus, i_minus = split_columns(i_phys, self.chip.encoding)
            return TileRead(i_plus, i_minus, i_drivers, reusable)
        resp = self.response(layer_index, rt, ct, volts.shape[1], used_cols)
        i_plus, i_minus = split_columns(volts @ resp.transfer, self.chip.encoding)
        return TileRead(i_plus, i_minus, resp.driver_currents(volts))
