"""A Chip: one sampled set of device resistances for every tile of a CompiledModel.

The same Chip feeds the physics executor and the netlist writer, so SPICE and the
golden physics model see identical devices. Sampling is deterministic: tile
(layer, rt, ct) uses ``numpy.random.default_rng([seed, layer, rt, ct])``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..artefact import CompiledModel
from ..config import CrossbarGeometry, DeviceParams, Encoding, ReadoutParams
from ..errors import ArtefactError, ConfigError
from .cells import CellModel, TransistorTable, cell_model
from .device_map import (
    device_states,
    padded_tile,
    physical_columns,
    reference_resistance,
)

MIN_R_FRACTION = 0.01
"""A normal sample below 1 % of its nominal R is clipped there (a resistance stays positive)."""


TileKey = tuple[int, int, int]
"""(layer index, row tile, column tile): one tile of a build, as every executor names it."""

@dataclass(frozen=True)
class TileDevices:
    """Resistances (ohm) of one tile's devices.

    ``r_plus`` (tile_rows, tile_cols): G+ devices (differential) or the single device per
    weight (reference encoding); ``r_minus``: G- devices (differential only); ``r_ref``
    (tile_rows,): the shared reference column (reference encoding only; fixed resistors).
    """

    r_plus: np.ndarray
    r_minus: np.ndarray | None = None
    r_ref: np.ndarray | None = None
    dvth_plus: np.ndarray | None = None
    """(tile_rows, tile_cols) threshold shift (V) of the access transistors of ``r_plus`` (1T1R only)."""
    dvth_minus: np.ndarray | None = None
    """Threshold shifts of the ``r_minus`` access transistors (1T1R only)."""

    @property
    def g_plus(self) -> np.ndarray:
        """Conductances of the positive devices (S)."""
        return 1.0 / self.r_plus

    @property
    def g_minus(self) -> np.ndarray:
        """Conductances of the G- devices (S; differential tiles only)."""
        if self.r_minus is None:
            raise ValueError("a reference-encoded tile has no G- devices")
        return 1.0 / self.r_minus

    def physical(self, used_rows: int, used_cols: int) -> tuple[np.ndarray, list[tuple[str, int]]]:
        """Resistances (used_rows, P) of the used physical columns in layout order, and the layout."""
        return self._arrange(self.r_plus, self.r_minus, self.r_ref, used_rows, used_cols)

    def physical_dvth(self, used_rows: int, used_cols: int) -> np.ndarray | None:
        """Access-transistor threshold shifts (used_rows, P) in layout order, or None (no transistors)."""
        if self.dvth_plus is None:
            return None
        return self._arrange(self.dvth_plus, self.dvth_minus, np.zeros(len(self.r_plus)), used_rows, used_cols)[0]

    def _arrange(self, plus: np.ndarray, minus: np.ndarray | None, ref: np.ndarray | None, used_rows: int,
                 used_cols: int) -> tuple[np.ndarray, list[tuple[str, int]]]:
        encoding: Encoding = "differential" if self.r_minus is not None else "reference"
        layout = physical_columns(encoding, used_cols)
        columns = []
        for side, c in layout:
            if side == "ref":
                assert ref is not None  # the reference encoding has a reference column
                columns.append(ref[:used_rows])
            else:
                devices = plus if side == "p" else minus
                assert devices is not None  # the differential encoding has G- devices
                columns.append(devices[:used_rows, c])
        return np.stack(columns, axis=1), layout


def _sample(nominal: np.ndarray, sigma: float, params: DeviceParams, rng: np.random.Generator) -> np.ndarray:
    z = rng.standard_normal(nominal.shape)
    if sigma == 0:
        return nominal.copy()
    if params.distribution == "lognormal":
        # Same mean and relative std as the normal case: var(R)/E(R)^2 = sigma^2.
        s2 = np.log1p(sigma ** 2)
        sampled: np.ndarray = nominal * np.exp(np.sqrt(s2) * z - s2 / 2)
        return sampled
    return np.maximum(nominal * (1 + sigma * z), MIN_R_FRACTION * nominal)


def _stuck(r: np.ndarray, params: DeviceParams, rng: np.random.Generator) -> np.ndarray:
    """Devices stuck ON with probability p_stuck_on, else stuck OFF with p_stuck_off."""
    if params.p_stuck_on or params.p_stuck_off:
        u = rng.random(r.shape)
        r = np.where(u < params.p_stuck_on, params.r_on_ohm, r)
        r = np.where((u >= params.p_stuck_on) & (u < params.p_stuck_on + params.p_stuck_off), params.r_off_ohm, r)
    return r


def sample_devices(on: np.ndarray, params: DeviceParams, rng: np.random.Generator) -> np.ndarray:
    """Resistances of devices programmed ON where ``on`` is True, OFF elsewhere."""
    r_on = _sample(np.full(on.shape, params.r_on_ohm), params.sigma_on_rel, params, rng)
    r_off = _sample(np.full(on.shape, params.r_off_ohm), params.sigma_off_rel, params, rng)
    return _stuck(np.where(on, r_on, r_off), params, rng)


def sample_state(on: bool, shape: tuple[int, ...], params: DeviceParams, rng: np.random.Generator) -> np.ndarray:
    """Resistances of ``shape`` devices all programmed ON (or all OFF): the distribution and
    faults of :func:`sample_devices`, drawing only the state that is needed."""
    nominal, sigma = (params.r_on_ohm, params.sigma_on_rel) if on else (params.r_off_ohm, params.sigma_off_rel)
    return _stuck(_sample(np.full(shape, nominal), sigma, params, rng), params, rng)


def sample_dvth(shape: tuple[int, ...], params: DeviceParams, rng: np.random.Generator) -> np.ndarray | None:
    """Threshold shifts (V) of ``shape`` access transistors: normal with ``sigma_vth_v``, truncated at
    +-6 sigma (the span of the characterised transistor table); None for cells without transistors."""
    if params.cell != "1t1r":
        return None
    if not params.sigma_vth_v:
        return np.zeros(shape)
    return params.sigma_vth_v * np.clip(rng.standard_normal(shape), -6.0, 6.0)


def _transistor_table(params: DeviceParams) -> TransistorTable | None:
    if params.cell != "1t1r":
        return None
    # ngspice characterises the access transistor
    from ..spice.sky130 import transistor_table

    return transistor_table(params)


def nominal_cell_current(params: DeviceParams, r_ohm: float, cell: CellModel | None = None) -> float:
    """Current (A) of a nominal cell (no threshold offset) of device resistance ``r_ohm`` at V_read,
    its column at 0 V; ``cell`` is the cell model (default: built from ``params``)."""
    cell = cell or cell_model(params, _transistor_table(params))
    return float(cell.current(np.array(params.v_read_v), np.array(r_ohm)))


def size_tia_rf(params: DeviceParams, tile_rows: int, v_swing_v: float) -> float:
    """Feedback resistor (ohm) whose TIA output reaches ``v_swing_v`` at the worst-case column
    current: every one of ``tile_rows`` rows on, every device ON at R_on (1 - 3 sigma_on)."""
    r_worst = params.r_on_ohm * max(1.0 - 3.0 * params.sigma_on_rel, MIN_R_FRACTION)
    return v_swing_v / (tile_rows * nominal_cell_current(params, r_worst))


SKY130_SWING_V = 0.9
"""TIA swing of a 1.8 V sky130 supply with the virtual ground at mid-rail (the 1T1R default)."""


def sized_readout(device: DeviceParams, geometry: CrossbarGeometry, adc_bits: int = 0, tia_gain: float = 0.0,
                  v_swing_v: float | None = None, tia_rf: str | float | None = None) -> ReadoutParams:
    """ReadoutParams with the TIA rails and feedback resistor resolved.

    ``v_swing_v`` None: 0.9 V for 1T1R cells (sky130 1.8 V supply), else no rails. ``tia_rf``
    None: ``"auto"`` with rails, else 10 kOhm; ``"auto"``: :func:`size_tia_rf`.

    Raises:
        ConfigError: for ``auto`` without rails or a value that is not a resistance.
    """
    v_swing = v_swing_v if v_swing_v is not None else (SKY130_SWING_V if device.cell == "1t1r" else 0.0)
    option = tia_rf if tia_rf is not None else ("auto" if v_swing else 10e3)
    if option == "auto":
        if not v_swing:
            raise ConfigError("--tia-rf auto sizes R_f for the TIA rails: give --v-swing too")
        rf = size_tia_rf(device, geometry.tile_rows, v_swing)
    else:
        try:
            rf = float(option)
        except ValueError:
            raise ConfigError(f"--tia-rf must be a resistance in ohm or 'auto', not {option!r}") from None
    return ReadoutParams(adc_bits=adc_bits, tia_gain=tia_gain, v_swing_v=v_swing, tia_rf_ohm=rf)


SAMPLER_VERSION = 1
"""Version of the device sampler: raised whenever a seed would give other devices (another stream
layout or distribution code), so a build made by another sampler is refused, not silently
re-sampled into a chip its netlists were not written for."""


class Chip:
    """Every device of a CompiledModel, sampled once from ``params`` with ``seed``.

    Device resistances of tile (layer, rt, ct) come from ``default_rng([seed, layer, rt, ct])``
    (G+ then G-); 1T1R threshold shifts from the separate stream ``[seed, layer, rt, ct, 1]``, so
    adding transistors leaves the resistances of a seed unchanged.

    Args:
        model: the CompiledModel.
        params: device parameters (default: the model's).
        seed: chip seed.
        transistor_table: the 1T1R access transistor's I-V table (default: characterised by
            ngspice from the sky130 models, cached).
        devices: every tile's devices, given instead of sampled (a programming map read back:
            :func:`~bmcnn_hw.programming.load_programming_map`); ``seed`` is then only recorded.
    """

    def __init__(self, model: CompiledModel, params: DeviceParams | None = None, seed: int = 0,
                 transistor_table: TransistorTable | None = None,
                 devices: dict[TileKey, TileDevices] | None = None) -> None:
        self.params = params or model.hardware.device
        self.seed = int(seed)
        self.tiles: dict[TileKey, TileDevices] = {}
        self.encoding = model.hardware.geometry.encoding
        self.readout = model.hardware.readout
        check_cell_geometry(self.params, model.hardware.geometry)
        self.transistor_table = transistor_table or _transistor_table(self.params)
        self.cell = cell_model(self.params, self.transistor_table)
        self.age: dict[str, Any] | None = None
        """Set on an aged chip (:func:`~bmcnn_hw.golden.aging.aged_chip`): its age, read rate and
        retention parameters; None for the chip as programmed."""
        if devices is not None:
            self.tiles = dict(devices)
            return
        r_ref = reference_resistance(self.params.r_on_ohm, self.params.r_off_ohm)
        for i, layer in enumerate(model.layers):
            if layer.digital:
                continue
            assert layer.tiling is not None  # memristive layers are tiled
            for rt in range(layer.tiling.n_row_tiles):
                for ct in range(layer.tiling.n_col_tiles):
                    plus_on, minus_on = device_states(padded_tile(layer, rt, ct), self.encoding)
                    rng = np.random.default_rng([self.seed, i, rt, ct])
                    r_plus = sample_devices(plus_on, self.params, rng)
                    vth_rng = np.random.default_rng([self.seed, i, rt, ct, 1])
                    dvth_plus = sample_dvth(plus_on.shape, self.params, vth_rng)
                    if minus_on is None:
                        tile = TileDevices(r_plus, r_ref=np.full(layer.tiling.tile_rows, r_ref), dvth_plus=dvth_plus)
                    else:
                        tile = TileDevices(r_plus, sample_devices(minus_on, self.params, rng), dvth_plus=dvth_plus,
                                           dvth_minus=sample_dvth(minus_on.shape, self.params, vth_rng))
                    self.tiles[(i, rt, ct)] = tile

    @classmethod
    def of_build(cls, model: CompiledModel) -> Chip:
        """The chip a build's netlists were written for: its device parameters and chip seed,
        re-sampled and checked against the sampler version and device hash compile recorded.

        Raises:
            ArtefactError: the build was made by another sampler, or its devices differ.
        """
        chip = cls(model, model.hardware.device, model.provenance.get("chip_seed", 0))
        recorded = model.provenance.get("chip_devices")
        if recorded is None:  # builds before the record: nothing to check against
            return chip
        if recorded.get("sampler") != SAMPLER_VERSION:
            raise ArtefactError(f"manifest.json: provenance.chip_devices.sampler is {recorded.get('sampler')!r}; "
                                f"this bmcnn-hw samples devices with sampler {SAMPLER_VERSION}, so its chip would "
                                "differ from the build's netlists: re-compile the build")
        if recorded.get("sha256") != chip.devices_sha256():
            raise ArtefactError("manifest.json: the devices sampled for chip seed "
                                f"{chip.seed} differ from provenance.chip_devices.sha256 (the ones its netlists "
                                "were written with): re-compile the build")
        return chip

    def devices_record(self) -> dict[str, Any]:
        """What a build records of its chip: the sampler version and :meth:`devices_sha256`."""
        return {"sampler": SAMPLER_VERSION, "sha256": self.devices_sha256()}

    def devices_sha256(self) -> str:
        """SHA-256 over every tile's device arrays (float64, in tile order): equal for equal chips."""
        digest = hashlib.sha256()
        for key in sorted(self.tiles):
            tile = self.tiles[key]
            digest.update(repr(key).encode())
            for array in (tile.r_plus, tile.r_minus, tile.r_ref, tile.dvth_plus, tile.dvth_minus):
                digest.update(b"-" if array is None else np.ascontiguousarray(array, dtype="<f8").tobytes())
        return digest.hexdigest()

    @property
    def unit_current_a(self) -> float:
        """Differential column current of one unit of dot product: the nominal cell's
        ``I_on(V_read) - I_off(V_read)`` with its column at 0 V (the ADC's unit)."""
        p = self.params
        return nominal_cell_current(p, p.r_on_ohm, self.cell) - nominal_cell_current(p, p.r_off_ohm, self.cell)

    @property
    def level_linear(self) -> bool:
        """True when every tile read is a linear map of its row voltages, so that a read of binary
        inputs is an exact sum of one-row responses: linear cells, or nonlinear ones whose voltage
        no other cell changes (no wire, driver or TIA input resistance)."""
        p = self.params
        return self.cell.linear or not (p.has_parasitics or self.readout.tia_input_ohm)

    @property
    def is_ideal(self) -> bool:
        """True when every device is at its nominal resistance."""
        return self.params.is_ideal

    def describe(self) -> dict[str, Any]:
        """Seed and device parameters (recorded in reports and netlist headers)."""
        described = {"seed": self.seed, "encoding": self.encoding, **self.params.to_dict()}
        if self.transistor_table is not None:
            described["transistor_model"] = self.transistor_table.source
        if self.age is not None:
            described["age"] = self.age
        return described


def check_cell_geometry(params: DeviceParams, geometry: CrossbarGeometry) -> None:
    """Reject cell and geometry combinations the models do not cover.

    Raises:
        ConfigError: for 1T1R cells with bipolar inputs (a negative bit-line voltage turns the
            access transistor's source and drain around, outside the characterised table) or the
            reference encoding (a reference column of transistors is not modelled).
    """
    if params.cell != "1t1r":
        return
    if geometry.input_mode != "unipolar":
        raise ConfigError("cell '1t1r' needs input_mode 'unipolar' (the access transistor is characterised "
                          "for non-negative bit-line voltages)")
    if geometry.encoding != "differential":
        raise ConfigError("cell '1t1r' needs the 'differential' encoding (no 1T1R reference column is modelled); "
                          "compile with --encoding differential (with --arch efficient, whose 768x128 reference "
                          "tiles would have 1024 ports as differential ones, add --tile 512x128)")
