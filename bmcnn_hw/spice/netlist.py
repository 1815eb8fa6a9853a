"""Netlist writer for crossbar tiles (differential pairs, TIA-held columns).

Netlists are deterministic text: the same model, chip and tile give the same
bytes. Every device line ends with a comment naming layer, tile, row, column,
weight and side. Only the rows and columns a layer uses are emitted; padding rows
are driven at 0 V and padding columns are never read, so with ideal wires they
are electrically inert (the header records the padding).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..artefact import CompiledLayer, CompiledModel
from ..golden.chip import Chip
from ..io_utils import sha256_file, write_text_atomic

MODEL_LIBS = ("memristor.lib", "tia.lib")


def spice_models_dir() -> Path:
    """The repository's ``spice_models/`` directory."""
    return Path(__file__).resolve().parents[2] / "spice_models"


def tile_netlist_name(layer: CompiledLayer, rt: int, ct: int) -> str:
    """File name of a tile netlist, e.g. ``conv0_r0_c0.cir``."""
    return f"{layer.name}_r{rt}_c{ct}.cir"


def sense_branch(side: str, col: int) -> str:
    """ngspice vector holding the current of G+ (side 'p') or G- (side 'm') column ``col``."""
    return f"v.xt{side}{col}.vsense#branch"


def tile_netlist(model: CompiledModel, chip: Chip, index: int, rt: int, ct: int) -> str:
    """The SPICE netlist text of tile (rt, ct) of layer ``index`` on ``chip``."""
    layer = model.layers[index]
    t = layer.tiling
    r0, r1 = t.row_range(rt, layer.rows)
    c0, c1 = t.col_range(ct, layer.cols)
    devices = chip.tiles[(index, rt, ct)]
    rf = model.hardware.readout.tia_rf_ohm
    chip_desc = ", ".join(f"{k}={v}" for k, v in chip.describe().items())
    lines = [
        f"* bmcnn-hw crossbar tile: layer {layer.name} ({layer.kind}), row tile {rt}, column tile {ct}",
        f"* weight rows {r0}..{r1 - 1} on tile rows 0..{r1 - r0 - 1} of {t.tile_rows}; "
        f"weight columns {c0}..{c1 - 1} on tile columns 0..{c1 - c0 - 1} of {t.tile_cols}",
        f"* padding (inert with ideal wires, not emitted): {t.tile_rows - (r1 - r0)} rows, "
        f"{t.tile_cols - (c1 - c0)} columns",
        "* encoding: differential pair per weight, w=+1 -> (G+ on, G- off), w=-1 -> (G+ off, G- on)",
        f"* chip: {chip_desc}",
        ".include lib/memristor.lib",
        ".include lib/tia.lib",
        "* row drivers (0 V or V_read; changed with `alter` between reads)",
    ]
    lines += [f"Vr{r} r{r} 0 DC 0" for r in range(r1 - r0)]
    lines.append("* memristors: X<side>_<row>_<col> row column memristor_read r=<ohm>")
    for r in range(r1 - r0):
        for c in range(c1 - c0):
            w = int(layer.weight[r0 + r, c0 + c])
            where = f"{layer.name} tile({rt},{ct}) row {r0 + r} col {c0 + c} w={w:+d}"
            lines.append(f"Xp_{r}_{c} r{r} cp{c} memristor_read r={float(devices.r_plus[r, c])!r} $ {where} G+")
            lines.append(f"Xm_{r}_{c} r{r} cm{c} memristor_read r={float(devices.r_minus[r, c])!r} $ {where} G-")
    lines.append("* column readout: each column held at virtual ground by an ideal TIA")
    for c in range(c1 - c0):
        lines.append(f"Xtp{c} cp{c} op{c} tia_ideal rf={rf!r} $ weight column {c0 + c} G+")
        lines.append(f"Xtm{c} cm{c} om{c} tia_ideal rf={rf!r} $ weight column {c0 + c} G-")
    lines.append(".end")
    return "\n".join(lines) + "\n"


def write_netlists(model: CompiledModel, chip: Chip, out_dir: Path) -> dict[str, str]:
    """Write every tile netlist and the model libraries under ``out_dir``.

    Returns:
        relative path (from ``out_dir``'s parent) -> SHA-256, for the build manifest.
    """
    out_dir = Path(out_dir)
    lib_dir = out_dir / "lib"
    lib_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in MODEL_LIBS:
        shutil.copyfile(spice_models_dir() / name, lib_dir / name)
        files[f"{out_dir.name}/lib/{name}"] = sha256_file(lib_dir / name)
    for i, layer in enumerate(model.layers):
        for rt in range(layer.tiling.n_row_tiles):
            for ct in range(layer.tiling.n_col_tiles):
                path = out_dir / tile_netlist_name(layer, rt, ct)
                write_text_atomic(path, tile_netlist(model, chip, i, rt, ct))
                files[f"{out_dir.name}/{path.name}"] = sha256_file(path)
    return files
