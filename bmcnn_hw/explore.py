"""``bmcnn-hw explore``: accuracy and PPA over a grid of design points, with Pareto plots.

The grid file (TOML) lists the axes and how each point is measured::

    [axes]                                  # every combination is one design point
    tile = ["64x64", "128x128"]
    fit_tiles = [false, true]               # compile --fit-tiles (tiles no larger than their layer)
    adc_bits = [0, 5]                       # 0 = the exact width (for adc_range)
    adc_range = ["rows", "weights"]         # compile --adc-range (what a derived width covers)
    device = ["ideal", "rram-1t1r-sky130-hr"]
    encoding = ["differential"]
    clock_gating = [false, true]            # compile --clock-gating (gated periphery registers)
    columns_per_adc = [1, 16]               # compile --columns-per-adc (ADCs shared through a column mux)
    skip_zero_reads = [false, true, "auto"] # compile --skip-zero-reads (all-zero reads not performed)
    sense_layers = ["", "auto"]             # compile --sense-layers (read-out adc | sense amplifiers)
    columns_per_comparator = [0, 8]         # compile --columns-per-comparator (0: as columns_per_adc)
    rails = [false, true]                   # TIA rails at +-0.9 V, R_f sized (--v-swing 0.9 --tia-rf auto)
    hardwired_thresholds = [false, true]    # compile --hardwired-thresholds (theta, flip in logic)
    [accuracy]                              # golden physics on sampled chips
    sigma = 0.1                             # relative spread of R_on and R_off of each chip
    chips = 3                               # chip k has seed k
    images = 1000                           # first N test images
    calib = 2048                            # guarded tuning of every chip on the first N training
                                            # images (0: untuned); fronts rank the tuned accuracy
    [ppa]                                   # bmcnn-hw ppa on each point's build
    images = 5
    digital = true                          # Yosys + gate-level activity + OpenSTA
    activity_beats = 5000

Every point compiles the checkpoint into ``OUT/points/<label>/build`` and runs ``ppa`` on it;
``result.json``, written last, marks it finished. A re-run into the same OUT (after an
interruption, or with a grid that grew) reuses every finished point whose checkpoint, settings
and test images are unchanged and measures the rest afresh, removing their partial directories.
Points run on a local process pool (one point per worker) or on a Dask cluster.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import shutil
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np

from .config import AdcRange, CrossbarGeometry, DigitalParams, Encoding, HardwareConfig
from .errors import ConfigError
from .golden.chip import SKY130_SWING_V, Chip, check_cell_geometry, sized_readout
from .golden.integer import run_integer
from .io_utils import read_toml, sha256_file, write_atomic_bytes, write_json_atomic, write_text_atomic
from .parallel import run_jobs
from .ppa.summary import si_units
from .presets import get_preset
from .progress import say
from .records import fingerprint
from .sweep import chip_accuracies
from .tables import check_table

AXES: dict[str, Any] = {
    "tile": list[str], "fit_tiles": list[bool], "adc_bits": list[int],
    "adc_range": list[AdcRange], "device": list[str], "encoding": list[Encoding],
    "clock_gating": list[bool], "columns_per_adc": list[int],
    "skip_zero_reads": list[bool | str], "sense_layers": list[str], "columns_per_comparator": list[int],
    "rails": list[bool], "hardwired_thresholds": list[bool]}
"""The axes of a grid file (``[axes]``) and their types: each a list of the values to try."""
AXIS_DEFAULTS = {"tile": "128x128", "fit_tiles": False, "adc_bits": 0, "adc_range": "rows", "device": "ideal",
                 "encoding": "differential", "clock_gating": False, "columns_per_adc": 1, "skip_zero_reads": False,
                 "sense_layers": "", "columns_per_comparator": 0, "rails": False, "hardwired_thresholds": False}
"""The value of an axis the grid leaves out."""
SECTIONS: dict[str, dict[str, type]] = {"accuracy": {"sigma": float, "chips": int, "images": int, "calib": int},
                                        "ppa": {"images": int, "digital": bool, "activity_beats": int}}
DEFAULTS: dict[str, dict] = {"accuracy": {"sigma": 0.0, "chips": 1, "images": 1000, "calib": 0},
                             "ppa": {"images": 5, "digital": True, "activity_beats": 5000}}
MAY_BE_ZERO = {"calib"}
"""Whole-number settings for which 0 means "none" (every other whole number is at least 1)."""
_WORKER: dict = {}


def load_grid(path: Path) -> dict:
    """The grid file: axes (lists) and the accuracy and ppa settings, checked.

    Raises:
        ConfigError: naming the file and the field.
    """
    data = check_table(read_toml(path), {"axes": dict} | dict.fromkeys(SECTIONS, dict), str(path), required=("axes",))
    axes = check_table(data["axes"], AXES, f"{path}: [axes]")
    if not axes or not all(axes.values()):
        raise ConfigError(f"{path}: [axes] must list at least one of {', '.join(AXES)}, each with one value or more")
    grid: dict = {"axes": {name: axes.get(name, [AXIS_DEFAULTS[name]]) for name in AXES}}
    for section, fields in SECTIONS.items():
        table = {**DEFAULTS[section], **check_table(data.get(section, {}), fields, f"{path}: [{section}]")}
        for key, value in table.items():
            at_least = 1 if fields[key] is int and key not in MAY_BE_ZERO else 0
            if fields[key] is not bool and value < at_least:
                raise ConfigError(f"{path}: [{section}]: {key} = {value!r} must be >= {at_least}"
                                  + (" (0: untuned)" if key in MAY_BE_ZERO else ""))
        grid[section] = table
    for device in grid["axes"]["device"]:
        get_preset(device)
    for tile in grid["axes"]["tile"]:
        CrossbarGeometry.parse(tile)
    if any(share < 1 for share in grid["axes"]["columns_per_adc"]):
        raise ConfigError(f"{path}: [axes] columns_per_adc must be whole numbers >= 1")
    if any(share < 0 for share in grid["axes"]["columns_per_comparator"]):
        raise ConfigError(f"{path}: [axes] columns_per_comparator must be whole numbers >= 0 (0: as columns_per_adc)")
    return grid


def design_points(grid: dict) -> list[dict]:
    """Every combination of the axes, in file order."""
    names = list(AXES)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(grid["axes"][n] for n in names))]


def point_label(point: dict) -> str:
    """A directory name for a point, e.g. ``128x128_adc0_ideal_differential`` (``128x128-fit`` with
    fitted tiles, ``adc0w`` and ``adc0c`` for derived ADC widths from the weights or per-column
    windows, ``_gated``, ``_cpa16`` ``_skip0`` (``_skip0-auto``, ``_skip0-conv0``) and
    ``_sense-auto`` added for clock gating, 16 columns per ADC, skipped all-zero reads (in every
    layer, the layers read more than once per image, conv0) and sense read-out; ``_cpc8``,
    ``_rails`` and ``_hwtheta`` for 8 columns per comparator, TIA rails and hard-wired thresholds).
    Distinct points get distinct names."""
    suffix = {"weights": "w", "columns": "c"}.get(point.get("adc_range", "rows"), "")
    bits = f"{point['adc_bits']}{suffix}"
    label = f"{point['tile']}{'-fit' if point.get('fit_tiles') else ''}_adc{bits}_{point['device']}_{point['encoding']}"
    label += "_gated" if point.get("clock_gating") else ""
    label += f"_cpa{point['columns_per_adc']}" if point.get("columns_per_adc", 1) != 1 else ""
    skip = point.get("skip_zero_reads", False)
    label += "_skip0" + ("" if skip is True else f"-{str(skip).replace(',', '+')}") if skip else ""
    label += f"_sense-{point['sense_layers'].replace(',', '+')}" if point.get("sense_layers") else ""
    label += f"_cpc{point['columns_per_comparator']}" if point.get("columns_per_comparator") else ""
    label += "_rails" if point.get("rails") else ""
    label += "_hwtheta" if point.get("hardwired_thresholds") else ""
    return label.replace("/", "-")


def point_hardware(point: dict) -> HardwareConfig:
    """The HardwareConfig of a point (TIA rails and R_f sized as ``compile`` sizes them; ``rails``:
    +-0.9 V whatever the cell, as ``--v-swing 0.9 --tia-rf auto``)."""
    device = get_preset(point["device"])
    geometry = CrossbarGeometry.parse(point["tile"], encoding=point["encoding"],
                                      fit_tiles=point.get("fit_tiles", False))
    check_cell_geometry(device, geometry)
    swing = SKY130_SWING_V if point.get("rails") else None
    readout = dataclasses.replace(sized_readout(device, geometry, point["adc_bits"], v_swing_v=swing),
                                  columns_per_adc=point.get("columns_per_adc", 1),
                                  adc_range=point.get("adc_range", "rows"),
                                  skip_zero_reads=point.get("skip_zero_reads", False),
                                  sense_layers=point.get("sense_layers", ""),
                                  columns_per_comparator=point.get("columns_per_comparator", 0))
    return HardwareConfig(device=device, geometry=geometry, readout=readout,
                          digital=DigitalParams(clock_gating=point.get("clock_gating", False),
                                                hardwired_thresholds=point.get("hardwired_thresholds", False)))


def _init(checkpoint: str, out_dir: str, grid: dict, context: str, images: np.ndarray, labels: np.ndarray,
          calib: tuple[np.ndarray, np.ndarray] | None) -> None:
    _WORKER.update(checkpoint=Path(checkpoint), out=Path(out_dir), grid=grid, context=context, images=images,
                   labels=labels, calib=calib)


def _accuracy(model, grid: dict, images: np.ndarray, labels: np.ndarray,
              calib: tuple[np.ndarray, np.ndarray] | None) -> dict:
    """Golden accuracy and the accuracies of the sampled chips: ``chips``, ``mean`` and ``std``
    are the tuned ones when ``calib`` (images, labels) is given (``tuned`` true; the untuned ones
    under ``untuned_*``)."""
    acc = grid["accuracy"]
    n = acc["images"]
    golden = float((run_integer(model, images[:n]).predictions == labels[:n]).mean())
    device = dataclasses.replace(model.hardware.device, sigma_on_rel=acc["sigma"], sigma_off_rel=acc["sigma"])
    runs = [chip_accuracies(model, Chip(model, device, seed), images[:n], labels[:n], *(calib or (None, None)))
            for seed in range(acc["chips"])]
    ranked, untuned = [run[-1] for run in runs], [run[0] for run in runs]
    result = {"golden": golden, "chips": ranked, "mean": float(np.mean(ranked)), "std": float(np.std(ranked)),
              "tuned": calib is not None}
    if result["tuned"]:
        result |= {"untuned_chips": untuned, "untuned_mean": float(np.mean(untuned)),
                   "untuned_std": float(np.std(untuned))}
    return result


def run_design_point(point: dict) -> dict:
    """Compile, measure accuracy and PPA of one point (in a worker)."""
    from .build import build
    from .ppa.flow import run_ppa
    from .ppa.records import PpaOptions

    started = time.perf_counter()
    grid, work = _WORKER["grid"], _WORKER["out"] / "points" / point_label(point)
    model = build(_WORKER["checkpoint"], work / "build", point_hardware(point))
    accuracy = _accuracy(model, grid, _WORKER["images"], _WORKER["labels"], _WORKER["calib"])
    ppa = grid["ppa"]
    options = PpaOptions(digital=ppa["digital"], activity_beats=ppa["activity_beats"], engine="auto")
    report = run_ppa(work / "build", _WORKER["images"][: ppa["images"]], work / "ppa", options, progress=False)
    write_json_atomic(work / "ppa.json", report)
    t = report["totals"]
    result = {"point": point, "label": point_label(point), "adc_bits": [la.adc_bits for la in model.layers],
              "accuracy": accuracy, "energy_per_inference_j": t["energy_per_inference_j"], "area_mm2": t["area_mm2"],
              "latency_s": t["latency_s"], "throughput_inferences_per_s": t["throughput_inferences_per_s"],
              "tops_per_w": t["tops_per_w"], "clock_mhz": report["clock_mhz"], "warnings": report["warnings"],
              "seconds": time.perf_counter() - started}
    key = fingerprint(_WORKER["context"], point)
    write_json_atomic(work / FINISHED, {"key": key, "result": result})  # last: the point is finished
    return result


FINISHED = "result.json"
"""Written last into a point's directory: a point without it is partial and is measured again."""


def explore_context(checkpoint: Path, grid: dict, images: np.ndarray, labels: np.ndarray,
                    calib: tuple[np.ndarray, np.ndarray] | None) -> str:
    """A fingerprint of what every point's result depends on besides the point itself: the
    checkpoint's files, the grid's accuracy and PPA settings, the test images and labels and the
    calibration images and labels (a point's key is ``fingerprint(context, point)``)."""
    files = {p.name: sha256_file(p) for p in sorted(Path(checkpoint).iterdir())
             if p.is_file() and p.name != "train_state.pt"}
    return fingerprint(files, {"accuracy": grid["accuracy"], "ppa": grid["ppa"]}, images, labels, *(calib or ()))


def finished_points(out_dir: Path, points: list[dict], key_of) -> dict[str, dict]:
    """Results of the points finished by an earlier run into ``out_dir`` (same key); the partial
    directories of unfinished points are removed, so that nothing half-written is reused."""
    done = {}
    for point in points:
        work = Path(out_dir) / "points" / point_label(point)
        try:
            record = json.loads((work / FINISHED).read_text())
            if record["key"] == key_of(point):
                done[point_label(point)] = record["result"]
                continue
        except (OSError, ValueError, KeyError, TypeError):
            pass
        if work.exists():
            shutil.rmtree(work)
    return done


def run_explore(checkpoint: Path, grid: dict, test_set, out_dir: Path, *, workers: int = 1,
                scheduler: str | None = None, progress: bool = True, calib_set=None) -> dict:
    """Every design point of ``grid``: accuracy (physics on sampled chips, tuned on the first
    ``[accuracy] calib`` images of ``calib_set`` when that is > 0) and PPA; Pareto flags.

    Raises:
        ConfigError: the grid tunes but ``calib_set`` holds fewer images than it asks for.
    """
    points = design_points(grid)
    for point in points:
        point_hardware(point)  # bad combinations fail before any work
    n = max(grid["accuracy"]["images"], grid["ppa"]["images"])
    images, labels = test_set.images[:n], test_set.labels[:n]
    calib = _calibration(grid, calib_set)
    context = explore_context(checkpoint, grid, images, labels, calib)
    done = finished_points(out_dir, points, lambda p: fingerprint(context, p))
    todo = [p for p in points if point_label(p) not in done]
    if done:
        say(f"explore: {len(done)} of {len(points)} points finished by an earlier run into {out_dir}; reusing them")
    args = (str(Path(checkpoint).resolve()), str(Path(out_dir).resolve()), grid, context, images, labels, calib)
    fresh = run_jobs(run_design_point, todo, _init, args, workers=max(1, min(workers, len(todo))),
                     scheduler=scheduler, shared_from=4, retries=2, progress=progress, desc="explore",
                     unit="point") if todo else []
    measured = dict(zip((point_label(p) for p in todo), fresh, strict=True))
    results = [done.get(point_label(p)) or measured[point_label(p)] for p in points]
    for key in ("energy_per_inference_j", "area_mm2"):
        front = pareto_front([(r["accuracy"]["mean"], r[key]) for r in results])
        for r, on in zip(results, front, strict=True):
            r[f"pareto_{key}"] = on
    return {"checkpoint": str(checkpoint), "grid": grid, "points": results}


def _calibration(grid: dict, calib_set) -> tuple[np.ndarray, np.ndarray] | None:
    """The first ``[accuracy] calib`` images and labels of ``calib_set`` (None when it is 0: untuned)."""
    count = grid["accuracy"]["calib"]
    if not count:
        return None
    if calib_set is None or len(calib_set.images) < count:
        held = 0 if calib_set is None else len(calib_set.images)
        raise ConfigError(f"[accuracy] calib = {count}: the calibration (training) set holds {held:,} images")
    return calib_set.images[:count], calib_set.labels[:count]


def pareto_front(points: list[tuple[float, float]]) -> list[bool]:
    """For (accuracy, cost) pairs: True where no other point is as accurate and cheaper, or better and as cheap."""
    flags = []
    for a, c in points:
        dominated = any((a2 >= a and c2 <= c) and (a2 > a or c2 < c) for a2, c2 in points)
        flags.append(not dominated)
    return flags


def explore_markdown(result: dict) -> str:
    """The table of design points (Pareto points marked)."""
    acc = result["grid"]["accuracy"]
    tuned = acc.get("calib", 0) > 0
    lines = ["# Design-space exploration", "",
             f"Accuracy: physics executor on {acc['chips']} sampled chip(s) (sigma {acc['sigma']:g}, seeds 0..), "
             f"first {acc['images']} test images, {_tuning_words(acc)}; PPA: `bmcnn-hw ppa` on each point's build"
             f"{'' if result['grid']['ppa']['digital'] else ' with the digital periphery LEFT OUT (digital = false)'}. "
             "P: on the Pareto front of accuracy vs energy (E) or area (A).", "",
             f"| point | ADC bits | accuracy (golden) | accuracy (chips{', tuned' if tuned else ''}) | "
             f"{'accuracy (chips, untuned) | ' if tuned else ''}energy/inference | area | latency | TOPS/W | Pareto |",
             "|---|---|---|---|" + ("---|" if tuned else "") + "---|---|---|---|---|"]
    for r in result["points"]:
        a = r["accuracy"]
        pareto = "".join(k for k, key in (("E", "pareto_energy_per_inference_j"), ("A", "pareto_area_mm2")) if r[key])
        energy, latency = si_units(r["energy_per_inference_j"], "J"), si_units(r["latency_s"], "s")
        untuned = f"{100 * a['untuned_mean']:.2f} +- {100 * a['untuned_std']:.2f} % | " if tuned else ""
        lines.append(f"| {r['label']} | {','.join(map(str, r['adc_bits']))} | {100 * a['golden']:.2f} % | "
                     f"{100 * a['mean']:.2f} +- {100 * a['std']:.2f} % | {untuned}{energy} | "
                     f"{r['area_mm2']:.4g} mm^2 | {latency} | {r['tops_per_w']:.3g} | {pareto or '-'} |")
    return "\n".join(lines) + "\n"


def distinguishing_labels(labels: list[str]) -> tuple[list[str], str]:
    """Each point's label without the ``_``-separated parts every point shares (what tells the
    points apart, for the plot), and the shared parts."""
    parts = [label.split("_") for label in labels]
    shared = [p for p in parts[0] if all(p in other for other in parts)] if len(parts) > 1 else []
    names = [" ".join(p for p in label if p not in shared) or " ".join(label) for label in parts]
    return names, " ".join(shared)


def _tuning_words(acc: dict) -> str:
    """How the chips' accuracy was taken: untuned, or after guarded tuning on N training images."""
    calib = acc.get("calib", 0)
    return f"after guarded tuning on {calib:,} calibration (training) images" if calib else "untuned"


def plot_pareto(result: dict) -> bytes:
    """Accuracy vs energy per inference and vs area, Pareto fronts drawn: PNG bytes."""
    from .plotting import pyplot

    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    points, acc = result["points"], result["grid"]["accuracy"]
    names, common = distinguishing_labels([r["label"] for r in points])
    for ax, key, scale, label in ((axes[0], "energy_per_inference_j", 1e6, "energy per inference (uJ)"),
                                  (axes[1], "area_mm2", 1.0, "area (mm$^2$)")):
        for r, name in zip(points, names, strict=True):
            ax.scatter(r[key] * scale, 100 * r["accuracy"]["mean"], color="C1" if r[f"pareto_{key}"] else "C0")
            ax.annotate(name, (r[key] * scale, 100 * r["accuracy"]["mean"]), fontsize=6, rotation=20,
                        textcoords="offset points", xytext=(3, 3))
        front = sorted((r[key] * scale, 100 * r["accuracy"]["mean"]) for r in points if r[f"pareto_{key}"])
        ax.plot(*zip(*front, strict=True), color="C1", linestyle="--", marker="o", label=f"Pareto front "
                f"({len(front)} point{'s' if len(front) != 1 else ''})")
        ax.set_xlabel(label)
        ax.set_ylabel(f"test accuracy on sampled chips{', tuned' if acc.get('calib', 0) else ''} (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ppa = result["grid"]["ppa"]
    cost = "analog + digital" if ppa["digital"] else "analog only: digital periphery LEFT OUT (grid: digital = false)"
    title = (f"Design-space exploration: {len(points)} points; accuracy on {acc['chips']} chip(s) at sigma "
             f"{acc['sigma']:g}, {acc['images']} images, {_tuning_words(acc)}; energy and area {cost}"
             + (f"; every point: {common}" if common else ""))
    fig.suptitle(textwrap.fill(title, 150), fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return buffer.getvalue()


def write_explore(result: dict, out_dir: Path) -> list[Path]:
    """explore.json, explore.md and explore.png in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "explore.json", out_dir / "explore.md", out_dir / "explore.png"]
    write_json_atomic(paths[0], result)
    write_text_atomic(paths[1], explore_markdown(result))
    write_atomic_bytes(paths[2], plot_pareto(result))
    return paths
