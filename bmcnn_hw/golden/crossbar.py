"""Crossbar physics executor: tiles of sampled devices, TIA + ADC, bit-serial accumulation.

A tile read drives its used rows with voltages ``volts`` (M, rows): {0, V_read} for
unipolar inputs, {-V_read, +V_read} for bipolar ones. The reader returns the physical
column currents split into ``i_plus`` / ``i_minus`` (differential: G+ and G- columns;
reference encoding: each weight column and the shared reference column) and the
current of every row driver. The ADC turns ``I+ - I-`` into a signed code with one
step per ``lsb_units`` units of the nominal unit current (``V_read (G_on - G_off)``,
halved for the reference encoding); for an ideal chip the code is the tile's integer
dot product (bipolar: ``2 dot - colsum``, corrected digitally). The accumulator sums
codes over row tiles and shift-adds bit planes.

The tile reader is pluggable: :class:`PhysicsReader` here (NumPy/SciPy) and the SPICE
reader in :mod:`bmcnn_hw.spice.run`; everything around the read is shared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..artefact import CompiledModel
from ..config import ReadoutParams
from ..errors import SimulationError
from .chip import Chip
from .integer import Trace, exact_matmul, run_integer
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


def split_columns(i_phys: np.ndarray, encoding: str) -> tuple[np.ndarray, np.ndarray]:
    """Physical column currents (M, P) in layout order -> (i_plus, i_minus), each (M, C)."""
    if encoding == "reference":
        return i_phys[:, :-1], np.repeat(i_phys[:, -1:], i_phys.shape[1] - 1, axis=1)
    return i_phys[:, 0::2], i_phys[:, 1::2]


@dataclass(frozen=True)
class TileDifference:
    """Linear response of a tile reduced to what the ADC and the energy meter need."""

    transfer: np.ndarray
    """(R, C) differential column current ``I+ - I-`` per volt on each row (A/V)."""
    admittance: np.ndarray
    """(R, R) driver admittance (read power is ``V . V @ admittance``)."""
    diagonal: np.ndarray | None
    """The admittance's diagonal when it is diagonal (ideal wires), else None."""

    def power_form(self, volts: np.ndarray) -> np.ndarray:
        """``V . (V @ admittance)`` per read (W)."""
        if self.diagonal is not None:
            return (volts * volts) @ self.diagonal
        return np.sum(volts * (volts @ self.admittance), axis=1)


class PhysicsReader:
    """Tile reads of a chip: from each tile's exact linear response where the tile is linear in
    its binary inputs, else by the nonlinear nodal solve of :mod:`bmcnn_hw.golden.tile_nonlinear`.

    A tile is linear in its inputs when its cells are linear resistors, or when every cell sees
    exactly its row's drive (ideal wires, drivers and TIA): a cell then carries
    ``F(+-V_read) = +-V_read g_eff`` or nothing, with ``g_eff = F(V_read) / V_read``.
    """

    def __init__(self, chip: Chip):
        self.chip = chip
        self._responses: dict[tuple, TileResponse] = {}
        self._differences: dict[tuple, TileDifference] = {}
        self._nonlinear: dict[tuple, NonlinearTile] = {}
        p = chip.params
        self.level_linear = chip.cell.linear or not (p.has_parasitics or chip.readout.tia_input_ohm)
        """True when every tile read is a linear map of the row voltages (see class docstring)."""

    def _effective_resistance(self, key: tuple, used_rows: int, used_cols: int) -> np.ndarray:
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
            self._nonlinear[key] = NonlinearTile(self.chip.cell, r_phys, tile.physical_dvth(used_rows, used_cols),
                                                 p.r_wire_ohm, p.r_source_ohm, self.chip.readout.tia_input_ohm,
                                                 name=f"layer {layer_index} tile ({rt},{ct})")
        return self._nonlinear[key]

    def difference(self, layer_index: int, rt: int, ct: int, used_rows: int, used_cols: int) -> TileDifference:
        """The (cached) response of ``I+ - I-`` per volt and the read-power form of a tile."""
        key = (layer_index, rt, ct, used_rows, used_cols)
        if key not in self._differences:
            resp = self.response(layer_index, rt, ct, used_rows, used_cols)
            plus, minus = split_columns(resp.transfer, self.chip.encoding)
            adm = resp.admittance
            diagonal = np.diag(adm) if np.count_nonzero(adm - np.diag(np.diag(adm))) == 0 else None
            self._differences[key] = TileDifference(plus - minus, adm, diagonal)
        return self._differences[key]

    def read(self, layer_index: int, rt: int, ct: int, volts: np.ndarray, used_cols: int) -> TileRead:
        """Currents for row voltages ``volts`` (M, used_rows).

        Padding rows sit at 0 V and padding columns are not read: with ideal wires they
        carry no current; with resistive wires they are left out of the circuit (the
        netlist writer does the same).
        """
        if not self.level_linear:
            i_phys, i_drivers = self.nonlinear_tile(layer_index, rt, ct, volts.shape[1], used_cols).read(volts)
            i_plus, i_minus = split_columns(i_phys, self.chip.encoding)
            return TileRead(i_plus, i_minus, i_drivers)
        resp = self.response(layer_index, rt, ct, volts.shape[1], used_cols)
        i_plus, i_minus = split_columns(volts @ resp.transfer, self.chip.encoding)
        return TileRead(i_plus, i_minus, volts @ resp.admittance)


def tia_clip(i_plus: np.ndarray, i_minus: np.ndarray, readout: ReadoutParams) -> np.ndarray:
    """``I+ - I-`` as the ADC sees it: each TIA output clips at its rails (+-v_swing), i.e. each
    column current at +-``clip_current_a``, before the difference is digitised."""
    if not readout.v_swing_v:
        return i_plus - i_minus
    limit = readout.clip_current_a
    return np.clip(i_plus, -limit, limit) - np.clip(i_minus, -limit, limit)


def adc_scale(unit_current_a: float, readout: ReadoutParams) -> float:
    """ADC codes per ampere of ``I+ - I-``: the TIA output is ``-R_f I A/(1+A)`` and the ADC step
    is the ideal TIA's output for ``lsb_units`` unit currents, so A/(1+A) / (unit * lsb_units)."""
    return readout.tia_gain_factor / (unit_current_a * readout.lsb_units)


def adc_codes(i_diff: np.ndarray, unit_current_a: float, readout: ReadoutParams, bits: int) -> np.ndarray:
    """Signed ADC codes of differential column currents, clipped to ``bits`` bits:
    code = round(I * :func:`adc_scale`). Pass ``i_diff`` through :func:`tia_clip` first when the
    TIAs have rails.
    """
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    scaled = i_diff * adc_scale(unit_current_a, readout)
    return np.clip(np.rint(scaled), lo, hi).astype(np.int32 if bits < 32 else np.int64)


def read_noise(chip: Chip, key: tuple, volts: np.ndarray, used_cols: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian read noise on ``I+ - I-`` (M, C): each device's conductance varies by ``read_noise_rel``.

    The std of a column current is ``sigma * sqrt(sum_r V_r^2 G_r^2)`` (ideal-wire approximation).
    """
    r_phys, _ = chip.tiles[key].physical(volts.shape[1], used_cols)
    var_plus, var_minus = split_columns((volts ** 2) @ (1.0 / r_phys) ** 2, chip.encoding)
    return chip.params.read_noise_rel * np.sqrt(var_plus + var_minus) * rng.standard_normal(var_plus.shape)


class CrossbarAccumulator:
    """``accumulate`` callback for :func:`run_integer` that reads through crossbar tiles.

    Attributes:
        energy_j: read energy per layer, summed over every read (J).
        reads: when ``record``: a :class:`RecordedRead` per tile read.
    """

    def __init__(self, model: CompiledModel, reader, record: bool = False, noise_seed: int = 0):
        self.model, self.reader = model, reader
        geometry = model.hardware.geometry
        self.unit = reader.chip.unit_current_a * geometry.unit_scale
        self.bipolar = geometry.input_mode == "bipolar"
        self.record = record
        self.reads: list[RecordedRead] = []
        self.energy_j = [0.0] * len(model.layers)
        self.rng = np.random.default_rng([reader.chip.seed, noise_seed])
        self._scaled: dict = {}

    def drive(self, bits: np.ndarray) -> np.ndarray:
        """Row voltages for input bits: {0, V} (unipolar) or {-V, +V} (bipolar)."""
        v = self.reader.chip.params.v_read_v
        return (2.0 * bits - 1.0) * v if self.bipolar else bits * v

    def _tile_codes(self, index: int, layer, rt: int, ct: int, volts: np.ndarray, used_cols: int):
        """(read, ADC codes (M, used_cols), read energy per read (M,)) of row voltages ``volts``,
        with read noise when the chip has it."""
        readout = self.model.hardware.readout
        read = self.reader.read(index, rt, ct, volts, used_cols)
        i_diff = tia_clip(read.i_plus, read.i_minus, readout)
        if self.reader.chip.params.read_noise_rel:
            i_diff = i_diff + read_noise(self.reader.chip, (index, rt, ct), volts, used_cols, self.rng)
        codes = adc_codes(i_diff, self.unit, readout, layer.adc_bits)
        return read, codes, readout.t_read_s * np.sum(volts * read.i_drivers, axis=1)

    def _read_codes(self, index: int, layer, rt: int, ct: int, plane: int, volts: np.ndarray, used_cols: int):
        """ADC codes (M, used_cols) of one tile read for row voltages ``volts``; accumulates energy."""
        noisy = bool(self.reader.chip.params.read_noise_rel)
        unique, inverse = (volts, None) if noisy or self.record else _unique_rows(volts)
        read, codes, energy = self._tile_codes(index, layer, rt, ct, unique, used_cols)
        if inverse is not None:
            codes, energy = codes[inverse], energy[inverse]
        self.energy_j[index] += float(energy.sum())
        if self.record:
            self.reads.append(RecordedRead(index, rt, ct, plane, volts, read.i_plus, read.i_minus, codes))
        return codes

    def _planes_shareable(self, layer, m: int) -> bool:
        """Bit planes can be read together: several planes, rows narrow enough to deduplicate,
        nothing recorded per plane and no read noise (which differs per read)."""
        return (layer.input_bits > 1 and not self.record and not self.reader.chip.params.read_noise_rel
                and min(layer.tiling.tile_rows, layer.rows) <= 64 and layer.input_bits * m >= 256)

    def _shared_planes(self, index: int, layer, flat: np.ndarray, acc: np.ndarray) -> None:
        """Accumulate every bit plane of ``flat`` into ``acc``, reading each distinct input row once
        over all planes and positions (a pattern recurs across planes: fewer nonlinear or SPICE
        solves than plane by plane)."""
        t, m = layer.tiling, len(flat)
        for rt in range(t.n_row_tiles):
            r0, r1 = t.row_range(rt, layer.rows)
            stacked = _stacked_planes(flat[:, r0:r1], layer.input_bits)
            found = _distinct_rows(stacked)
            assert found is not None  # _planes_shareable: enough rows, narrow enough to pack
            first, inverse, counts = found
            volts = self.drive(stacked[first].astype(np.float64))
            for ct in range(t.n_col_tiles):
                c0, c1 = t.col_range(ct, layer.cols)
                _, codes, energy = self._tile_codes(index, layer, rt, ct, volts, c1 - c0)
                self.energy_j[index] += float(energy @ counts)
                if self.bipolar:
                    codes = codes + layer.weight[r0:r1, c0:c1].sum(axis=0, dtype=codes.dtype)
                for plane in range(layer.input_bits):
                    acc[:, c0:c1] += codes[inverse[plane * m:(plane + 1) * m]].astype(acc.dtype) << plane

    @property
    def _fast(self) -> bool:
        """Physics reads of linear-in-input tiles without recording or read noise take the vectorised path."""
        return (isinstance(self.reader, PhysicsReader) and self.reader.level_linear and not self.record
                and not self.reader.chip.params.read_noise_rel)

    def _fast_tile_codes(self, index: int, layer, rt: int, ct: int, bits: np.ndarray,
                         used_cols: int) -> tuple[np.ndarray, np.ndarray]:
        """ADC codes of distinct input-bit rows of one tile (the :func:`adc_codes` arithmetic,
        with the ADC scale folded into the cached response) and the read energy of each row."""
        readout = self.model.hardware.readout
        key = (index, rt, ct, bits.shape[1], used_cols)
        if key not in self._scaled:
            diff = self.reader.difference(*key)
            self._scaled[key] = (diff.transfer * adc_scale(self.unit, readout), diff)
        scaled, diff = self._scaled[key]
        volts = self.drive(bits.astype(np.float64))
        energy = readout.t_read_s * diff.power_form(volts)
        if readout.v_swing_v:  # rails clip each column before the difference: read both sides
            read = self.reader.read(index, rt, ct, volts, used_cols)
            return adc_codes(tia_clip(read.i_plus, read.i_minus, readout), self.unit, readout, layer.adc_bits), energy
        codes = volts @ scaled
        lo, hi = -(2 ** (layer.adc_bits - 1)), 2 ** (layer.adc_bits - 1) - 1
        np.clip(np.rint(codes, out=codes), lo, hi, out=codes)
        return codes.astype(np.int32 if layer.adc_bits < 32 else np.int64), energy

    def _fast_call(self, index: int, layer, rows: np.ndarray) -> np.ndarray:
        """:meth:`__call__` for the physics reader: bit planes as uint8, distinct rows read once,
        all-zero input rows (blank image background: ~40 % of MNIST patches) read once."""
        n, p, _ = rows.shape
        flat = rows.reshape(n * p, layer.rows).astype(np.uint8 if layer.input_bits <= 8 else np.uint16)
        blank = ~flat.any(axis=1)
        blanks = int(blank.sum())
        if blanks < 256:
            return self._fast_planes(index, layer, flat).astype(np.int64).reshape(n, p, layer.cols)
        acc = np.empty((n * p, layer.cols), dtype=np.int64)
        acc[~blank] = self._fast_planes(index, layer, flat[~blank])
        acc[blank] = self._fast_planes(index, layer, np.zeros((1, layer.rows), flat.dtype), repeat=blanks)
        return acc.reshape(n, p, layer.cols)

    def _fast_planes(self, index: int, layer, flat: np.ndarray, repeat: int = 1) -> np.ndarray:
        """Accumulators (M, cols) of unsigned input rows ``flat``; energy counted ``repeat`` times."""
        t = layer.tiling
        acc = np.zeros((len(flat), layer.cols), dtype=np.int32 if layer.acc_width <= 31 else np.int64)
        for plane in range(layer.input_bits):
            bits = ((flat >> plane) & 1).astype(np.uint8)
            for rt in range(t.n_row_tiles):
                r0, r1 = t.row_range(rt, layer.rows)
                tile_bits = bits[:, r0:r1]
                found = _distinct_rows(tile_bits)
                unique, inverse, counts = (tile_bits, None, None) if found is None else \
                    (tile_bits[found[0]], found[1], found[2])
                for ct in range(t.n_col_tiles):
                    c0, c1 = t.col_range(ct, layer.cols)
                    codes, energy = self._fast_tile_codes(index, layer, rt, ct, unique, c1 - c0)
                    if self.bipolar:
                        codes = codes + layer.weight[r0:r1, c0:c1].sum(axis=0, dtype=codes.dtype)
                    used = float(energy @ counts) if counts is not None else float(energy.sum())
                    self.energy_j[index] += repeat * used
                    codes = codes.astype(acc.dtype) << plane
                    acc[:, c0:c1] += codes if inverse is None else np.take(codes, inverse, axis=0)
        if self.bipolar:
            acc >>= 1
        return acc

    def _plane_by_plane(self, index: int, layer, flat: np.ndarray, acc: np.ndarray) -> None:
        """Accumulate the bit planes of ``flat`` into ``acc`` one plane and tile at a time."""
        t = layer.tiling
        for plane in range(layer.input_bits):
            plane_bits = ((flat >> plane) & 1).astype(np.float64)
            for rt in range(t.n_row_tiles):
                r0, r1 = t.row_range(rt, layer.rows)
                volts = self.drive(plane_bits[:, r0:r1])
                for ct in range(t.n_col_tiles):
                    c0, c1 = t.col_range(ct, layer.cols)
                    codes = self._read_codes(index, layer, rt, ct, plane, volts, c1 - c0)
                    if self.bipolar:  # code = 2 dot - colsum; keep 2 dot, halve at the end
                        codes = codes + layer.weight[r0:r1, c0:c1].sum(axis=0, dtype=codes.dtype)
                    acc[:, c0:c1] += codes << plane

    def _prefetch(self, index: int, layer, flat: np.ndarray) -> None:
        """Let a reader that solves in bulk (``reader.prefetch``, e.g. ngspice in worker
        processes) solve every distinct tile input of this layer before it is read."""
        prefetch = getattr(self.reader, "prefetch", None)
        if prefetch is None:
            return
        t, requests = layer.tiling, []
        for rt in range(t.n_row_tiles):
            r0, r1 = t.row_range(rt, layer.rows)
            distinct = np.unique(_stacked_planes(flat[:, r0:r1], layer.input_bits), axis=0)
            volts = self.drive(distinct.astype(np.float64))
            for ct in range(t.n_col_tiles):
                c0, c1 = t.col_range(ct, layer.cols)
                requests.append((rt, ct, volts, c1 - c0))
        prefetch(index, requests)

    def __call__(self, index: int, layer, rows: np.ndarray) -> np.ndarray:
        if layer.digital:  # a digital MAC: exact, no devices
            return exact_matmul(rows, layer.weight)
        if self._fast:
            return self._fast_call(index, layer, rows)
        n, p, _ = rows.shape
        flat = rows.reshape(n * p, layer.rows)
        self._prefetch(index, layer, flat)
        # int32 when the accumulator provably fits (acc_width bits), else int64.
        acc = np.zeros((n * p, layer.cols), dtype=np.int32 if layer.acc_width <= 31 else np.int64)
        if self._planes_shareable(layer, n * p):
            self._shared_planes(index, layer, flat, acc)
        else:
            self._plane_by_plane(index, layer, flat, acc)
        if self.bipolar:
            acc >>= 1  # exact for an ideal chip (the sum is even); floor otherwise
        return acc.astype(np.int64).reshape(n, p, layer.cols)


def _stacked_planes(rows: np.ndarray, planes: int) -> np.ndarray:
    """The bit planes of unsigned input rows (M, R) stacked plane after plane: (planes * M, R) uint8."""
    return np.concatenate([((rows >> plane) & 1).astype(np.uint8) for plane in range(planes)])


def _unique_rows(volts: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Distinct rows of binary drives ``volts`` (two voltage levels) and the inverse index
    (identical reads are computed once); see :func:`_distinct_rows`."""
    found = _distinct_rows((volts > volts.min()).astype(np.uint8))
    return (volts, None) if found is None else (volts[found[0]], found[1])


def _distinct_rows(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(first index, inverse index, count) of the distinct rows of a (M, R) 0/1 uint8 matrix.

    Rows of up to 64 bits pack into one uint64 key; for small batches and wider rows the
    answer is None (read them as they are).
    """
    m, r = bits.shape
    if m < 256 or r > 64:
        return None
    packed = np.packbits(bits, axis=1, bitorder="little")
    keys = np.zeros((m, 8), dtype=np.uint8)
    keys[:, :packed.shape[1]] = packed
    _, first, inverse, counts = np.unique(keys.view(np.uint64).ravel(), return_index=True, return_inverse=True,
                                          return_counts=True)
    return first, inverse.reshape(-1), counts


def run_crossbar(model: CompiledModel, images: np.ndarray, reader,
                 record: bool = False) -> tuple[Trace, CrossbarAccumulator]:
    """Run images through the crossbar executor with ``reader`` doing every tile read."""
    accumulator = CrossbarAccumulator(model, reader, record)
    return run_integer(model, images, accumulator), accumulator


def physics_predictions_shared(model: CompiledModel, chip: Chip, images: np.ndarray, tunings: list,
                               batch: int = 500, reader: PhysicsReader | None = None) -> list[np.ndarray]:
    """Predictions on ``chip`` for each entry of ``tunings`` (None = untuned).

    Tuning acts after the first layer's accumulator, so that layer's crossbar reads (the
    bit-serial, costly ones) are done once per batch and shared by every tuning. ``reader``
    (default: a new one) may carry tiles already characterised for this chip.
    """
    accumulate = CrossbarAccumulator(model, reader or PhysicsReader(chip))
    preds: list[list] = [[] for _ in tunings]
    for start in range(0, len(images), batch):
        first: dict = {}

        def shared(index, layer, rows, first=first):
            if index:
                return accumulate(index, layer, rows)
            if "acc" not in first:
                first["acc"] = accumulate(index, layer, rows)
            return first["acc"]

        for k, tuning in enumerate(tunings):
            preds[k].append(run_integer(model, images[start:start + batch], shared, tuning).predictions)
    return [np.concatenate(p) if p else np.zeros(0, dtype=np.int64) for p in preds]


def physics_predictions(model: CompiledModel, chip: Chip, images: np.ndarray, tuning=None) -> np.ndarray:
    """Predicted classes of ``images`` on ``chip`` (crossbar physics), optionally tuned."""
    return physics_predictions_shared(model, chip, images, [tuning])[0]
