"""bmcnn-hw's own transient engine for tiles of linear cells: fixed-step BDF2 on the written netlist.

A wired tile of linear cells is a linear RC mesh (row and column wire segments, cells, wire
capacitance) around one op-amp TIA per column, whose only nonlinearity is its output clamp at
the rails. SPICE refactors the whole mesh at every Newton iteration of every time step: a
768 x 129 met1 tile (198,000 nodes) had not finished in 40 minutes of ngspice. Here the mesh is
factorised once and every step costs one sparse triangular solve (two for meshes whose response to
the outputs exceeds ``KEEP_RESPONSE_BYTES``):

- the netlist is the one ngspice runs (the transient ``.cir`` and its ``.sub``), parsed into
  resistors, capacitors, ramped row drivers and TIAs; any other element is refused;
- fixed time step ``h``, second-order backward differentiation (BDF2, L-stable: the stiff
  op-amp loop and wire segments are damped, where the trapezoidal rule lets stiff modes ring);
  the all-zero start of ngspice's ``uic``;
- per step, the mesh with every TIA output taken as a source gives the column inputs as
  ``b0 + K o`` (``K``: the mesh's discrete response to the P outputs, solved once); each TIA's
  pole node is then a P-dimensional problem ``p = q - L clamp(p)``, solved exactly by active-set
  iteration over which outputs sit at a rail; the mesh state follows from those outputs by the
  same response.

1T1R cells (a device in series with a sky130 access transistor whose gate a DC source holds on)
are solved linearised at the read when the caller gives an :class:`AccessLinearisation`: each
transistor becomes its channel resistance at the read (chosen so that the cell carries the physics
executor's DC current at V_read, column at 0 V) and the cell's small-signal capacitance at its column
node (from an ngspice AC analysis of one cell at the read); the gate sources and nodes drop out. This
is an approximation, not the netlist's own equations: ``tests/ppa/test_linear_transient.py``
measures it against ngspice.

The op-amp is ``tia.lib``'s ``tia_gbw`` (VCCS ``a0 / 1k`` into 1 kOhm || C_p with pole ``fp``,
output = clamp(pole node, +-vsw), feedback R_f || C_f); ``tia_ideal`` holds its input at 0 V.
Currents are those of the discrete equations, so Kirchhoff's law holds step by step.
``tests/ppa/test_linear_transient.py`` checks read times, energies and outputs against ngspice.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..errors import SimulationError

ENGINE_LABEL = "bmcnn-hw linear transient (BDF2, fixed step, one factorisation)"
"""How reports name this engine (``ppa.json``'s ``spice_engine``)."""
LINEARISED_1T1R_LABEL = (f"{ENGINE_LABEL}, 1T1R access transistors linearised at the read (channel resistance from "
                         "the characterised table, the cell's column capacitance from an ngspice AC analysis)")
"""How reports name this engine on tiles of 1T1R cells."""
CELLS = ("linear", "1t1r")
"""Cell types whose tiles this engine solves (1T1R linearised)."""
R_POLE = 1e3
"""The resistor of ``tia_gbw``'s pole node (``Rp``), which sets its transconductance ``a0 / R_POLE``."""
STEPS_PER_MAX_STEP = 2
"""Fixed steps per SPICE ``max_step`` (the window / 1000): finer than ngspice's largest step."""
MAX_ACTIVE_SET_ROUNDS = 64
"""Active-set rounds per step before the rail states count as not found (a step changes a few)."""
KEEP_RESPONSE_BYTES = 1 << 30
"""The mesh's response to each TIA output is kept (one product per step instead of a second
solve) up to this size."""


@dataclass
class _Tia:
    inp: int
    out: str
    rf: float
    cf: float = 0.0
    a0: float = 0.0
    fp: float = 0.0
    vsw: float | None = None
    """Rail of the output clamp; None for an ideal TIA (input held at 0 V, output -R_f I)."""


@dataclass(frozen=True)
class AccessLinearisation:
    """How 1T1R access transistors enter the linear engine (see the module docstring)."""

    channel_ohm: Callable[[np.ndarray, np.ndarray], np.ndarray]
    """(device resistances, gate threshold offsets dVth) -> channel resistance of each transistor."""
    c_column_f: float
    """Small-signal capacitance a cell adds to its column node (F): the transistor's, both terminals."""


@dataclass
class _Transistor:
    where: str
    drain: int
    gate: str
    source: int


@dataclass
class TileNetlist:
    """The elements of a transient netlist that this engine solves (node 0 is ground)."""

    nodes: dict[str, int] = field(default_factory=lambda: {"0": 0})
    resistors: list[tuple[int, int, float]] = field(default_factory=list)
    capacitors: list[tuple[int, int, float]] = field(default_factory=list)
    drivers: list[tuple[str, int, np.ndarray, np.ndarray]] = field(default_factory=list)
    """(source name, node, PWL times, PWL values)."""
    tias: list[tuple[str, _Tia]] = field(default_factory=list)
    device_into: dict[int, float] = field(default_factory=dict)
    """Resistance of the cell device ending at each node (a 1T1R cell's middle node)."""
    dc_sources: list[tuple[str, str, str, float]] = field(default_factory=list)
    """(where, + node, - node, volts) of the DC sources inside the tile (word line, gate offsets)."""
    transistors: list[_Transistor] = field(default_factory=list)

    def node(self, name: str) -> int:
        """Index of node ``name`` (a new one on first sight)."""
        return self.nodes.setdefault(name.lower(), len(self.nodes))


def _value(token: str, where: str) -> float:
    try:
        return float(token)
    except ValueError:
        raise SimulationError(f"{where}: {token!r} is not a number (the linear engine reads plain values)") from None


class _Params(dict[str, float]):
    """``name=value`` parameters of an instance line; a missing one is named with the line."""

    def __init__(self, tokens: list[str], where: str):
        super().__init__()
        self.where = where
        for t in tokens:
            key, sep, val = t.partition("=")
            if not sep:
                raise SimulationError(f"{where}: expected name=value, found {t!r}")
            self[key.lower()] = _value(val, where)

    def __missing__(self, key: str) -> float:
        raise SimulationError(f"{self.where}: parameter {key}= missing")


def _element_lines(path: Path) -> list[tuple[str, list[str]]]:
    """(where, tokens) of every element line of ``path``: comments, ``$`` tails and dot-lines dropped."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SimulationError(f"{path}: cannot be read ({exc})") from None
    lines = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" $ ", 1)[0].strip()
        if line and not line.startswith("*"):
            lines.append((f"{path}:{n}", line.split()))
    return lines


def _subckt(path: Path, name: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    ports: list[str] | None = None
    body: list[tuple[str, list[str]]] = []
    for where, tokens in _element_lines(path):
        head = tokens[0].lower()
        if head == ".subckt" and tokens[1].lower() == name.lower():
            ports = tokens[2:]
        elif head == ".ends":
            if ports is not None:
                return ports, body
        elif ports is not None:
            body.append((where, tokens))
    raise SimulationError(f"{path}: no subcircuit {name} in it")


def _pwl(tokens: list[str], where: str) -> tuple[np.ndarray, np.ndarray]:
    text = " ".join(tokens)
    match = re.fullmatch(r"PWL\s*\(([^)]*)\)", text, re.IGNORECASE)
    if not match:
        raise SimulationError(f"{where}: a row driver must be PWL(...), found {text!r}")
    values = [_value(v, where) for v in match.group(1).split()]
    if len(values) < 2 or len(values) % 2:
        raise SimulationError(f"{where}: PWL needs time-value pairs")
    return np.array(values[0::2]), np.array(values[1::2])


def parse_transient(netlist: Path, access: AccessLinearisation | None = None) -> TileNetlist:
    """The tile, drivers and TIAs of a transient ``.cir`` written by :mod:`bmcnn_hw.ppa.transient`;
    1T1R access transistors linearised by ``access`` (refused without it).

    Raises:
        SimulationError: an element this engine does not solve (nonlinear cells, transistors
            without ``access``, other sources), or a malformed line; the message names the file and line.
    """
    net = TileNetlist()
    instance: tuple[str, list[str], str] | None = None
    sub_file = None
    for where, tokens in _element_lines(netlist):
        head = tokens[0].lower()
        if head == ".include" and tokens[1].endswith(".sub"):
            sub_file = netlist.parent / tokens[1]
        elif head.startswith("v"):
            if len(tokens) < 4 or tokens[2] != "0":
                raise SimulationError(f"{where}: a row driver must be 'Vname node 0 PWL(...)'")
            times, values = _pwl(tokens[3:], where)
            net.drivers.append((head, net.node(tokens[1]), times, values))
        elif head.startswith("x"):
            instance = (where, tokens[1:-1], tokens[-1])
        elif not head.startswith("."):
            raise SimulationError(f"{where}: {tokens[0]} is not an element the linear engine solves at the top level")
    if instance is None or sub_file is None:
        raise SimulationError(f"{netlist}: no tile instance and .sub include in it")
    where, nodes, name = instance
    ports, body = _subckt(sub_file, name)
    if len(ports) != len(nodes):
        raise SimulationError(f"{where}: {len(nodes)} nodes for the {len(ports)} ports of {name}")
    rename = {p.lower(): n.lower() for p, n in zip(ports, nodes, strict=True)}
    for where, tokens in body:
        _add_element(net, [rename.get(t.lower(), t) if i and "=" not in t else t for i, t in enumerate(tokens)],
                     where)
    if net.transistors:
        _linearise_access(net, access)
    return net


def _linearise_access(net: TileNetlist, access: AccessLinearisation | None) -> None:
    """Each access transistor -> its channel resistance, and the cell's capacitance on its column node."""
    first = net.transistors[0]
    if access is None:
        raise SimulationError(f"{first.where}: an access transistor; the linear engine solves 1T1R cells only "
                              "linearised by their cell model (ppa --engine linear passes it)")
    volts = _dc_node_voltages(net.dc_sources)
    r_dev, dvth = [], []
    for t in net.transistors:
        if t.drain not in net.device_into:
            raise SimulationError(f"{t.where}: the transistor's drain is not the end of a cell device")
        if t.gate.lower() not in volts:
            raise SimulationError(f"{t.where}: gate {t.gate} is not held by a DC source from the word line")
        r_dev.append(net.device_into[t.drain])
        dvth.append(volts["wl"] - volts[t.gate.lower()])
    channel = access.channel_ohm(np.array(r_dev), np.array(dvth))
    for t, r_ch in zip(net.transistors, channel, strict=True):
        net.resistors.append((t.drain, t.source, float(r_ch)))
        net.capacitors.append((t.source, 0, access.c_column_f))


def _dc_node_voltages(sources: list[tuple[str, str, str, float]]) -> dict[str, float]:
    """Voltages of the nodes the tile's DC sources fix, from ground (``V(+) - V(-) = volts``)."""
    known = {"0": 0.0}
    pending = list(sources)
    while pending:
        rest = [(w, a, b, v) for w, a, b, v in pending if not (a in known or b in known)]
        for _, a, b, v in pending:
            if a in known and b not in known:
                known[b] = known[a] - v
            elif b in known and a not in known:
                known[a] = known[b] + v
        if len(rest) == len(pending):
            raise SimulationError(f"{rest[0][0]}: a DC source without a path to ground through others")
        pending = rest
    if "wl" not in known:
        raise SimulationError("the tile has access transistors but no word line node wl held by a DC source")
    return known


def _add_element(net: TileNetlist, tokens: list[str], where: str) -> None:
    head = tokens[0].lower()
    if head[0] == "v" and len(tokens) == 5 and tokens[3].lower() == "dc":
        net.dc_sources.append((where, tokens[1].lower(), tokens[2].lower(), _value(tokens[4], where)))
        return
    if head[0] == "x" and len(tokens) >= 6 and tokens[5].lower().startswith("sky130_fd_pr__nfet"):
        if tokens[4] != "0":
            raise SimulationError(f"{where}: the linear engine takes access transistors with the body at 0 V")
        net.transistors.append(_Transistor(where, net.node(tokens[1]), tokens[2], net.node(tokens[3])))
        return
    if head[0] in "rc" and len(tokens) == 4:
        a, b, value = net.node(tokens[1]), net.node(tokens[2]), _value(tokens[3], where)
        (net.resistors if head[0] == "r" else net.capacitors).append((a, b, value))
        return
    if head[0] == "x" and len(tokens) >= 4:
        model, params = tokens[3].lower(), _Params(tokens[4:], where)
        if model == "memristor_read":
            a, b = net.node(tokens[1]), net.node(tokens[2])
            net.resistors.append((a, b, params["r"]))
            net.device_into[b] = params["r"]
            return
        if model == "tia_gbw":
            tia = _Tia(net.node(tokens[1]), tokens[2].lower(), params["rf"], params["cf"], params["a0"],
                       params["fp"], params.get("vsw", 1e3))
            net.tias.append((head, tia))
            return
        if model == "tia_ideal":
            net.tias.append((head, _Tia(net.node(tokens[1]), tokens[2].lower(), params["rf"])))
            return
    raise SimulationError(f"{where}: {' '.join(tokens[:4])} is not an element the linear engine solves "
                          "(linear resistors and cells, 1T1R access transistors, DC sources, capacitors, tia_gbw "
                          "or tia_ideal); use engine ngspice")


@dataclass(frozen=True)
class Waves:
    """Waveforms of a solved transient: time (T,), per driver its node voltage and delivered current
    (D, T), per TIA its input current and output voltage (P, T), in netlist order."""

    time: np.ndarray
    v_drivers: np.ndarray
    i_drivers: np.ndarray
    i_tia: np.ndarray
    v_tia_out: np.ndarray
    driver_names: list[str]
    tia_names: list[str]


def step_for(step_s: float, rise_s: float, max_step_s: float) -> float:
    """The fixed step: at most max_step / STEPS_PER_MAX_STEP, dividing the driver rise time ``rise_s``
    (so the ramp's first corners are time points)."""
    target = max_step_s / STEPS_PER_MAX_STEP
    return rise_s / math.ceil(rise_s / target) if rise_s > 0 else min(target, step_s)


class _Stamps:
    """Conductance and capacitance matrices over every non-ground node."""

    def __init__(self, net: TileNetlist, out_nodes: dict[str, int]):
        n = len(net.nodes) + len(out_nodes)
        self.n = n
        g_entries = [(a, b, 1.0 / r) for a, b, r in net.resistors]
        c_entries = list(net.capacitors)
        for _, tia in net.tias:
            if tia.vsw is not None:
                g_entries.append((tia.inp, out_nodes[tia.out], 1.0 / tia.rf))
                c_entries.append((tia.inp, out_nodes[tia.out], tia.cf))
        self.g = self._matrix(g_entries, n)
        self.c = self._matrix(c_entries, n)

    @staticmethod
    def _matrix(entries: list[tuple[int, int, float]], n: int) -> sp.csr_matrix:
        a = np.array([e[0] for e in entries], dtype=np.int64)
        b = np.array([e[1] for e in entries], dtype=np.int64)
        v = np.array([e[2] for e in entries], dtype=float)
        rows = np.concatenate([a, b, a, b])
        cols = np.concatenate([a, b, b, a])
        vals = np.concatenate([v, v, -v, -v])
        m = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
        return m[1:, 1:].tocsr()  # ground removed: index i of the result is node i + 1


def solve_transient(netlist: Path, step_s: float, stop_s: float, max_step_s: float, rise_s: float,
                    access: AccessLinearisation | None = None) -> Waves:
    """Solve transient ``netlist`` from the all-zero state to ``stop_s`` with a fixed BDF2 step
    (1T1R access transistors linearised by ``access``).

    Raises:
        SimulationError: an element this engine does not solve, or the rail states of the TIAs
            not found in a step (the message names the time).
    """
    net = parse_transient(netlist, access)
    return _Solver(net, step_for(step_s, rise_s, max_step_s)).run(stop_s)


class _Solver:
    """The discretised tile: node partition, the factorised mesh and the TIAs' response to their
    outputs (everything that does not change from step to step)."""

    def __init__(self, net: TileNetlist, h: float):
        self.net, self.h = net, h
        self.alpha = 1.5 / h  # BDF2: x' = alpha x_{n+1} - (4 x_n - x_{n-1}) / (2 h)
        self.gbw = [t for _, t in net.tias if t.vsw is not None]
        self.held_tias = [t for _, t in net.tias if t.vsw is None]
        out_nodes = {t.out: len(net.nodes) + k for k, t in enumerate(self.gbw)}
        stamps = _Stamps(net, out_nodes)
        self.g_all, self.c_all = stamps.g, stamps.c
        self._partition(stamps.n - 1, [out_nodes[t.out] - 1 for t in self.gbw])
        self._factorise()
        self._response_to_outputs()

    def _partition(self, n: int, outs: list[int]) -> None:
        """Fixed nodes (drivers, inputs of ideal TIAs at 0 V, op-amp outputs) and the free rest."""
        self.drv = np.array([node - 1 for _, node, _, _ in self.net.drivers], dtype=np.int64)
        self.held = np.array([t.inp - 1 for t in self.held_tias], dtype=np.int64)
        self.outs = np.array(outs, dtype=np.int64)
        fixed = np.zeros(n, dtype=bool)
        for idx in (self.drv, self.held, self.outs):
            fixed[idx] = True
        self.free = np.nonzero(~fixed)[0]
        position = np.full(n, -1)
        position[self.free] = np.arange(len(self.free))
        self.inputs = position[np.array([t.inp - 1 for t in self.gbw], dtype=np.int64)]
        if np.any(self.inputs < 0):
            raise SimulationError("a TIA input is tied to a source; the linear engine needs it on the mesh")

    def _factorise(self) -> None:
        system = (self.g_all + self.alpha * self.c_all).tocsr()
        self.a_uf = system[self.free]  # free rows, every column: sources enter the right-hand side
        self.c_ua = self.c_all.tocsr()[self.free]
        try:
            self.lu = spla.splu(self.a_uf[:, self.free].tocsc(), permc_spec="MMD_AT_PLUS_A")
        except RuntimeError as exc:
            raise SimulationError(f"the tile's mesh matrix is singular ({exc}): a node without a path to a "
                                  "source") from None

    def _response_to_outputs(self) -> None:
        """K: the column inputs' change per volt of each TIA output (the mesh with the outputs as
        sources; the whole response W kept when it fits), and the pole constants of each op-amp."""
        p = len(self.gbw)
        self.k = np.zeros((p, p))
        self.w = np.empty((len(self.free), p)) if len(self.free) * p * 8 <= KEEP_RESPONSE_BYTES else None
        self.coupling = self.a_uf[:, self.outs]
        for start in range(0, p, 32):
            block = self.lu.solve(np.ascontiguousarray(self.coupling[:, start:start + 32].toarray()))
            self.k[:, start:start + 32] = -block[self.inputs]
            if self.w is not None:
                self.w[:, start:start + 32] = block
        self.cp = 1.0 / (2 * math.pi * np.array([t.fp for t in self.gbw]) * R_POLE)
        self.gm = np.array([t.a0 for t in self.gbw]) / R_POLE
        self.d = self.alpha * self.cp + 1.0 / R_POLE
        self.l_matrix = (self.gm / self.d)[:, None] * self.k
        self.vsw = np.array([t.vsw for t in self.gbw], dtype=float)
        self._lu_cache: dict[bytes, tuple[np.ndarray, np.ndarray] | None] = {}

    def _outputs(self, q: np.ndarray, guess: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Pole voltages p and outputs o = clamp(p) with p = q - L o, exactly (active-set iteration)."""
        import scipy.linalg as la

        rail = np.abs(guess) >= self.vsw
        for _ in range(MAX_ACTIVE_SET_ROUNDS):
            o_rail = np.where(rail, np.sign(guess) * self.vsw, 0.0)
            free = ~rail
            key = rail.tobytes()
            if key not in self._lu_cache:
                if len(self._lu_cache) >= 256:  # rail states seen: bounded memory
                    self._lu_cache.clear()
                sub = np.eye(int(free.sum())) + self.l_matrix[np.ix_(free, free)]
                self._lu_cache[key] = la.lu_factor(sub) if sub.size else None
            p = np.empty_like(q)
            rhs = q - self.l_matrix[:, rail] @ o_rail[rail]
            if free.any():
                p[free] = la.lu_solve(self._lu_cache[key], rhs[free])
            o = np.where(rail, o_rail, p)
            p[rail] = (q - self.l_matrix @ o)[rail]
            new_rail = np.abs(p) >= self.vsw
            if np.array_equal(new_rail, rail) and np.all(np.sign(p[rail]) == np.sign(o_rail[rail])):
                return p, np.clip(p, -self.vsw, self.vsw)
            rail, guess = new_rail, p
        raise SimulationError(f"the TIA rail states did not settle at t = {t:.4g} s")

    def _step(self, drive: np.ndarray, x_now: np.ndarray, x_prev: np.ndarray, poles: list[np.ndarray],
              t: float) -> np.ndarray:
        """Node voltages at the next time point (``poles`` = [p_prev, p_now] advances in place)."""
        hist = (4 * x_now - x_prev) / (2 * self.h)
        x = np.zeros_like(x_now)
        x[self.drv] = drive  # ideal TIAs' inputs stay at 0 V; op-amp outputs enter through W below
        y0 = self.lu.solve(self.c_ua @ hist - self.a_uf @ x)
        x[self.free] = y0
        if self.gbw:
            p_prev, p_now = poles
            q = (self.cp * (4 * p_now - p_prev) / (2 * self.h) - self.gm * y0[self.inputs]) / self.d
            p, o = self._outputs(q, 2 * p_now - p_prev, t)
            x[self.outs] = o
            x[self.free] -= self.w @ o if self.w is not None else self.lu.solve(self.coupling @ o)
            poles[:] = [p_now, p]
        return x

    def run(self, stop_s: float) -> Waves:
        """Step from 0 to ``stop_s``; every quantity is zero at t = 0 (SPICE's ``uic``)."""
        steps = math.ceil(stop_s / self.h - 1e-9)
        time = np.arange(steps + 1) * self.h
        drive = np.array([np.interp(time, times, values) for _, _, times, values in self.net.drivers])
        record = _Recorder(self, steps + 1)
        x_prev = x_now = np.zeros(self.g_all.shape[0])
        poles = [np.zeros(len(self.gbw)), np.zeros(len(self.gbw))]
        for s in range(1, steps + 1):
            x = self._step(drive[:, s], x_now, x_prev, poles, float(time[s]))
            record(s, x, self.alpha * x - (4 * x_now - x_prev) / (2 * self.h))
            x_prev, x_now = x_now, x
        return Waves(time, *record.arrays(), [name for name, _, _, _ in self.net.drivers],
                     [name for name, _ in self.net.tias])


class _Recorder:
    """Driver and TIA waveforms, from the node voltages and their BDF2 derivatives at each step."""

    def __init__(self, solver: _Solver, points: int):
        self.s = solver
        tias = [t for _, t in solver.net.tias]
        self.gbw_rows = [k for k, t in enumerate(tias) if t.vsw is not None]
        self.held_rows = [k for k, t in enumerate(tias) if t.vsw is None]
        self.rf_held = np.array([t.rf for t in solver.held_tias])
        self.rf = np.array([t.rf for t in solver.gbw])
        self.cf = np.array([t.cf for t in solver.gbw])
        self.inputs = solver.free[solver.inputs]
        n_d, n_t = len(solver.drv), len(tias)
        self.v_d, self.i_d = np.zeros((n_d, points)), np.zeros((n_d, points))
        self.i_t, self.v_t = np.zeros((n_t, points)), np.zeros((n_t, points))

    def __call__(self, s: int, x: np.ndarray, x_dot: np.ndarray) -> None:
        current = self.s.g_all @ x + self.s.c_all @ x_dot  # what each node's source must inject
        self.v_d[:, s], self.i_d[:, s] = x[self.s.drv], current[self.s.drv]
        if self.held_rows:  # an ideal TIA takes what the mesh delivers to its grounded input
            self.i_t[self.held_rows, s] = -current[self.s.held]
            self.v_t[self.held_rows, s] = -self.rf_held * self.i_t[self.held_rows, s]
        if self.gbw_rows:  # an op-amp TIA's input current flows through R_f || C_f
            vin, vout = x[self.inputs], x[self.s.outs]
            dv = x_dot[self.inputs] - x_dot[self.s.outs]
            self.i_t[self.gbw_rows, s] = (vin - vout) / self.rf + self.cf * dv
            self.v_t[self.gbw_rows, s] = vout

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(driver voltages, driver currents, TIA input currents, TIA outputs)."""
        return self.v_d, self.i_d, self.i_t, self.v_t
