"""Programming map: every physical device of a build's chip, what to program it to, and the
resistance the sampled chip has.

``bmcnn-hw export BUILD --programming map.csv`` writes ``map.csv`` (one row per device, padding
devices and reference columns included) and ``map.json`` beside it (schema, build and chip
identity, device parameters, SHA-256 of the CSV). :func:`load_programming_map` reads both back
into a :class:`~bmcnn_hw.golden.chip.Chip` with exactly those devices, so a map measured on a
real chip (its ``sampled_ohm`` column replaced by read-back values) can drive the physics model
and the netlists.

Columns (:data:`COLUMNS`): ``layer`` (name), ``tile_row``/``tile_col`` (tile position),
``row`` (physical row in the tile), ``column`` (physical column in the tile, layout order:
G+/G- pairs interleaved, or the weight columns then the reference column), ``weight_row``/
``weight_col`` (position in the layer's weight matrix; -1 for padding and the reference column),
``weight`` (+1, -1; 0 for padding and reference), ``side`` (G+, G-, ref), ``state`` (ON, OFF,
REF), ``target_ohm`` (nominal resistance to program), ``sampled_ohm`` (the chip's device),
``dvth_v`` (1T1R access transistor threshold shift; empty without transistors).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from .artefact import CompiledModel
from .errors import ArtefactError, DataError
from .golden.chip import Chip, TileDevices, TileKey
from .golden.device_map import padded_tile, physical_columns, reference_resistance
from .io_utils import sha256_file, write_atomic_bytes, write_json_atomic

SCHEMA = "bmcnn-hw/programming-map"
SCHEMA_VERSION = 1
COLUMNS = ("layer", "tile_row", "tile_col", "row", "column", "weight_row", "weight_col", "weight", "side", "state",
           "target_ohm", "sampled_ohm", "dvth_v")
"""The CSV header, in order."""
SIDES = {"p": "G+", "m": "G-", "ref": "ref"}
TileArrays = dict[str, "np.ndarray | None"]
"""One tile's device arrays while a map is read: p, m, ref (and dvth_p, dvth_m for 1T1R)."""


def header_path(csv_path: Path) -> Path:
    """The JSON header beside a map: ``map.csv`` -> ``map.json``."""
    return Path(csv_path).with_suffix(".json")


def _tile_rows(model: CompiledModel, chip: Chip, index: int, rt: int, ct: int) -> list[list[Any]]:
    """The map rows of one tile, row-major over (physical row, physical column)."""
    layer = model.layers[index]
    t = layer.tiling
    assert t is not None  # memristive layers are tiled
    devices = chip.tiles[(index, rt, ct)]
    weights = padded_tile(layer, rt, ct)
    r0, r1 = t.row_range(rt, layer.rows)
    c0, c1 = t.col_range(ct, layer.cols)
    p = chip.params
    r_ref = reference_resistance(p.r_on_ohm, p.r_off_ohm)
    layout = physical_columns(chip.encoding, t.tile_cols)
    rows = []
    for r in range(t.tile_rows):
        used_row = r < r1 - r0
        for j, (side, c) in enumerate(layout):
            if side == "ref":
                assert devices.r_ref is not None  # the reference encoding has a reference column
                rows.append([layer.name, rt, ct, r, j, -1, -1, 0, "ref", "REF", r_ref, float(devices.r_ref[r]), ""])
                continue
            w = int(weights[r, c])
            on = w > 0 if side == "p" else w < 0
            sampled = devices.r_plus if side == "p" else devices.r_minus
            dvth = devices.dvth_plus if side == "p" else devices.dvth_minus
            assert sampled is not None
            used = used_row and c < c1 - c0
            rows.append([layer.name, rt, ct, r, j, r0 + r if used else -1, c0 + c if used else -1, w, SIDES[side],
                         "ON" if on else "OFF", p.r_on_ohm if on else p.r_off_ohm, float(sampled[r, c]),
                         "" if dvth is None else float(dvth[r, c])])
    return rows


def map_header(model: CompiledModel, chip: Chip, build_dir: Path, devices: int) -> dict[str, Any]:
    """The JSON header of a map (everything but the CSV's hash)."""
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "build": str(build_dir),
            "manifest_sha256": sha256_file(Path(build_dir) / "manifest.json"), "chip": chip.describe(),
            "devices": devices, "columns": list(COLUMNS),
            "tiles": [{"layer": model.layers[i].name, "tile_row": rt, "tile_col": ct}
                      for (i, rt, ct) in sorted(chip.tiles)]}


def write_programming_map(model: CompiledModel, chip: Chip, build_dir: Path, csv_path: Path) -> dict[str, Any]:
    """Write ``csv_path`` and its JSON header (:func:`header_path`); returns the header.

    Both are written atomically, the header last, so a map without a header is incomplete.
    Resistances are written with Python's shortest round-trip repr: reading them back gives
    the same floats.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    for i, rt, ct in sorted(chip.tiles):
        rows = _tile_rows(model, chip, i, rt, ct)
        writer.writerows(rows)
        count += len(rows)
    write_atomic_bytes(Path(csv_path), buffer.getvalue().encode())
    header = {**map_header(model, chip, build_dir, count), "csv_sha256": sha256_file(Path(csv_path))}
    write_json_atomic(header_path(csv_path), header)
    return header


def _read_header(csv_path: Path, build_dir: Path) -> dict[str, Any]:
    path = header_path(csv_path)
    try:
        header = json.loads(path.read_text())
    except OSError:
        raise DataError(f"{path}: missing (the JSON header `bmcnn-hw export` writes beside {csv_path.name})") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("schema") != SCHEMA or header.get("schema_version") != SCHEMA_VERSION:
        raise DataError(f"{path}: not a {SCHEMA} version {SCHEMA_VERSION} header")
    if header.get("manifest_sha256") != sha256_file(Path(build_dir) / "manifest.json"):
        raise ArtefactError(f"{path}: the map is for another build (its manifest SHA-256 differs from "
                            f"{Path(build_dir) / 'manifest.json'})")
    if header.get("csv_sha256") != sha256_file(csv_path):
        raise DataError(f"{csv_path}: SHA-256 differs from {path.name} (file changed or truncated)")
    return header


def _empty_tiles(model: CompiledModel, chip_encoding: str, has_dvth: bool) -> dict[TileKey, TileArrays]:
    tiles = {}
    for i, layer in enumerate(model.layers):
        if layer.digital:
            continue
        t = layer.tiling
        assert t is not None  # memristive layers are tiled
        shape = (t.tile_rows, t.tile_cols)
        for rt in range(t.n_row_tiles):
            for ct in range(t.n_col_tiles):
                differential = chip_encoding == "differential"
                arrays: TileArrays = {"p": np.full(shape, np.nan),
                                      "m": np.full(shape, np.nan) if differential else None,
                                      "ref": None if differential else np.full(t.tile_rows, np.nan)}
                if has_dvth:
                    arrays["dvth_p"], arrays["dvth_m"] = np.full(shape, np.nan), np.full(shape, np.nan)
                tiles[(i, rt, ct)] = arrays
    return tiles


def load_programming_map(model: CompiledModel, build_dir: Path, csv_path: Path) -> Chip:
    """The Chip whose devices are the map's ``sampled_ohm`` (and ``dvth_v``) values.

    Raises:
        DataError: a missing or malformed map or header (names the file, line and field).
        ArtefactError: the map belongs to another build.
    """
    from .config import DeviceParams

    csv_path = Path(csv_path)
    header = _read_header(csv_path, build_dir)
    described = dict(header["chip"])
    seed, encoding = int(described.pop("seed")), described.pop("encoding")
    described.pop("transistor_model", None)
    params = DeviceParams.from_dict(described, where=str(header_path(csv_path)))
    if encoding != model.hardware.geometry.encoding:
        raise DataError(f"{header_path(csv_path)}: encoding {encoding!r}, the build has "
                        f"{model.hardware.geometry.encoding!r}")
    tiles = _empty_tiles(model, encoding, params.cell == "1t1r")
    names = {layer.name: i for i, layer in enumerate(model.layers)}
    with open(csv_path, newline="") as handle:
        reader = csv.reader(handle)
        if tuple(next(reader, ())) != COLUMNS:
            raise DataError(f"{csv_path}: line 1 must be the header {','.join(COLUMNS)}")
        for line, row in enumerate(reader, start=2):
            _place(tiles, names, row, f"{csv_path}:{line}", encoding)
    devices = {key: _tile_devices(arrays, f"{csv_path}: tile {key}") for key, arrays in tiles.items()}
    return Chip(model, params, seed, devices=devices)


def _place(tiles: dict[TileKey, TileArrays], names: dict[str, int], row: list[str], where: str,
           encoding: str) -> None:
    """Put one CSV row's device into its tile's arrays."""
    if len(row) != len(COLUMNS):
        raise DataError(f"{where}: {len(row)} fields, expected {len(COLUMNS)}")
    try:
        key = (names[row[0]], int(row[1]), int(row[2]))
        r, j, side = int(row[3]), int(row[4]), row[8]
        sampled = float(row[11])
        arrays = tiles[key]
    except (KeyError, ValueError):
        raise DataError(f"{where}: layer, tile, row, column or sampled_ohm is not a device of this build") from None
    if not sampled > 0:
        raise DataError(f"{where}: sampled_ohm must be a positive resistance, not {row[11]!r}")
    index: tuple[int, ...]
    if side == "ref":
        target, index = arrays["ref"], (r,)
    else:
        c = j // 2 if encoding == "differential" else j
        target, index = arrays["p" if side == "G+" else "m"], (r, c)
        dvth = arrays.get("dvth_p" if side == "G+" else "dvth_m")
        if dvth is not None:
            dvth[index] = float(row[12])
    if target is None or side not in SIDES.values():
        raise DataError(f"{where}: side {side!r} does not exist in a {encoding} tile")
    try:
        target[index] = sampled
    except IndexError:
        raise DataError(f"{where}: row {r}, column {j} is outside the tile") from None


def _tile_devices(arrays: TileArrays, where: str) -> TileDevices:
    missing = [name for name, values in arrays.items() if values is not None and np.isnan(values).any()]
    if missing:
        raise DataError(f"{where}: devices missing from the map ({', '.join(missing)})")
    assert arrays["p"] is not None  # every tile has positive devices
    return TileDevices(arrays["p"], arrays["m"], arrays["ref"], arrays.get("dvth_p"), arrays.get("dvth_m"))
