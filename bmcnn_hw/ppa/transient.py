"""Transient tile reads in ngspice (or VACASK, or bmcnn-hw's linear engine): settling time to half an
ADC step, and read energy.

A worst-case read of one tile: every row driver ramps from 0 to V_read (rise time from the
cost model), holds for half the window, and ramps back. Wires carry their sky130 met1
capacitance per cell segment (lumped per row and column when the build has ideal wires;
the padding part of each wire is lumped at its far end), and every physical column's TIA is
a single-pole op-amp macro-model with finite gain-bandwidth and a feedback capacitor sized
for a maximally flat response. The read time is the latest time any TIA output enters, and
stays within, half an ADC step of its final value, after the rise and after the fall.

Energy of the on-phase (ramp + settling): drivers = integral of sum(V_row * I_row) dt, TIA
output stages = (supply / 2) * integral of sum |I_column| dt. The DC reference is the
steady driver power times the integral of (V_row(t) / V_read)^2 over the same interval: on a
tile without capacitance and with an ideal TIA the two are the same number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..artefact import CompiledModel
from ..errors import SimulationError
from ..golden.chip import Chip
from ..io_utils import write_text_atomic
from ..spice.netlist import (
    TileCircuit,
    _includes,
    copy_model_libs,
    driver_branch,
    sense_branch,
    tile_subckt_name,
)
from ..spice.ngspice import NgSpice
from .cost_model import CostModel
from .linear_transient import CELLS as LINEAR_ENGINE_CELLS
from .linear_transient import AccessLinearisation

SETTLE_LSB = 0.5
TRAN_OPTIONS = ".options reltol=1e-6 abstol=1e-15 vntol=1e-9"
"""Transient tolerances: far below half an ADC step, yet loose enough for ngspice's time-step
control (the DC reads' reltol 1e-9 / abstol 1e-18 stall 1T1R transients at t = 0)."""
POINTS = 1000
"""Largest time step is the window / POINTS (ngspice adds its own points at the ramp corners).
The window spans ~20 closed-loop time constants, so this resolves settling to ~tau / 50;
against 4,000 points, read times moved by 0.2-0.4 % and read energies by 0.03-0.5 % on the
compact model's conv0 and fc2 tiles, in a third of the time."""


@dataclass(frozen=True)
class TransientRead:
    """Settling and energy of one worst-case read of a tile (all rows switched together)."""

    layer: str
    tile: tuple[int, int]
    rows: int
    physical_columns: int
    settle_rise_s: float
    """From the start of the rising ramp until every TIA output stays within half a step."""
    settle_fall_s: float
    read_time_s: float
    """max(settle_rise, settle_fall): the read time, no longer an assumption."""
    energy_drivers_j: float
    """Supply energy of the row drivers over the on-phase (ramp + settle_rise): array, wires, charging."""
    energy_tia_output_j: float
    energy_dc_j: float
    """Steady driver power x integral of (V/V_read)^2 over the same on-phase (the V*I*t model)."""
    power_dc_w: float
    lsb_v: float
    v_out_max_v: float
    """Largest |TIA output| of the read, from the start of the rising ramp (compare with the supply
    rails; the pre-roll in which 1T1R word lines come up is not part of a read)."""
    cf_f: float
    window_s: float
    solve_s: float


def feedback_cap_f(c_in_f: float, rf_ohm: float, gbw_hz: float) -> float:
    """C_f = sqrt(2 C_in / (2 pi R_f GBW)): the TIA compensation for a maximally flat (Q = 1/sqrt(2))
    closed-loop response of a single-pole op-amp with input capacitance C_in (at least 1 fF).

    The closed loop is 1 + s (R_f C_f + 1/w_a) + s^2 R_f (C_f + C_in) / w_a (w_a = 2 pi GBW);
    with C_f << C_in and 1/w_a << R_f C_f, Q = sqrt(C_in / (w_a R_f)) / C_f.
    """
    return max(math.sqrt(2 * c_in_f / (2 * math.pi * rf_ohm * gbw_hz)), 1e-15)


class _TransientTile:
    """The transient netlist of one tile: its static circuit plus capacitors, TIA macro-models, ramps."""

    def __init__(self, model: CompiledModel, chip: Chip, index: int, rt: int, ct: int, cost: CostModel,
                 window_s: float, ideal_tia: bool = False):
        self.circuit = TileCircuit(model, chip, index, rt, ct)
        self.chip, self.cost, self.window_s, self.ideal_tia = chip, cost, window_s, ideal_tia
        t = self.circuit.layer.tiling
        assert t is not None  # memristive layers are tiled
        self.n_phys = len(self.circuit.layout)
        self.full_phys = 2 * t.tile_cols if chip.encoding == "differential" else t.tile_cols + 1
        self.full_rows = t.tile_rows
        self.readout = model.hardware.readout
        self.cf = feedback_cap_f(self.column_cap_f(), self.readout.tia_rf_ohm, cost.tia.gbw_hz)

    def column_cap_f(self) -> float:
        """Capacitance at a TIA input that its compensation is sized for: the full column's wire
        segments and, for 1T1R cells, each cell's access transistor (ngspice AC analysis of one
        cell, :func:`bmcnn_hw.spice.sky130.access_column_capacitance`: ~2 fF a cell, 25 times a
        met1 segment; sizing C_f for the wire alone left a 512-row 1T1R column ringing)."""
        c = self.full_rows * self.cost.array.segment_cap_f
        if self.chip.params.cell == "1t1r" and not self.ideal_tia:
            from ..spice.sky130 import access_column_capacitance

            c += self.full_rows * access_column_capacitance(self.chip.params)
        return c

    def capacitors(self) -> list[str]:
        """Wire capacitance to ground per cell segment (lumped per wire without wire resistance)."""
        c = self.circuit
        c_seg = self.cost.array.segment_cap_f
        if not c_seg:
            return []
        lines = [f"* wire capacitance: {c_seg!r} F per cell segment (met1), padding part of each wire at its far end"]
        if c.wires:
            lines += [f"Cr{r}_{j} {c.row_node(r, j)} 0 {c_seg!r}" for r in range(c.rows) for j in range(self.n_phys)]
            lines += [f"Cc{j}_{r} {c.col_node(r, j)} 0 {c_seg!r}" for j in range(self.n_phys) for r in range(c.rows)]
            extra_row = (self.full_phys - self.n_phys) * c_seg
            extra_col = (self.full_rows - c.rows) * c_seg
            if extra_row > 0:
                lines += [f"Crp{r} {c.row_node(r, self.n_phys - 1)} 0 {extra_row!r}" for r in range(c.rows)]
            if extra_col > 0:
                lines += [f"Ccp{j} {c.bottom_node(j)} 0 {extra_col!r}" for j in range(self.n_phys)]
            return lines
        lines += [f"Cr{r} {c.row_node(r, 0)} 0 {self.full_phys * c_seg!r}" for r in range(c.rows)]
        lines += [f"Cc{j} {c.bottom_node(j)} 0 {self.full_rows * c_seg!r}" for j in range(self.n_phys)]
        return lines

    def tia(self) -> tuple[str, str]:
        """(comment, instance) of every column's TIA in the transient: the op-amp macro-model of the
        cost model's GBW (or an ideal one, ``ideal_tia``)."""
        ro, tia = self.readout, self.cost.tia
        if self.ideal_tia:
            return ("* column readout: ideal TIA per physical column (transient)", f"tia_ideal rf={ro.tia_rf_ohm!r}")
        vsw = ro.v_swing_v or 1e3
        return (f"* column readout: op-amp TIA per physical column, GBW {tia.gbw_hz!r} Hz, open-loop gain "
                f"{tia.open_loop_gain!r}, feedback C {self.cf!r} F",
                f"tia_gbw rf={ro.tia_rf_ohm!r} cf={self.cf!r} a0={tia.open_loop_gain!r} "
                f"fp={tia.gbw_hz / tia.open_loop_gain!r} vsw={vsw!r}")

    @property
    def t_start(self) -> float:
        """Start of the rising ramp: after the pre-roll in which 1T1R word lines and gates settle."""
        tr = self.cost.array.driver_rise_s
        return tr + (self.window_s / 4 if self.chip.params.cell == "1t1r" else 0.0)

    def ramps(self) -> list[str]:
        """Row drivers: 0 -> V_read -> 0, with the cost model's rise time."""
        tr, v = self.cost.array.driver_rise_s, self.chip.params.v_read_v
        t0 = self.t_start
        t1 = t0 + self.window_s / 2
        pwl = f"PWL(0 0 {t0!r} 0 {t0 + tr!r} {v!r} {t1!r} {v!r} {t1 + tr!r} 0)"
        return [f"Vr{r} in{r} 0 {pwl}" for r in range(self.circuit.rows)]

    def subckt_text(self) -> str:
        """The ``.sub`` file: the tile's static circuit with wire capacitors and op-amp TIAs."""
        c = self.circuit
        name = tile_subckt_name(c.layer, c.rt, c.ct)
        ports = [c.port(r) for r in range(c.rows)] + [f"o{j}" for j in range(self.n_phys)]
        return "\n".join([f".subckt {name} {' '.join(ports)}", *c.body(self.tia()), *self.capacitors(),
                          f".ends {name}"]) + "\n"

    def text(self, sub_file: str) -> str:
        """The ``.cir`` file: includes, the subcircuit ``sub_file`` (beside it), ramped drivers, saves."""
        c = self.circuit
        name = tile_subckt_name(c.layer, c.rt, c.ct)
        nodes = [f"in{r}" for r in range(c.rows)] + [f"o{j}" for j in range(self.n_phys)]
        saves = ["time"] + [f"in{r}" for r in range(c.rows)] + [f"o{j}" for j in range(self.n_phys)]
        saves += [driver_branch(r) for r in range(c.rows)] + [sense_branch(j) for j in range(self.n_phys)]
        lines = [f"* bmcnn-hw transient read: layer {c.layer.name}, tile ({c.rt},{c.ct}), all {c.rows} rows "
                 f"switched 0 -> V_read -> 0; window {self.window_s!r} s",
                 *[line for line in _includes(self.chip) if not line.startswith(".options")], TRAN_OPTIONS,
                 f".include {sub_file}", *self.ramps(), f"Xtile {' '.join(nodes)} {name}",
                 ".save " + " ".join(saves[1:]), ".end"]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class _Waves:
    """A transient's waveforms: time (T,), row voltages and driver currents (R, T), TIA input
    currents and outputs (P, T)."""

    time: np.ndarray
    v_in: np.ndarray
    i_drv: np.ndarray
    i_col: np.ndarray
    v_out: np.ndarray


def _ngspice_waves(tile: _TransientTile, netlist: Path, step_s: float, stop_s: float, max_step_s: float) -> _Waves:
    """The transient by ngspice (the reference engine)."""
    c = tile.circuit
    ng = NgSpice.get()
    ng.load(netlist, hs_models=tile.chip.params.cell == "1t1r")
    ng.command("destroy all", str(netlist))
    # uic: start from the all-zero state the sources define at t = 0 (no DC operating point: the
    # op-amp loops around 1T1R columns defeat ngspice's gmin stepping, and nothing is biased yet).
    ng.command(f"tran {step_s!r} {stop_s!r} 0 {max_step_s!r} uic", str(netlist))
    waves = _Waves(ng.vector("time"), np.stack([ng.vector(f"in{r}") for r in range(c.rows)]),
                   -np.stack([ng.vector(driver_branch(r)) for r in range(c.rows)]),
                   np.stack([ng.vector(sense_branch(j)) for j in range(tile.n_phys)]),
                   np.stack([ng.vector(f"o{j}") for j in range(tile.n_phys)]))
    ng.unload()
    return waves


def _vacask_waves(tile: _TransientTile, netlist: Path, step_s: float, stop_s: float, max_step_s: float) -> _Waves:
    """The same transient by VACASK (:func:`bmcnn_hw.spice.vacask.solve_transient`; its row nodes are
    the subcircuit's ports, its currents the ``flow(br)`` of each source)."""
    from ..spice.vacask import solve_transient

    if tile.ideal_tia:
        raise SimulationError(f"{netlist}: transients with ideal TIAs (no output node in VACASK's translation) "
                              "are ngspice's only; use engine ngspice")
    c = tile.circuit
    # As ngspice does it: convergence on the solution's change (VACASK's residual check cannot pass
    # at abstol 1e-15) and SPICE's truncation-error formula (VACASK's own took 3.5x the time points and
    # time on a 64 x 20 1T1R tile; with SPICE's and ngspice's trtol of 7, reads and energies moved by
    # up to 1.2 % from ngspice's on a 10 x 12 1T1R tile, at VACASK's ratio of 3.5 by up to 0.65 %)
    options = TRAN_OPTIONS.removeprefix(".options ") + " nr_residualcheck=0 tran_spicelte=1"
    nodes = [c.port(r) for r in range(c.rows)] + [f"o{j}" for j in range(tile.n_phys)]
    translation, w = solve_transient(netlist, step_s, stop_s, max_step_s, options, nodes)
    return _Waves(w["time"], np.stack([w[c.port(r)] for r in range(c.rows)]),
                  -np.stack([w[f"vr{r}:flow(br)"] for r in range(c.rows)]),
                  np.stack([w[f"{s}:flow(br)"] for s in translation.senses]),
                  np.stack([w[f"o{j}"] for j in range(tile.n_phys)]))


def _linear_waves(tile: _TransientTile, netlist: Path, step_s: float, stop_s: float, max_step_s: float) -> _Waves:
    """The same transient by bmcnn-hw's fixed-step solver of linear tiles
    (:mod:`bmcnn_hw.ppa.linear_transient`: one factorisation of the mesh, BDF2 steps; 1T1R cells
    linearised at the read by :func:`access_linearisation`)."""
    from .linear_transient import solve_transient

    cell = tile.chip.params.cell
    if cell not in LINEAR_ENGINE_CELLS:
        raise SimulationError(f"{netlist}: the linear engine solves tiles of linear or 1T1R cells, not "
                              f"{cell} cells; use engine ngspice or vacask")
    access = access_linearisation(tile.chip) if cell == "1t1r" else None
    w = solve_transient(netlist, step_s, stop_s, max_step_s, tile.cost.array.driver_rise_s, access)
    return _Waves(w.time, w.v_drivers, w.i_drivers, w.i_tia, w.v_tia_out)


def access_linearisation(chip: Chip) -> AccessLinearisation:
    """The 1T1R access transistors of ``chip`` as the linear engine takes them: the channel
    resistance that makes each cell carry the physics executor's DC current at V_read (column at
    0 V), and the cell's capacitance at its column node
    (:func:`bmcnn_hw.spice.sky130.access_column_capacitance`)."""
    from ..spice.sky130 import access_column_capacitance

    v = chip.params.v_read_v

    def channel_ohm(r_device: np.ndarray, dvth: np.ndarray) -> np.ndarray:
        current = chip.cell.current(np.full(r_device.shape, v), r_device, dvth)
        return np.asarray(v / current - r_device)

    return AccessLinearisation(channel_ohm, access_column_capacitance(chip.params))


_ENGINES = {"ngspice": _ngspice_waves, "vacask": _vacask_waves, "linear": _linear_waves}
"""How each engine runs a transient netlist (ngspice is the reference)."""


def _settle(time: np.ndarray, wave: np.ndarray, start: float, stop: float, tol: float) -> float | None:
    """Time after ``start`` from which ``wave`` stays within ``tol`` of its value at ``stop``; None if never."""
    inside = (time >= start) & (time <= stop)
    t, w = time[inside], wave[inside]
    outside = np.abs(w - w[-1]) > tol
    if not outside.any():
        return 0.0
    last = int(np.nonzero(outside)[0][-1])
    if t[last] > start + 0.5 * (stop - start):
        return None  # still moving in the second half of the phase: not settled
    return float(t[min(last + 1, len(t) - 1)] - start)


def _steady_at(time: np.ndarray, v_out: np.ndarray, i_col: np.ndarray, t: float, *, rf: float, gain: float,
               clip: float, tol: float) -> bool:
    """True when at time ``t`` every unclipped TIA output is its DC value -R_f I A / (1 + A) within ``tol``.

    Settling is measured against the output's own value at the end of the phase; this check
    rejects the case where the output has hardly moved yet (a loop far slower than the window),
    since only in steady state does the feedback resistor alone carry the column current.
    """
    k = int(np.searchsorted(time, t) - 1)
    expected = -rf * i_col[:, k] * gain
    free = np.abs(expected) < clip if clip else np.ones(len(expected), dtype=bool)
    return bool(np.all(np.abs(v_out[free, k] - expected[free]) <= tol))


def estimated_window_s(model: CompiledModel, chip: Chip, index: int, rt: int, ct: int, cost: CostModel) -> float:
    """A simulation window long enough for ~10 closed-loop time constants of the slowest TIA, twice.

    With every row on, a column is a source of conductance G = sum of its cells', so the op-amp
    works at a noise gain of 1 + R_f G and its closed-loop bandwidth is GBW / (1 + R_f G).
    """
    devices = chip.tiles[(index, rt, ct)]
    layer = model.layers[index]
    assert layer.tiling is not None  # memristive layers are tiled
    r_phys, _ = devices.physical(*[b - a for a, b in (layer.tiling.row_range(rt, layer.rows),
                                                      layer.tiling.col_range(ct, layer.cols))])
    g_col = float(np.max(np.sum(1.0 / r_phys, axis=0)))
    noise_gain = 1.0 + model.hardware.readout.tia_rf_ohm * g_col
    tau = noise_gain / (2 * math.pi * cost.tia.gbw_hz)
    return 2 * max(10 * tau, 10 * cost.array.driver_rise_s, 5e-9)


def transient_read(model: CompiledModel, chip: Chip, index: int, rt: int, ct: int, cost: CostModel,
                   work_dir: Path, window_s: float | None = None, ideal_tia: bool = False,
                   attempts: int = 3, engine: str = "ngspice") -> TransientRead:
    """Run the worst-case transient read of tile (rt, ct) of layer ``index``.

    ``window_s`` (default :func:`estimated_window_s`) is doubled up to ``attempts`` - 1 times
    while some TIA output has not settled. ``engine``: ``ngspice`` (the reference), ``vacask``
    (KLU; the same netlist translated by :mod:`bmcnn_hw.spice.vacask`, the op-amp TIAs as the
    Verilog-A module of the same equations) or ``linear`` (:mod:`bmcnn_hw.ppa.linear_transient`,
    linear cells only: the same netlist, the mesh factorised once).

    Raises:
        SimulationError: the engine failed, or a TIA output did not settle within the longest
            window (the message names the tile).
    """
    if engine not in _ENGINES:
        raise SimulationError(f"transient engine must be {' or '.join(_ENGINES)}, not {engine!r}")
    window = window_s or estimated_window_s(model, chip, index, rt, ct, cost)
    for attempt in range(attempts):
        try:
            return _transient_once(model, chip, index, rt, ct, cost, Path(work_dir), window, ideal_tia, engine)
        except _NotSettled as exc:
            if attempt == attempts - 1:
                raise SimulationError(str(exc)) from None
            window *= 2
    raise AssertionError("unreachable")


class _NotSettled(Exception):
    pass


def _transient_once(model: CompiledModel, chip: Chip, index: int, rt: int, ct: int, cost: CostModel,
                    work_dir: Path, window_s: float, ideal_tia: bool, engine: str) -> TransientRead:
    import time as clock

    tile = _TransientTile(model, chip, index, rt, ct, cost, window_s, ideal_tia)
    c = tile.circuit
    name = f"{tile_subckt_name(c.layer, rt, ct)}_tran"
    copy_model_libs(chip, work_dir / "lib")
    netlist = work_dir / f"{name}.cir"
    write_text_atomic(work_dir / f"{name}.sub", tile.subckt_text())
    write_text_atomic(netlist, tile.text(f"{name}.sub"))
    tr, t0 = cost.array.driver_rise_s, tile.t_start
    t1, stop = t0 + window_s / 2, t0 + window_s + tr
    started = clock.perf_counter()
    simulate = _ENGINES[engine]
    waves = simulate(tile, netlist, tr / 10, stop, window_s / POINTS)
    solve_s = clock.perf_counter() - started
    time, v_in, i_drv, i_col, v_out = waves.time, waves.v_in, waves.i_drv, waves.i_col, waves.v_out
    lsb_v = model.hardware.readout.tia_rf_ohm * chip.unit_current_a * model.hardware.readout.lsb_units
    tol = SETTLE_LSB * lsb_v
    rise = [_settle(time, w, t0, t1, tol) for w in v_out]
    fall = [_settle(time, w, t1, stop, tol) for w in v_out]
    gain = 1.0 if ideal_tia else cost.tia.open_loop_gain / (1.0 + cost.tia.open_loop_gain)
    before = int(np.searchsorted(time, t0))  # the fall returns to the output before the read
    back = bool(np.all(np.abs(v_out[:, -1] - v_out[:, before]) <= tol))
    steady = _steady_at(time, v_out, i_col, t1, rf=tile.readout.tia_rf_ohm, gain=gain,
                        clip=tile.readout.v_swing_v, tol=tol)
    if any(s is None for s in rise + fall) or not (steady and back):
        raise _NotSettled(f"{c.layer.name} tile ({rt},{ct}): a TIA output did not settle to half an ADC step "
                          f"({tol:.3g} V) within a {window_s * 1e9:.4g} ns window (transient {netlist})")
    settle_rise, settle_fall = max(s for s in rise if s is not None), max(s for s in fall if s is not None)
    on = (time >= t0) & (time <= t0 + settle_rise)
    t_on = time[on]
    p_drv = np.sum(v_in[:, on] * i_drv[:, on], axis=0)
    e_drv = float(np.trapezoid(p_drv, t_on))
    e_tia = cost.tia.supply_v / 2 * float(np.trapezoid(np.sum(np.abs(i_col[:, on]), axis=0), t_on))
    end = int(np.searchsorted(time, t1) - 1)
    power_dc = float(np.sum(v_in[:, end] * i_drv[:, end]))
    v_read = chip.params.v_read_v
    e_dc = power_dc * float(np.trapezoid(np.mean((v_in[:, on] / v_read) ** 2, axis=0), t_on))
    return TransientRead(c.layer.name, (rt, ct), c.rows, tile.n_phys, settle_rise, settle_fall,
                         max(settle_rise, settle_fall), e_drv, e_tia, e_dc, power_dc, lsb_v,
                         float(np.max(np.abs(v_out[:, time >= t0]))), tile.cf, window_s,
                         solve_s)
