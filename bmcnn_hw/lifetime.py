"""Chip lifetime: accuracy vs time since programming, untuned, tuned once at t0, and re-tuned.

Each sampled chip (seed ``seed + k``) is programmed once (:class:`~bmcnn_hw.golden.chip.Chip`) and
aged to every requested time (:func:`~bmcnn_hw.golden.aging.aged_chip`: the same devices drift,
none is redrawn). At each age the chip runs the test images three ways: with no tuning, with
the corrections fitted once on the chip as programmed, and with corrections re-fitted on the
aged chip (registers only: the count of ``tune_offset`` registers that change from the t0
values is the register writes a re-tune costs). Local process pool or a Dask cluster, like
``sweep``; writes JSON, Markdown and a plot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .artefact import load_model
from .config import DeviceParams
from .golden.aging import RetentionParams, aged_chip, check_conductance, format_duration
from .golden.chip import Chip
from .golden.crossbar import physics_predictions_shared
from .golden.tile_reader import PhysicsReader
from .io_utils import write_figure, write_json_atomic, write_text_atomic
from .parallel import run_jobs
from .progress import say
from .records import build_records, run_recorded
from .tune import calibrate

_WORKER: dict[str, Any] = {}


def _init(build_dir: str, test_images: np.ndarray, test_labels: np.ndarray, calib_images: np.ndarray,
          calib_labels: np.ndarray | None = None) -> None:
    _WORKER.update(model=load_model(Path(build_dir)), test=(test_images, test_labels),
                   calib=(calib_images, calib_labels))


def changed_registers(before: list[np.ndarray], after: list[np.ndarray]) -> int:
    """``tune_offset`` registers whose value differs between two tunings (the writes to go from one to the other)."""
    return int(sum(int((np.asarray(a) != np.asarray(b)).sum()) for a, b in zip(before, after, strict=True)))


def run_chip(job: tuple[Any, ...]) -> dict[str, Any]:
    """Every age of one chip; runs in a worker (the model and data come from :func:`_init`)."""
    seed, device_dict, retention_dict, reads_per_s, times, method = job
    model = _WORKER["model"]
    images, labels = _WORKER["test"]
    calib, calib_labels = _WORKER["calib"]
    retention = RetentionParams(**retention_dict)
    chip = Chip(model, DeviceParams(**device_dict), seed)
    tuned_t0 = calibrate(model, chip, calib, labels=calib_labels, method=method).offsets
    rows = []
    for age in times:
        aged = aged_chip(model, chip, age, retention, reads_per_s)
        reader = PhysicsReader(aged)  # tiles characterised once for the re-tune and the three runs
        retuned = calibrate(model, aged, calib, reader, calib_labels, method).offsets
        preds = physics_predictions_shared(model, aged, images, [None, tuned_t0, retuned], reader=reader)
        untuned, once, again = (float((p == labels).mean()) for p in preds)
        rows.append({"age_s": float(age), "untuned": untuned, "tuned_t0": once, "retuned": again,
                     "register_writes": changed_registers(tuned_t0, retuned)})
    return {"seed": seed, "ages": rows}


def run_lifetime(build_dir: Path, test_set: Any, calib_images: np.ndarray, times: list[float], chips: int, *,
                 device: DeviceParams, retention: RetentionParams, reads_per_s: float = 0.0, seed: int = 0,
                 workers: int | None = None, scheduler: str | None = None, progress: bool = True,
                 calib_labels: np.ndarray | None = None, tuning_method: str = "guarded",
                 records_dir: Path | None = None) -> dict[str, Any]:
    """Accuracy of ``chips`` chips (seeds ``seed``..) at every age in ``times`` (seconds); see the module doc.
    With ``records_dir``, each chip's result is recorded there as it completes and a re-run on
    the same inputs reuses the records (:mod:`bmcnn_hw.records`).

    Raises:
        ConfigError: a negative time, or retention parameters that are not physical at some age.
    """
    check_conductance(retention, device.r_on_ohm, device.r_off_ohm, times)
    jobs = [(seed + k, device.to_dict(), retention.to_dict(), float(reads_per_s), [float(t) for t in times],
             tuning_method) for k in range(chips)]
    args = (str(build_dir), test_set.images, test_set.labels, calib_images, calib_labels)
    records = build_records(records_dir, build_dir, test_set, calib_images, calib_labels,
                            lambda job: f"chip_seed{job[0]}")
    points = run_recorded(records, jobs, lambda todo, on_result: run_jobs(
        run_chip, todo, _init, args, workers=workers, scheduler=scheduler, progress=progress, desc="lifetime",
        unit="chip", on_result=on_result), say)
    summary = []
    for k, age in enumerate(times):
        entry: dict[str, Any] = {"age_s": float(age), "label": format_duration(age),
                                 "failed_fraction": retention.failed_fraction(age),
                                 "g_on_us": 1e6 * retention.nominal_conductance(1 / device.r_on_ohm, age),
                                 "g_off_us": 1e6 * retention.nominal_conductance(1 / device.r_off_ohm, age)}
        for key in ("untuned", "tuned_t0", "retuned", "register_writes"):
            values = np.array([p["ages"][k][key] for p in points], dtype=np.float64)
            entry[f"{key}_mean"], entry[f"{key}_std"] = float(values.mean()), float(values.std())
        summary.append(entry)
    return {"build": str(build_dir), "chips": chips, "seed": seed, "images": len(test_set),
            "calibration_images": len(calib_images), "tuning_method": tuning_method,
            "reads_per_s": float(reads_per_s), "device": device.to_dict(),
            "retention": retention.to_dict(), "points": points, "summary": summary}


def lifetime_markdown(result: dict[str, Any]) -> str:
    """Table of accuracy (mean +- std over chips) per age, with the re-tune's register writes."""
    device, retention = result["device"], result["retention"]
    lines = [f"Accuracy on {result['images']} test images, {result['chips']} chips (seeds {result['seed']}.."
             f"{result['seed'] + result['chips'] - 1}; sigma_on {device['sigma_on_rel']}, sigma_off "
             f"{device['sigma_off_rel']}), {result['reads_per_s']:g} reads/s, drift {retention['drift_mean_us']:g} uS "
             f"+- {retention['drift_sd_us']:g} uS per ln(t/{retention['t0_s']:g} s), wear {retention['fail_10y']:g} "
             f"failed at 10 y; {result['tuning_method']} tuning on {result['calibration_images']} calibration images.",
             "",
             "| age | G_on / G_off (uS) | failed | untuned | tuned at t0 | re-tuned | re-tune register writes |",
             "|---|---|---|---|---|---|---|"]
    for row in result["summary"]:
        acc = [f"{100 * row[k + '_mean']:.2f} +- {100 * row[k + '_std']:.2f} %" for k in ("untuned", "tuned_t0",
                                                                                          "retuned")]
        lines.append(f"| {row['label']} | {row['g_on_us']:.2f} / {row['g_off_us']:.2f} | "
                     f"{100 * row['failed_fraction']:.2f} % | {' | '.join(acc)} | {row['register_writes_mean']:.0f} |")
    return "\n".join(lines) + "\n"


def plot_lifetime(result: dict[str, Any], out_stem: Path) -> list[Path]:
    """Accuracy vs age (log time axis) for the three tunings, with std error bars (PNG and SVG)."""
    from .plotting import pyplot

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6.5, 4))
    ages = [max(r["age_s"], 0.1) for r in result["summary"]]
    for key, label, style in (("untuned", "no tuning", "-"), ("tuned_t0", "tuned once at t0", "--"),
                              ("retuned", "re-tuned at each age (registers only)", ":")):
        ax.errorbar(ages, [100 * r[f"{key}_mean"] for r in result["summary"]],
                    yerr=[100 * r[f"{key}_std"] for r in result["summary"]], marker="o", capsize=3, label=label,
                    linestyle=style)
    ax.set_xscale("log")
    ax.set_xticks(ages, [r["label"] for r in result["summary"]])
    ax.set_xlabel("time since programming")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"accuracy over the chip's lifetime ({result['chips']} chips)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    paths = write_figure(fig, Path(out_stem))
    plt.close(fig)
    return paths


def write_lifetime(result: dict[str, Any], out_dir: Path) -> list[Path]:
    """lifetime.json, lifetime.md, lifetime.png, lifetime.svg in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "lifetime.json", result)
    write_text_atomic(out_dir / "lifetime.md", lifetime_markdown(result))
    return [out_dir / "lifetime.json", out_dir / "lifetime.md", *plot_lifetime(result, out_dir / "lifetime")]
