"""Accuracy of compiled builds on the physics executor over a grid of circuit choices.

Axes: build (one per tile size), cell model (linear / sinh / 1T1R, each from its preset),
device design (R_on / R_off), wire resistance per segment, relative sigma of R_on and R_off,
chip seed. Every point samples its chip (seed), fits the tuning registers on the first
``--calib`` training images and reports test accuracy untuned and tuned. Writes
``study.json`` (every point, every setting, the seeds), ``study.md`` (mean +- std over chips)
and ``study.png`` (accuracy vs wire resistance, one panel per cell model).

    python scripts/accuracy_study.py --builds 64=runs/b64,128=runs/b128 --cells linear \\
        --designs 10k=10e3:100e3,100k=100e3:1e6 --wires 0,0.5,1,2.5,5 --sigmas 0 --chips 1 \\
        --images 2000 --out runs/study-wires
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bmcnn_hw.artefact import load_model
from bmcnn_hw.data.mnist import load_mnist
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.golden.crossbar import physics_predictions_shared
from bmcnn_hw.golden.tile_reader import PhysicsReader
from bmcnn_hw.io_utils import write_json_atomic, write_text_atomic
from bmcnn_hw.parallel import single_threaded_pool
from bmcnn_hw.presets import get_preset
from bmcnn_hw.tune import calibrate

CELL_PRESETS = {"linear": "ideal", "sinh": "rram-sinh", "1t1r": "rram-1t1r-sky130"}
_DATA: dict = {}


def _init(data_dir: str, images: int, calib: int, method: str = "lsq") -> None:
    test = load_mnist(Path(data_dir), "test").head(images)
    _DATA.update(test=test, calib=load_mnist(Path(data_dir), "train").head(calib), models={}, method=method)


def device_for(cell: str, r_on: float, r_off: float, r_wire: float, sigma: float):
    """The cell's preset with the design's resistances, the wire resistance and sigma applied."""
    return dataclasses.replace(get_preset(CELL_PRESETS[cell]), r_on_ohm=r_on, r_off_ohm=r_off, r_wire_ohm=r_wire,
                               sigma_on_rel=sigma, sigma_off_rel=sigma)


def run_point(job: dict) -> dict:
    """Accuracy of one sampled chip, untuned and tuned (runs in a worker)."""
    start = time.perf_counter()
    models = _DATA["models"]
    if job["build"] not in models:
        models[job["build"]] = load_model(Path(job["build"]))
    base = models[job["build"]]
    device = device_for(job["cell"], job["r_on"], job["r_off"], job["r_wire"], job["sigma"])
    model = dataclasses.replace(base, hardware=dataclasses.replace(base.hardware, device=device))
    chip = Chip(model, device, job["seed"])
    reader = PhysicsReader(chip)
    calib = _DATA["calib"]
    tuning = calibrate(model, chip, calib.images, reader, calib.labels, _DATA["method"])
    test = _DATA["test"]
    plain, tuned = physics_predictions_shared(model, chip, test.images, [None, tuning.offsets], reader=reader)
    return {**job, "plain": float((plain == test.labels).mean()), "tuned": float((tuned == test.labels).mean()),
            "seconds": round(time.perf_counter() - start, 1)}


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",")]


def _pairs(text: str) -> dict:
    return dict(item.split("=", 1) for item in text.split(","))


def jobs_of(args) -> list[dict]:
    """Every point of the grid, in a fixed order."""
    builds = _pairs(args.builds)
    designs = {name: tuple(float(v) for v in value.split(":")) for name, value in _pairs(args.designs).items()}
    grid = itertools.product(builds.items(), args.cells.split(","), designs.items(), _floats(args.wires),
                             _floats(args.sigmas), range(args.chips))
    return [{"tile": tile, "build": build, "cell": cell, "design": design, "r_on": r_on, "r_off": r_off,
             "r_wire": wire, "sigma": sigma, "seed": args.seed + k}
            for (tile, build), cell, (design, (r_on, r_off)), wire, sigma, k in grid]


def summarise(points: list[dict]) -> list[dict]:
    """Mean and std over chips of every (tile, cell, design, wire, sigma)."""
    keys = ("tile", "cell", "design", "r_wire", "sigma")
    groups: dict = {}
    for p in points:
        groups.setdefault(tuple(p[k] for k in keys), []).append(p)
    rows = []
    for key, members in groups.items():
        row = dict(zip(keys, key, strict=True), chips=len(members))
        for what in ("plain", "tuned"):
            values = np.array([m[what] for m in members])
            row[f"{what}_mean"], row[f"{what}_std"] = float(values.mean()), float(values.std())
        rows.append(row)
    return rows


def markdown(rows: list[dict], meta: dict) -> str:
    """One line per (tile, cell, design, wire, sigma)."""
    lines = [f"Accuracy on {meta['images']} test images ({meta['calib']} calibration images for tuning), "
             f"chips seeds {meta['seed']}..{meta['seed'] + meta['chips'] - 1}, physics executor.", "",
             "| tile | cell | design | wire (ohm/segment) | sigma | untuned | tuned |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['tile']} | {r['cell']} | {r['design']} | {r['r_wire']:g} | {r['sigma']:g} | "
                     f"{100 * r['plain_mean']:.2f} +- {100 * r['plain_std']:.2f} % | "
                     f"{100 * r['tuned_mean']:.2f} +- {100 * r['tuned_std']:.2f} % |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    """Accuracy vs wire resistance (or vs sigma when the wire is fixed), one panel per cell model,
    one line per tile/design/(other axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_key = "r_wire" if len({r["r_wire"] for r in rows}) > 1 else "sigma"
    other = "sigma" if x_key == "r_wire" else "r_wire"
    cells = sorted({r["cell"] for r in rows})
    fig, axes = plt.subplots(1, len(cells), figsize=(5.5 * len(cells), 4), squeeze=False)
    for ax, cell in zip(axes[0], cells, strict=True):
        series: dict = {}
        for r in rows:
            if r["cell"] == cell:
                series.setdefault((r["tile"], r["design"], r[other]), []).append(r)
        for (tile, design, fixed), members in sorted(series.items()):
            members.sort(key=lambda r: r[x_key])
            xs = [m[x_key] for m in members]
            label = f"tile {tile}, {design}" + (f", {other} {fixed:g}" if fixed else "")
            line = ax.errorbar(xs, [100 * m["plain_mean"] for m in members], [100 * m["plain_std"] for m in members],
                               marker="o", capsize=3, label=f"{label}: untuned")
            ax.errorbar(xs, [100 * m["tuned_mean"] for m in members], [100 * m["tuned_std"] for m in members],
                        marker="s", capsize=3, linestyle="--", color=line[0].get_color(), label=f"{label}: tuned")
        ax.set_xlabel("wire resistance per cell segment (ohm)" if x_key == "r_wire"
                      else "relative sigma of R_on, R_off")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{cell} cells")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--builds", required=True, help="LABEL=BUILD_DIR,... (one build per tile size)")
    parser.add_argument("--cells", default="linear", help="comma-separated: linear, sinh, 1t1r")
    parser.add_argument("--designs", default="10k=10e3:100e3", help="NAME=R_ON:R_OFF,... in ohm")
    parser.add_argument("--wires", default="0", help="comma-separated wire resistances per segment (ohm)")
    parser.add_argument("--sigmas", default="0", help="comma-separated relative sigmas of R_on and R_off")
    parser.add_argument("--chips", type=int, default=1, help="chips per point (seeds SEED..SEED+N-1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", type=int, default=2000, help="first N test images")
    parser.add_argument("--calib", type=int, default=256, help="first N training images fit the tuning")
    parser.add_argument("--tuning-method", choices=["lsq", "guarded"], default="lsq",
                        help="lsq (default here: the method the README's wire and cell tables were measured with) "
                             "or guarded (bmcnn-hw's default since; see bmcnn_hw/tune.py)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data-dir", default="../shared/datasets/mnist")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--replot", action="store_true", help="only redraw study.png/study.md from OUT/study.json")
    args = parser.parse_args()
    if args.replot:
        saved = json.loads((args.out / "study.json").read_text())
        write_text_atomic(args.out / "study.md", markdown(saved["summary"], saved))
        plot(saved["summary"], args.out / "study.png")
        return
    jobs = jobs_of(args)
    print(f"{len(jobs)} points", flush=True)
    points = []
    init_args = (args.data_dir, args.images, args.calib, args.tuning_method)
    with single_threaded_pool(args.workers, _init, init_args) as pool:
        for point in pool.map(run_point, jobs):
            print(json.dumps(point), flush=True)
            points.append(point)
    meta = {"images": args.images, "calib": args.calib, "tuning_method": args.tuning_method, "seed": args.seed,
            "chips": args.chips, "argv": sys.argv[1:]}
    rows = summarise(points)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "study.json", {**meta, "points": points, "summary": rows})
    write_text_atomic(args.out / "study.md", markdown(rows, meta))
    plot(rows, args.out / "study.png")
    print(markdown(rows, meta))


if __name__ == "__main__":
    main()
