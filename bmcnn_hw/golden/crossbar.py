"""Crossbar physics executor: bit-serial accumulation of tile reads, TIA + ADC, energy.

:class:`CrossbarAccumulator` is the one loop around every tile reader
(:mod:`bmcnn_hw.golden.tile_reader`): bit-plane groups x row tiles x column tiles, distinct input
rows read once, the ADC of :mod:`bmcnn_hw.golden.readout`, the bipolar correction and the
shift-add. For an ideal chip a code is the tile's integer dot product (bipolar: ``2 dot -
colsum``, corrected digitally), so the accumulators equal the integer golden model's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..artefact import CompiledLayer, CompiledModel
from .chip import Chip, TileKey
from .code_memo import packed_keys
from .integer import Trace, TuningOffsets, exact_matmul, run_integer
from .readout import adc_scale, code_type, quantize, read_noise, tia_clip
from .tile_reader import PhysicsReader, ReadKey, RecordedRead, TileDifference, TileReader

SENSE_CODE_BITS = 32
"""A sense layer's codes are not clipped: its comparator sees the whole column current (a TIA's
rails still clip it); 32 signed bits stand for "unbounded"."""
COMPARATOR_STREAM = 0x5E45E
"""Seed-sequence tag of the comparator offsets' random stream (apart from the devices')."""


class CrossbarAccumulator:
    """``accumulate`` callback for :func:`run_integer` that reads through crossbar tiles.

    One loop (:meth:`_accumulate`) serves every reader: bit-plane groups x row tiles x column
    tiles, distinct input rows read once (unless reads are recorded or noisy, which differ
    per read), the bipolar correction and the shift-add.

    Attributes:
        energy_j: read energy per layer, summed over every read (J).
        reads: when ``record``: a :class:`RecordedRead` per tile read.
        captured: when ``capture_codes``: the ADC codes of every read (no currents or voltages).
    """

    def __init__(self, model: CompiledModel, reader: TileReader, record: bool = False, noise_seed: int = 0,
                 capture_codes: bool = False, count_energy: bool = True):
        self.model, self.reader = model, reader
        self.count_energy = count_energy
        """False: :attr:`energy_j` stays 0 for reads by a linear map, whose read power needs the
        tile's driver admittance (one solve per row of a wired tile; accuracy runs skip it)."""
        geometry = model.hardware.geometry
        self.unit = reader.chip.unit_current_a * geometry.unit_scale
        self.bipolar = geometry.input_mode == "bipolar"
        self.record = record
        self.noisy = bool(reader.chip.params.read_noise_rel)
        self.dedupe = not (record or self.noisy)
        """Identical input rows are read once (a recorded or noisy read is kept per row)."""
        self.memo = reader.memo if self.dedupe else None
        """The reader's codes of earlier batches (:mod:`bmcnn_hw.golden.code_memo`), when reads are
        deduplicated."""
        self.reads: list[RecordedRead] = []
        self.captured: dict[TileKey, dict[int, np.ndarray]] | None = {} if capture_codes else None
        """With ``capture_codes``: (layer, plane, row tile) -> column tile -> ADC codes (M, used_cols)
        of the last call for that layer (see :meth:`layer_codes`); lighter than ``record``."""
        self.energy_j = [0.0] * len(model.layers)
        self.rng = np.random.default_rng([reader.chip.seed, noise_seed])
        self._scaled: dict[ReadKey, tuple[np.ndarray, TileDifference] | None] = {}
        self._offsets: dict[int, np.ndarray] = {}

    def drive(self, bits: np.ndarray) -> np.ndarray:
        """Row voltages for input bits: {0, V} (unipolar) or {-V, +V} (bipolar)."""
        v = self.reader.chip.params.v_read_v
        return (2.0 * bits - 1.0) * v if self.bipolar else bits * v

    def _linear(self, key: ReadKey) -> tuple[np.ndarray, TileDifference] | None:
        """The tile's linear map with the ADC scale folded in, when the reader offers one and the
        reads need nothing per read (record, noise)."""
        if not self.dedupe:
            return None
        if key not in self._scaled:
            diff = self.reader.linear_map(*key)
            scale = adc_scale(self.unit, self.model.hardware.readout)
            self._scaled[key] = None if diff is None else (diff.transfer * scale, diff)
        return self._scaled[key]

    def _tile_codes(self, index: int, layer: CompiledLayer, rt: int, ct: int, plane: int, bits: np.ndarray,
                    used_cols: int) -> tuple[np.ndarray, np.ndarray]:
        """ADC codes (M, used_cols) and read energy (M,) of input-bit rows ``bits`` on one tile.

        A build that skips all-zero reads gives such a read code 0 and no energy (the hardware
        does not perform it); every cell model gives it no current anyway, which tests check."""
        codes, energy = self._performed_codes(index, layer, rt, ct, plane, bits, used_cols)
        if self.model.skips_zero_reads(layer):
            idle = ~bits.any(axis=1)
            if idle.any():
                codes, energy = codes.copy(), energy.copy()
                codes[idle], energy[idle] = 0, 0.0
        return codes, energy

    def _performed_codes(self, index: int, layer: CompiledLayer, rt: int, ct: int, plane: int, bits: np.ndarray,
                         used_cols: int) -> tuple[np.ndarray, np.ndarray]:
        """Codes and energies of the reads of ``bits``: served from the reader's :class:`CodeMemo`
        where an earlier batch kept them, the rest read (and kept where they may be)."""
        tile = (index, rt, ct, bits.shape[1], used_cols)
        memo = self.memo if self._linear(tile) is None else None
        if memo is None:
            codes, energy, _ = self._read_codes(index, layer, rt, ct, plane, bits, used_cols)
            return codes, energy
        keys = packed_keys(bits)
        found, known_codes, known_energy = memo.lookup(self.model, tile, keys)
        missing = ~found
        if not missing.any():
            return known_codes.astype(code_type(_code_bits(layer))), known_energy
        solved_codes, solved_energy, reusable = self._read_codes(index, layer, rt, ct, plane, bits[missing],
                                                                 used_cols)
        if reusable is not None:
            memo.store(self.model, tile, keys[missing][reusable], solved_codes[reusable], solved_energy[reusable])
        codes = np.empty((len(bits), used_cols), dtype=solved_codes.dtype)
        energy = np.empty(len(bits))
        codes[missing], energy[missing] = solved_codes, solved_energy
        if found.any():
            codes[found], energy[found] = known_codes, known_energy
        return codes, energy

    def _read_codes(self, index: int, layer: CompiledLayer, rt: int, ct: int, plane: int, bits: np.ndarray,
                    used_cols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Codes, energies and the reader's reusable mask (:attr:`TileRead.reusable`; None for a
        linear map's codes) of the reads of ``bits`` on one tile."""
        readout = self.model.hardware.readout
        volts = self.drive(bits.astype(np.float64))
        linear = self._linear((index, rt, ct, bits.shape[1], used_cols))
        assert layer.tiling is not None  # memristive layers are tiled
        c0 = ct * layer.tiling.tile_cols
        low = layer.adc_low[c0:c0 + used_cols].astype(np.float64) if layer.adc_window else None
        bits_out = _code_bits(layer)
        offsets = self._comparator_offsets(index, layer)
        offset = None if offsets is None else offsets[c0:c0 + used_cols]
        if linear is not None:
            scaled, diff = linear
            energy = readout.t_read_s * diff.power_form(volts) if self.count_energy else np.zeros(len(volts))
            if not readout.v_swing_v:  # without rails the code is linear in the drive
                return quantize(_plus(volts @ scaled, offset), bits_out, low), energy, None
            i_diff = tia_clip(*diff.column_currents(volts), readout)  # rails clip each column
            return quantize(_plus(i_diff * adc_scale(self.unit, readout), offset), bits_out, low), energy, None
        read = self.reader.read(index, rt, ct, volts, used_cols)
        i_diff = tia_clip(read.i_plus, read.i_minus, readout)
        if self.noisy:
            i_diff = i_diff + read_noise(self.reader.chip, (index, rt, ct), volts, used_cols, self.rng)
        codes = quantize(_plus(i_diff * adc_scale(self.unit, readout), offset), bits_out, low)
        if linear is None:
            energy = readout.t_read_s * np.sum(volts * read.i_drivers, axis=1)
        if self.record:
            self.reads.append(RecordedRead(index, rt, ct, plane, volts, read.i_plus, read.i_minus, codes))
        return codes, energy, read.reusable

    def _comparator_offsets(self, index: int, layer: CompiledLayer) -> np.ndarray | None:
        """(cols,) input-referred offsets of a sense layer's comparators, in codes (None: ideal).

        Sampled once per chip and layer from the chip's seed on a stream of their own (the
        devices' draws are unchanged); a volt at the TIA output is 1 / (R_f * unit * lsb) codes."""
        readout = self.model.hardware.readout
        if not (layer.sense and readout.comparator_offset_v):
            return None
        if index not in self._offsets:
            rng = np.random.default_rng([self.reader.chip.seed, COMPARATOR_STREAM, index])
            per_volt = 1.0 / (readout.tia_rf_ohm * self.unit * readout.lsb_units)
            self._offsets[index] = readout.comparator_offset_v * per_volt * rng.standard_normal(layer.cols)
        return self._offsets[index]

    def _planes_shareable(self, index: int, layer: CompiledLayer, m: int) -> bool:
        """Bit planes are read together when reads are costly (no linear map: nonlinear or SPICE
        reads) and it can pay: several planes, rows narrow enough to deduplicate, nothing kept
        per read, enough rows for the deduplication to run. With a linear map, one sort per
        plane is cheaper than one over all planes (measured: 1.5 s against 2.2 s for 3,000
        images of the compact model)."""
        t = layer.tiling
        assert t is not None  # memristive layers are tiled
        if not (layer.input_bits > 1 and self.dedupe and min(t.tile_rows, layer.rows) <= 64
                and layer.input_bits * m >= 256):
            return False
        r0, r1 = t.row_range(0, layer.rows)
        c0, c1 = t.col_range(0, layer.cols)
        return self._linear((index, 0, 0, r1 - r0, c1 - c0)) is None

    def _accumulate(self, index: int, layer: CompiledLayer, flat: np.ndarray, repeat: int = 1) -> np.ndarray:
        """Accumulators (M, cols) of unsigned input rows ``flat``; energy counted ``repeat`` times.

        Planes are read one at a time, or all together when :meth:`_planes_shareable` (a
        pattern recurs across planes: fewer distinct reads, e.g. fewer ngspice solves).
        """
        t, m = layer.tiling, len(flat)
        assert t is not None  # memristive layers are tiled
        acc = np.zeros((m, layer.cols), dtype=np.int32 if layer.acc_width <= 31 else np.int64)
        planes = range(layer.input_bits)
        groups = [tuple(planes)] if self._planes_shareable(index, layer, m) else [(plane,) for plane in planes]
        for rt in range(t.n_row_tiles):
            r0, r1 = t.row_range(rt, layer.rows)
            tile_rows = flat[:, r0:r1]
            keys = _plane_keys(tile_rows, planes) if self.dedupe and r1 - r0 <= 64 else None
            for group in groups:
                unique, found = _group_inputs(tile_rows, group, keys)
                for ct in range(t.n_col_tiles):
                    c0, c1 = t.col_range(ct, layer.cols)
                    codes, energy = self._tile_codes(index, layer, rt, ct, group[0], unique, c1 - c0)
                    self.energy_j[index] += repeat * float(energy.sum() if found is None else energy @ found[1])
                    if self.captured is not None:
                        self._capture(index, group, rt, ct, codes if found is None else codes[found[0]], m)
                    if self.bipolar:  # code = 2 dot - colsum; keep 2 dot, halve at the end
                        codes = codes + layer.weight[r0:r1, c0:c1].sum(axis=0, dtype=codes.dtype)
                    _shift_add(acc[:, c0:c1], codes.astype(acc.dtype), group, None if found is None else found[0], m)
        if self.bipolar:
            acc >>= 1  # exact for an ideal chip (the sum is even); floor otherwise
        return acc

    def _capture(self, index: int, group: tuple[int, ...], rt: int, ct: int, codes: np.ndarray, m: int) -> None:
        assert self.captured is not None
        for k, plane in enumerate(group):
            self.captured.setdefault((index, plane, rt), {})[ct] = codes[k * m:(k + 1) * m]

    def layer_codes(self, index: int) -> dict[tuple[int, int], np.ndarray]:
        """(plane, row tile) -> ADC codes (M, cols) of layer ``index`` (``capture_codes``): the
        column tiles side by side, as the periphery's channels receive them."""
        assert self.captured is not None, "construct with capture_codes=True"
        return {(plane, rt): np.concatenate([tiles[ct] for ct in sorted(tiles)], axis=1)
                for (layer, plane, rt), tiles in self.captured.items() if layer == index}

    def _prefetch(self, index: int, layer: CompiledLayer, flat: np.ndarray) -> None:
        """Let a reader that solves in bulk (``reader.solves_in_bulk``, e.g. ngspice in worker
        processes) solve every distinct tile input of this layer before it is read."""
        if not self.reader.solves_in_bulk:
            return
        t, requests = layer.tiling, []
        assert t is not None  # memristive layers are tiled
        for rt in range(t.n_row_tiles):
            r0, r1 = t.row_range(rt, layer.rows)
            distinct = np.unique(_stacked_planes(flat[:, r0:r1], range(layer.input_bits)), axis=0)
            volts = self.drive(distinct.astype(np.float64))
            for ct in range(t.n_col_tiles):
                c0, c1 = t.col_range(ct, layer.cols)
                requests.append((rt, ct, volts, c1 - c0))
        self.reader.prefetch(index, requests)

    def __call__(self, index: int, layer: CompiledLayer, rows: np.ndarray) -> np.ndarray:
        """Accumulators (N, P, cols) of crossbar input vectors ``rows`` (N, P, rows) of layer ``index``.

        All-zero input rows (blank image background: ~40 % of MNIST patches) are read once.
        """
        if layer.digital:  # a digital MAC: exact, no devices
            return exact_matmul(rows, layer.weight)
        n, p, _ = rows.shape
        flat = rows.reshape(n * p, layer.rows).astype(np.uint8 if layer.input_bits <= 8 else np.uint16)
        self._prefetch(index, layer, flat)
        blank = ~flat.any(axis=1)
        blanks = int(blank.sum())
        if not self.dedupe or blanks < 256 or self.captured is not None:
            return self._accumulate(index, layer, flat).astype(np.int64).reshape(n, p, layer.cols)
        acc = np.empty((n * p, layer.cols), dtype=np.int64)
        acc[~blank] = self._accumulate(index, layer, flat[~blank])
        acc[blank] = self._accumulate(index, layer, np.zeros((1, layer.rows), flat.dtype), repeat=blanks)
        return acc.reshape(n, p, layer.cols)


def _code_bits(layer: CompiledLayer) -> int:
    """Signed bits of a layer's read codes: its ADC's, or :data:`SENSE_CODE_BITS` for a sense layer."""
    return SENSE_CODE_BITS if layer.sense else layer.adc_bits


def _plus(values: np.ndarray, offset: np.ndarray | None) -> np.ndarray:
    """``values`` (a fresh array) with ``offset`` added in place, or as they are (no copy on the
    hot path of layers without comparator offsets)."""
    if offset is not None:
        values += offset
    return values


def _shift_add(acc: np.ndarray, codes: np.ndarray, planes: tuple[int, ...], inverse: np.ndarray | None,
               m: int) -> None:
    """``acc += codes_of_plane << plane`` for each plane of a group; with ``inverse`` the codes are
    per distinct row and each plane's rows are gathered (the shift is done on the few distinct
    rows, before the gather)."""
    for k, plane in enumerate(planes):
        if inverse is None:
            acc += codes[k * m:(k + 1) * m] << plane
        else:
            acc += np.take(codes << plane, inverse[k * m:(k + 1) * m], axis=0)


def _stacked_planes(rows: np.ndarray, planes: Sequence[int]) -> np.ndarray:
    """Bit planes ``planes`` of unsigned input rows (M, R) stacked plane after plane: (len(planes) * M, R) uint8."""
    if len(planes) == 1:
        return ((rows >> planes[0]) & 1).astype(np.uint8, copy=False)
    if rows.dtype == np.uint8:  # every plane in one pass, then one copy into plane-major order
        bits = np.unpackbits(rows[:, :, None], axis=2, bitorder="little")[:, :, list(planes)]
        return np.ascontiguousarray(bits.transpose(2, 0, 1)).reshape(len(planes) * len(rows), rows.shape[1])
    return np.concatenate([((rows >> plane) & 1).astype(np.uint8) for plane in planes])


_BYTE_LSBS = np.uint64(0x0101010101010101)
_GATHER = np.uint64(0x0102040810204080)
"""``((w & _BYTE_LSBS) * _GATHER) >> 56`` puts bit 0 of byte ``i`` of ``w`` at bit ``i``."""


def _plane_keys(rows: np.ndarray, planes: range) -> np.ndarray:
    """One uint64 key per (plane, input row) of unsigned rows (M, R <= 64) for planes 0..P-1,
    plane after plane: bit ``r`` of a key is bit ``plane`` of input ``r``.

    uint8 rows: eight inputs at a time as one 64-bit word, their plane-``k`` bits gathered by
    one multiplication (6x faster than unpacking and repacking the bits).
    """
    assert planes.start == 0 and planes.step == 1
    m, r = rows.shape
    if rows.dtype != np.uint8:
        bits = np.stack([((rows >> plane) & 1).astype(np.uint8) for plane in planes])  # (P, M, R)
        packed = np.packbits(bits, axis=2, bitorder="little")
        keys8 = np.zeros((len(planes), m, 8), dtype=np.uint8)
        keys8[:, :, :packed.shape[2]] = packed
        return keys8.view("<u8").reshape(len(planes) * m)
    words = -(-r // 8)
    padded = np.zeros((m, 8 * words), dtype=np.uint8)
    padded[:, :r] = rows
    packed_words = padded.view("<u8")  # (M, words): input 8j + i is byte i of word j
    keys = np.empty((len(planes), m), dtype=np.uint64)
    for plane in planes:
        gathered = ((packed_words >> np.uint64(plane)) & _BYTE_LSBS) * _GATHER >> np.uint64(56)
        key = gathered[:, 0].copy()
        for j in range(1, words):
            key |= gathered[:, j] << np.uint64(8 * j)
        keys[plane] = key
    return keys.reshape(len(planes) * m)


def _key_bits(keys: np.ndarray, r: int) -> np.ndarray:
    """The (K, r) 0/1 uint8 input rows that :func:`_plane_keys` keys stand for."""
    return np.unpackbits(keys.astype("<u8").view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")[:, :r]


def _group_inputs(rows: np.ndarray, group: tuple[int, ...],
                  keys: np.ndarray | None) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """The input-bit rows of a plane group to read, and (inverse index, count) when they are the
    distinct ones: ``keys`` of every plane given and at least 256 rows in the group (fewer are
    read as they are). A group is one plane or all planes, in order."""
    m, r = rows.shape
    if keys is None or len(group) * m < 256:
        return _stacked_planes(rows, group), None
    distinct, inverse, counts = np.unique(keys[group[0] * m:(group[-1] + 1) * m], return_inverse=True,
                                          return_counts=True)
    return _key_bits(distinct, r), (inverse.reshape(-1), counts)


def run_crossbar(model: CompiledModel, images: np.ndarray, reader: TileReader, record: bool = False,
                 count_energy: bool = True) -> tuple[Trace, CrossbarAccumulator]:
    """Run images through the crossbar executor with ``reader`` doing every tile read
    (``count_energy``: see :attr:`CrossbarAccumulator.count_energy`)."""
    accumulator = CrossbarAccumulator(model, reader, record, count_energy=count_energy)
    return run_integer(model, images, accumulator), accumulator


def physics_predictions_shared(model: CompiledModel, chip: Chip, images: np.ndarray,
                               tunings: Sequence[TuningOffsets | None],
                               batch: int = 500, reader: PhysicsReader | None = None,
                               threads: int = 1) -> list[np.ndarray]:
    """Predictions on ``chip`` for each entry of ``tunings`` (None = untuned).

    Tuning acts after the first layer's accumulator, so that layer's crossbar reads (the
    bit-serial, costly ones) are done once per batch and shared by every tuning. ``reader``
    (default: a new one) may carry tiles already characterised for this chip. Batches share
    nothing but the reader's caches, so ``threads`` run them side by side; batch ``k`` draws
    its read noise from seed ``(chip seed, k)``, so results do not depend on ``threads``.
    """
    from ..parallel import thread_map

    reader = reader or PhysicsReader(chip)
    starts = range(0, len(images), batch)

    def one_batch(k: int) -> list[np.ndarray]:
        accumulate = CrossbarAccumulator(model, reader, noise_seed=k, count_energy=False)
        first: dict[str, np.ndarray] = {}

        def shared(index: int, layer: CompiledLayer, rows: np.ndarray) -> np.ndarray:
            if index:
                return accumulate(index, layer, rows)
            if "acc" not in first:
                first["acc"] = accumulate(index, layer, rows)
            return first["acc"]

        chunk = images[starts[k]:starts[k] + batch]
        return [run_integer(model, chunk, shared, tuning).predictions for tuning in tunings]

    per_batch = thread_map(one_batch, range(len(starts)), threads)
    return [np.concatenate([b[k] for b in per_batch]) if per_batch else np.zeros(0, dtype=np.int64)
            for k in range(len(tunings))]


def physics_predictions(model: CompiledModel, chip: Chip, images: np.ndarray,
                        tuning: TuningOffsets | None = None, threads: int = 1) -> np.ndarray:
    """Predicted classes of ``images`` on ``chip`` (crossbar physics), optionally tuned, on
    ``threads`` threads."""
    return physics_predictions_shared(model, chip, images, [tuning], threads=threads)[0]
