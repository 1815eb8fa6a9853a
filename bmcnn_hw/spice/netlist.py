"""Netlist writer: one netlist per crossbar tile, and per layer a top that instantiates its tiles.

Each tile's circuit is written once, as a subcircuit ``<layer>_r<rt>_c<ct>.sub``; the tile
netlist ``.cir`` drives it with one source per row, and the layer top ``<layer>_top.cir``
instantiates every tile of the layer on shared input rows.

Netlists are deterministic text: the same model, chip and tile give the same bytes. Every
device line ends with a comment naming layer, tile, row, column, weight and side. Only the
rows and columns a layer uses are emitted: padding rows would sit at 0 V and padding
columns are never read (the header records the padding). The circuit is the one
:mod:`bmcnn_hw.golden.tile_physics` solves: drivers (with ``r_source`` when > 0), row and
column wire segments (when ``r_wire`` > 0), devices, and one TIA per physical column.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from ..artefact import CompiledLayer, CompiledModel
from ..golden.chip import Chip
from ..io_utils import sha256_file, write_text_atomic
from .sky130 import DEVICE, include_name, model_include

MODEL_LIBS = ("memristor.lib", "rram_sinh.lib", "tia.lib", "vteam.lib")
NONLINEAR_OPTIONS = ".options reltol=1e-9 abstol=1e-18 vntol=1e-12 gmin=1e-18"
"""Tight Newton tolerances for tiles of nonlinear cells, so ngspice's answer is exact to far
below the 1e-6 agreement the physics executor is held to (ngspice defaults: reltol 1e-3)."""
SIDE_NAMES = {"p": "G+", "m": "G-", "ref": "reference"}


def spice_models_dir() -> Path:
    """The package's ``spice_models/`` (a link to the repository's top-level ``spice_models/``, the source;
    a wheel carries the files themselves as package data)."""
    return Path(str(resources.files("bmcnn_hw") / "spice_models"))


def tile_netlist_name(layer: CompiledLayer, rt: int, ct: int) -> str:
    """File name of a tile netlist, e.g. ``conv0_r0_c0.cir``."""
    return f"{layer.name}_r{rt}_c{ct}.cir"


def tile_subckt_name(layer: CompiledLayer, rt: int, ct: int) -> str:
    """Subcircuit (and ``.sub`` file stem) of a tile, e.g. ``conv0_r0_c0``."""
    return f"{layer.name}_r{rt}_c{ct}"


def layer_top_name(layer: CompiledLayer) -> str:
    """File name of a layer's top netlist, e.g. ``fc1_top.cir``."""
    return f"{layer.name}_top.cir"


def sense_branch(col: int) -> str:
    """ngspice vector (in a tile netlist) of the current into the TIA of physical column ``col``."""
    return f"v.xtile.xt{col}.vsense#branch"


def driver_branch(row: int) -> str:
    """ngspice vector of row driver ``row`` (negative while it delivers current)."""
    return f"vr{row}#branch"


def _fmt(value: float) -> str:
    return repr(float(value))


class TileCircuit:
    """The element lines of one tile, with node names local to the tile."""

    def __init__(self, model: CompiledModel, chip: Chip, index: int, rt: int, ct: int) -> None:
        self.layer = layer = model.layers[index]
        t = layer.tiling
        assert t is not None  # memristive layers are tiled
        self.rt, self.ct = rt, ct
        self.r0, self.r1 = t.row_range(rt, layer.rows)
        self.c0, self.c1 = t.col_range(ct, layer.cols)
        self.rows, used_cols = self.r1 - self.r0, self.c1 - self.c0
        devices = chip.tiles[(index, rt, ct)]
        self.r_phys, self.layout = devices.physical(self.rows, used_cols)
        self.dvth = devices.physical_dvth(self.rows, used_cols)
        self.params, self.readout = chip.params, model.hardware.readout
        self.wires = chip.params.r_wire_ohm > 0

    def row_node(self, r: int, j: int) -> str:
        return f"r{r}_{j}" if self.wires else f"r{r}"

    def col_node(self, r: int, j: int) -> str:
        return f"c{j}_{r}" if self.wires else f"c{j}"

    def bottom_node(self, j: int) -> str:
        return f"c{j}_b" if self.wires else f"c{j}"

    def port(self, r: int) -> str:
        """Node a row driver connects to."""
        return f"d{r}" if self.params.r_source_ohm > 0 else self.row_node(r, 0)

    def readout_tia(self) -> tuple[str, str]:
        """(comment, instance: subcircuit and parameters) of the build's column TIA for DC reads."""
        ro = self.readout
        if ro.v_swing_v:
            return (f"* column readout: ideal TIA per physical column, output clipped at +-{ro.v_swing_v!r} V",
                    f"tia_rails rf={_fmt(ro.tia_rf_ohm)} vsw={_fmt(ro.v_swing_v)}")
        if ro.tia_gain:
            return (f"* column readout: op-amp TIA per physical column, open-loop gain {ro.tia_gain!r}",
                    f"tia_opamp rf={_fmt(ro.tia_rf_ohm)} gain={_fmt(ro.tia_gain)}")
        return ("* column readout: each physical column held at virtual ground by an ideal TIA",
                f"tia_ideal rf={_fmt(ro.tia_rf_ohm)}")

    def body(self, tia: tuple[str, str] | None = None) -> list[str]:
        """Source resistors, wires, devices and TIAs: ``tia`` (comment, instance), default
        :meth:`readout_tia` (a transient gives its op-amp macro-model here)."""
        p, n_phys = self.params, len(self.layout)
        lines = []
        if p.r_source_ohm > 0:
            lines.append("* driver output resistance")
            lines += [f"Rs{r} d{r} {self.row_node(r, 0)} {_fmt(p.r_source_ohm)}" for r in range(self.rows)]
        if self.wires:
            lines.append("* row wire segments")
            lines += [f"Rwr{r}_{j} {self.row_node(r, j)} {self.row_node(r, j + 1)} {_fmt(p.r_wire_ohm)}"
                      for r in range(self.rows) for j in range(n_phys - 1)]
        lines += self.cell_lines()
        if self.wires:
            lines.append("* column wire segments (the last one reaches the TIA)")
            for j in range(n_phys):
                for r in range(self.rows):
                    nxt = self.col_node(r + 1, j) if r + 1 < self.rows else self.bottom_node(j)
                    lines.append(f"Rwc{j}_{r} {self.col_node(r, j)} {nxt} {_fmt(p.r_wire_ohm)}")
        comment, instance = tia or self.readout_tia()
        lines.append(comment)
        for j, (side, c) in enumerate(self.layout):
            what = "reference column" if side == "ref" else f"weight column {self.c0 + c} {SIDE_NAMES[side]}"
            lines.append(f"Xt{j} {self.bottom_node(j)} o{j} {instance} $ {what}")
        return lines

    def where(self, r: int, side: str, c: int) -> str:
        """Comment naming a cell: layer, tile, row, column, weight and side."""
        if side == "ref":
            return f"{self.layer.name} tile({self.rt},{self.ct}) row {self.r0 + r} reference column"
        w = int(self.layer.weight[self.r0 + r, self.c0 + c])
        return (f"{self.layer.name} tile({self.rt},{self.ct}) row {self.r0 + r} col {self.c0 + c} "
                f"w={w:+d} {SIDE_NAMES[side]}")

    def cell_lines(self) -> list[str]:
        """One device (and, for 1T1R, its access transistor) per cell."""
        p = self.params
        if p.cell == "1t1r":
            return self._one_t_one_r_lines()
        if p.cell == "sinh":
            head = ("* RRAM cells (sinh read I-V): Xd_<row>_<physical column> row-node column-node memristor_sinh "
                    "r=<ohm at V_read>")
            extra = f" v0={_fmt(p.sinh_v0_v)} vread={_fmt(p.v_read_v)}"
            model = "memristor_sinh"
        else:
            head = "* memristors: Xd_<row>_<physical column> row-node column-node memristor_read r=<ohm>"
            extra, model = "", "memristor_read"
        lines = [head]
        for r in range(self.rows):
            for j, (side, c) in enumerate(self.layout):
                lines.append(f"Xd_{r}_{j} {self.row_node(r, j)} {self.col_node(r, j)} {model} "
                             f"r={_fmt(self.r_phys[r, j])}{extra} $ {self.where(r, side, c)}")
        return lines

    def _one_t_one_r_lines(self) -> list[str]:
        p = self.params
        mismatch = self.dvth is not None and bool(p.sigma_vth_v)
        lines = [f"* 1T1R cells: device Xd_<row>_<col> from the row node to m<row>_<col>, then access transistor "
                 f"Xa_<row>_<col> ({DEVICE} W={p.access_w_um!r} L={p.access_l_um!r} um, {p.corner} corner) to the "
                 "column node; body at 0 V",
                 f"Vwl wl 0 DC {_fmt(p.v_wordline_v)} $ word line (every access transistor on during a read)"]
        if mismatch:
            lines.append("* threshold mismatch: Vg_<row>_<col> puts the gate at V(wl) - dVth (gate-referred offset)")
        for r in range(self.rows):
            for j, (side, c) in enumerate(self.layout):
                gate = f"g{r}_{j}" if mismatch else "wl"
                lines.append(f"Xd_{r}_{j} {self.row_node(r, j)} m{r}_{j} memristor_read r={_fmt(self.r_phys[r, j])} "
                             f"$ {self.where(r, side, c)}")
                if mismatch:
                    assert self.dvth is not None  # mismatch implies per-cell offsets
                    lines.append(f"Vg_{r}_{j} wl {gate} DC {_fmt(self.dvth[r, j])}")
                lines.append(f"Xa_{r}_{j} m{r}_{j} {gate} {self.col_node(r, j)} 0 {DEVICE} "
                             f"w={p.access_w_um!r} l={p.access_l_um!r}")
        return lines

    def header(self, chip: Chip) -> list[str]:
        t = self.layer.tiling
        assert t is not None  # memristive layers are tiled
        chip_desc = ", ".join(f"{k}={v}" for k, v in chip.describe().items())
        return [
            f"* weight rows {self.r0}..{self.r1 - 1} on tile rows 0..{self.rows - 1} of {t.tile_rows}; "
            f"weight columns {self.c0}..{self.c1 - 1} on tile columns 0..{self.c1 - self.c0 - 1} of {t.tile_cols}",
            f"* padding (not emitted): {t.tile_rows - self.rows} rows, {t.tile_cols - (self.c1 - self.c0)} columns",
            f"* physical columns in layout order: {len(self.layout)} ({chip.encoding} encoding)",
            f"* chip: {chip_desc}",
        ]


def _includes(chip: Chip) -> list[str]:
    """Model libraries (and, for nonlinear cells, tight Newton tolerances) of a top-level netlist."""
    libs = {"linear": "memristor.lib", "sinh": "rram_sinh.lib", "1t1r": "memristor.lib"}
    lines = [f".include lib/{libs[chip.params.cell]}", ".include lib/tia.lib"]
    if chip.params.cell == "1t1r":
        lines.insert(0, f".include lib/{include_name(chip.params.corner)}")
    if not chip.cell.linear:
        lines.append(NONLINEAR_OPTIONS)
    return lines


def _ports(tile: TileCircuit) -> list[str]:
    return [tile.port(r) for r in range(tile.rows)] + [f"o{j}" for j in range(len(tile.layout))]


def tile_subckt(model: CompiledModel, chip: Chip, index: int, rt: int, ct: int) -> str:
    """The ``.sub`` text of a tile: its circuit as a subcircuit (ports: row inputs, TIA outputs)."""
    tile = TileCircuit(model, chip, index, rt, ct)
    name = tile_subckt_name(tile.layer, rt, ct)
    lines = [f"* bmcnn-hw crossbar tile: layer {tile.layer.name} ({tile.layer.kind}), row tile {rt}, column tile {ct}"]
    lines += tile.header(chip)
    lines += [f"* ports: {tile.rows} row inputs, then {len(tile.layout)} TIA outputs",
              f".subckt {name} {' '.join(_ports(tile))}"] + tile.body() + [f".ends {name}"]
    return "\n".join(lines) + "\n"


def tile_netlist(model: CompiledModel, chip: Chip, index: int, rt: int, ct: int) -> str:
    """The SPICE netlist text of tile (rt, ct) of layer ``index``: its subcircuit and row drivers."""
    tile = TileCircuit(model, chip, index, rt, ct)
    name = tile_subckt_name(tile.layer, rt, ct)
    lines = [f"* bmcnn-hw tile netlist: layer {tile.layer.name}, row tile {rt}, column tile {ct} "
             f"(circuit in {name}.sub)"] + _includes(chip) + [f".include {name}.sub"]
    lines.append("* row drivers (0 V, V_read or -V_read; changed with `alter` between reads)")
    lines += [f"Vr{r} in{r} 0 DC 0" for r in range(tile.rows)]
    nodes = [f"in{r}" for r in range(tile.rows)] + [f"o{j}" for j in range(len(tile.layout))]
    lines += [f"Xtile {' '.join(nodes)} {name}",
              "* `ngspice -b` solves this operating point (all rows at 0 V until altered)", ".op", ".end"]
    return "\n".join(lines) + "\n"


def layer_top_netlist(model: CompiledModel, chip: Chip, index: int) -> str:
    """A netlist of a whole layer: every tile subcircuit on the shared layer inputs."""
    layer: CompiledLayer = model.layers[index]
    t = layer.tiling
    assert t is not None  # memristive layers are tiled
    lines = [f"* bmcnn-hw layer top: {layer.name} ({layer.kind}), {t.n_row_tiles} x {t.n_col_tiles} tiles",
             f"* inputs in0..in{layer.rows - 1} drive every column tile of their row tile; tile outputs are",
             "* TIA voltages out_<rt>_<ct>_<physical column>; accumulation across tiles is digital"] + _includes(chip)
    instances = []
    for rt in range(t.n_row_tiles):
        for ct in range(t.n_col_tiles):
            tile = TileCircuit(model, chip, index, rt, ct)
            name = tile_subckt_name(layer, rt, ct)
            lines.append(f".include {name}.sub")
            nodes = [f"in{tile.r0 + r}" for r in range(tile.rows)] + \
                    [f"out_{rt}_{ct}_{j}" for j in range(len(tile.layout))]
            instances.append(f"X{name} {' '.join(nodes)} {name}")
    lines.append("* layer inputs")
    lines += [f"Vin{k} in{k} 0 DC 0" for k in range(layer.rows)]
    lines += instances + [".end"]
    return "\n".join(lines) + "\n"


def copy_model_libs(chip: Chip, lib_dir: Path) -> list[Path]:
    """Copy the model libraries a netlist for ``chip`` includes into ``lib_dir``; returns the copies."""
    lib_dir.mkdir(parents=True, exist_ok=True)
    sources = [spice_models_dir() / name for name in MODEL_LIBS]
    if chip.params.cell == "1t1r":
        sources.append(model_include(chip.params.corner))  # verified against the cache manifest
    for source in sources:
        shutil.copyfile(source, lib_dir / source.name)
    return [lib_dir / source.name for source in sources]


def write_netlists(model: CompiledModel, chip: Chip, out_dir: Path) -> dict[str, str]:
    """Write every tile subcircuit and netlist, each layer's top and the model libraries under ``out_dir``.

    Returns:
        relative path (from ``out_dir``'s parent) -> SHA-256, for the build manifest.
    """
    out_dir = Path(out_dir)
    files = {}
    for copied in copy_model_libs(chip, out_dir / "lib"):
        files[f"{out_dir.name}/lib/{copied.name}"] = sha256_file(copied)
    for i, layer in enumerate(model.layers):
        if layer.digital:
            continue
        texts = {layer_top_name(layer): layer_top_netlist(model, chip, i)}
        assert layer.tiling is not None  # memristive layers are tiled
        for rt in range(layer.tiling.n_row_tiles):
            for ct in range(layer.tiling.n_col_tiles):
                texts[f"{tile_subckt_name(layer, rt, ct)}.sub"] = tile_subckt(model, chip, i, rt, ct)
                texts[tile_netlist_name(layer, rt, ct)] = tile_netlist(model, chip, i, rt, ct)
        for name, text in texts.items():
            write_text_atomic(out_dir / name, text)
            files[f"{out_dir.name}/{name}"] = sha256_file(out_dir / name)
    return files
