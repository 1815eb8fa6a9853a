"""Variation study: accuracy vs relative sigma of R_on / R_off over many sampled chips,
with and without tuning, on a local process pool. Writes JSON, Markdown and a plot."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from .artefact import load_model
from .errors import ConfigError
from .golden.chip import Chip
from .golden.crossbar import physics_predictions_shared
from .golden.tile_reader import PhysicsReader
from .io_utils import write_figure, write_json_atomic, write_text_atomic
from .parallel import run_jobs
from .progress import say
from .records import build_records, run_recorded
from .tune import calibrate

MODES = ("together", "on", "off")
_WORKER: dict = {}


def _device(model, sigma: float, mode: str, distribution: str | None):
    base = model.hardware.device
    changes = {"sigma_on_rel": sigma if mode in ("together", "on") else base.sigma_on_rel,
               "sigma_off_rel": sigma if mode in ("together", "off") else base.sigma_off_rel}
    if distribution:
        changes["distribution"] = distribution
    return dataclasses.replace(base, **changes)


def _init(build_dir, test_images, test_labels, calib_images, calib_labels=None):
    _WORKER.update(model=load_model(build_dir), test=(test_images, test_labels), calib=calib_images,
                   calib_labels=calib_labels)


def spice_spot_check(model, chip, images: np.ndarray) -> dict:
    """Every crossbar read of ``images`` through ngspice on this chip's netlists vs the physics model."""
    import tempfile

    from .golden.crossbar import run_crossbar
    from .golden.tile_reader import PhysicsReader
    from .spice.netlist import write_netlists
    from .spice.report import compare_chip_reads
    from .spice.run import SpiceReader

    with tempfile.TemporaryDirectory() as tmp:
        write_netlists(model, chip, Path(tmp))
        spice, spice_acc = run_crossbar(model, images, SpiceReader(model, chip, Path(tmp)), record=True)
    physics, physics_acc = run_crossbar(model, images, PhysicsReader(chip), record=True)
    worst, first, explained = compare_chip_reads(model, chip, spice_acc.reads, physics_acc.reads)
    return {"spice_images": len(images), "spice_max_rel_error": worst,
            "spice_codes_identical": first is None and not explained, "spice_codes_at_boundary": explained,
            "spice_predictions_equal": bool((spice.predictions == physics.predictions).all())}


def chip_accuracies(model, chip: Chip, images: np.ndarray, labels: np.ndarray, calib_images: np.ndarray | None = None,
                    calib_labels: np.ndarray | None = None, method: str = "guarded") -> list[float]:
    """Test accuracy of ``chip`` untuned and, given ``calib_images``, after tuning on them by
    ``method`` (:func:`~bmcnn_hw.tune.calibrate`); one characterisation of its tiles serves both."""
    reader = PhysicsReader(chip)
    tunings: list = [None]
    if calib_images is not None:
        tunings.append(calibrate(model, chip, calib_images, reader, calib_labels, method).offsets)
    predictions = physics_predictions_shared(model, chip, images, tunings, reader=reader)
    return [float((p == labels).mean()) for p in predictions]


def run_point(job: tuple) -> dict:
    """Accuracy of one sampled chip (sigma, chip seed), plain and tuned; runs in a worker."""
    sigma, seed, mode, distribution, tune, spot, method = job
    model = _WORKER["model"]
    images, labels = _WORKER["test"]
    chip = Chip(model, _device(model, sigma, mode, distribution), seed)
    accuracies = chip_accuracies(model, chip, images, labels, _WORKER["calib"] if tune else None,
                                 _WORKER["calib_labels"], method)
    result = {"sigma": sigma, "seed": seed, "plain": accuracies[0]}
    if tune:
        result["tuned"] = accuracies[1]
    if spot:
        result.update(spice_spot_check(model, chip, images[:spot]))
    return result


def run_sweep(build_dir: Path, test_set, calib_images: np.ndarray, sigmas, chips: int, *, mode: str = "together",
              distribution: str | None = None, tune: bool = True, seed: int = 0, workers: int | None = None,
              progress: bool = True, scheduler: str | None = None, spice_spot: int = 0,
              calib_labels: np.ndarray | None = None, tuning_method: str = "guarded",
              records_dir: Path | None = None) -> dict:
    """Every (sigma, chip) point; chip k of every sigma has seed ``seed + k`` (same seeds, same result).

    Tuning (:func:`~bmcnn_hw.tune.calibrate` with ``tuning_method``) fits on ``calib_images``;
    their ``calib_labels`` enable the guarded method's accuracy check.

    Runs on a local process pool, or on the Dask cluster at ``scheduler`` (tasks of a worker
    that dies are retried elsewhere). Returns the per-chip results and per-sigma mean and std.
    With ``records_dir``, each chip's result is recorded there as it completes and a re-run on
    the same inputs reuses the records (:mod:`bmcnn_hw.records`).
    """
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    jobs = [(float(s), seed + k, mode, distribution, tune, spice_spot if k == 0 else 0, tuning_method)
            for s in sigmas for k in range(chips)]
    args = (str(build_dir), test_set.images, test_set.labels, calib_images, calib_labels)
    records = build_records(records_dir, build_dir, test_set, calib_images, calib_labels,
                            lambda job: f"sigma{job[0]:g}_seed{job[1]}")
    points = run_recorded(records, jobs, lambda todo, on_result: run_jobs(
        run_point, todo, _init, args, workers=workers, scheduler=scheduler, progress=progress, desc="sweep",
        unit="chip", on_result=on_result), say)
    summary = []
    for s in sigmas:
        rows = [p for p in points if p["sigma"] == float(s)]
        entry = {"sigma": float(s)}
        for key in ("plain", "tuned"):
            if key in rows[0]:
                values = np.array([r[key] for r in rows])
                entry[f"{key}_mean"], entry[f"{key}_std"] = float(values.mean()), float(values.std())
        summary.append(entry)
    return {"build": str(build_dir), "mode": mode, "distribution": distribution, "chips": chips, "seed": seed,
            "images": len(test_set), "calibration_images": len(calib_images), "tuning_method": tuning_method,
            "points": points, "summary": summary}


def _tuning_words(result: dict) -> str:
    """How the tuned column was fitted, for table captions."""
    return (f"tuned: {result.get('tuning_method', 'lsq')} tuning on {result['calibration_images']} "
            "calibration (training) images")


def sweep_markdown(result: dict) -> str:
    """Table of accuracy (mean +- std over chips) per sigma."""
    tuned = "tuned_mean" in result["summary"][0]
    lines = [f"Accuracy on {result['images']} test images, {result['chips']} chips per point "
             f"(seeds {result['seed']}..{result['seed'] + result['chips'] - 1}), sigma applied to "
             f"{ {'together': 'R_on and R_off', 'on': 'R_on', 'off': 'R_off'}[result['mode']] }"
             + (f"; {_tuning_words(result)}." if tuned else "."), "",
             "| sigma | plain | tuned |" if tuned else "| sigma | plain |", "|---|---|---|" if tuned else "|---|---|"]
    for row in result["summary"]:
        line = f"| {row['sigma']:.2f} | {100 * row['plain_mean']:.2f} +- {100 * row['plain_std']:.2f} % |"
        if tuned:
            line += f" {100 * row['tuned_mean']:.2f} +- {100 * row['tuned_std']:.2f} % |"
        lines.append(line)
    spots = [p for p in result["points"] if "spice_images" in p]
    if spots:
        worst = max(p["spice_max_rel_error"] for p in spots)
        same = all(p["spice_codes_identical"] and p["spice_predictions_equal"] for p in spots)
        lines += ["", f"SPICE spot checks: {len(spots)} chips x {spots[0]['spice_images']} image(s) through ngspice; "
                      f"max relative current error {worst:.1e}; ADC codes and classes identical: "
                      f"{'yes' if same else 'NO'}"]
    return "\n".join(lines) + "\n"


def plot_sweep(result: dict, out_stem: Path, labelled: dict | None = None) -> list[Path]:
    """Accuracy vs sigma with error bars (PNG and SVG); ``labelled`` maps labels to more results."""
    from .plotting import pyplot

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, res in (labelled or {"": result}).items():
        sigmas = [r["sigma"] for r in res["summary"]]
        for key, label in (("plain", "no tuning"), ("tuned", "tuned (registers only)")):
            if f"{key}_mean" in res["summary"][0]:
                ax.errorbar(sigmas, [100 * r[f"{key}_mean"] for r in res["summary"]],
                            yerr=[100 * r[f"{key}_std"] for r in res["summary"]], marker="o", capsize=3,
                            label=f"{name}: {label}" if name else label, linestyle="--" if key == "tuned" else "-")
    ax.set_xlabel(f"relative sigma ({result['mode']})")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"accuracy vs device variation ({result['chips']} chips per point)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    paths = write_figure(fig, Path(out_stem))
    plt.close(fig)
    return paths


def write_sweep(result: dict, out_dir: Path) -> list[Path]:
    """sweep.json, sweep.md, sweep.png, sweep.svg in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "sweep.json", result)
    write_text_atomic(out_dir / "sweep.md", sweep_markdown(result))
    return [out_dir / "sweep.json", out_dir / "sweep.md", *plot_sweep(result, out_dir / "sweep")]


def comparison_markdown(results: dict) -> str:
    """One table over several builds (e.g. plain vs variation-aware trained): label -> sweep result."""
    first = next(iter(results.values()))
    tuned = "tuned_mean" in first["summary"][0]
    header = ["sigma"] + [f"{name}{', untuned' if tuned else ''}" for name in results]
    if tuned:
        header += [f"{name}, tuned" for name in results]
    lines = [f"Accuracy (mean +- std over {first['chips']} chips, seeds {first['seed']}.."
             f"{first['seed'] + first['chips'] - 1}, {first['images']} test images; sigma on "
             f"{ {'together': 'R_on and R_off', 'on': 'R_on', 'off': 'R_off'}[first['mode']] }"
             + (f"; {_tuning_words(first)})." if tuned else ")."), "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for k, row in enumerate(first["summary"]):
        cells = [f"{row['sigma']:.2f}"]
        for key in ("plain", "tuned") if tuned else ("plain",):
            for res in results.values():
                r = res["summary"][k]
                cells.append(f"{100 * r[key + '_mean']:.2f} +- {100 * r[key + '_std']:.2f} %")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_comparison(results: dict, out_dir: Path) -> list[Path]:
    """Each build's sweep under ``out_dir/<label>/`` plus compare.json/.md and compare.png/.svg."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for label, result in results.items():
        write_sweep(result, out_dir / label)
    write_json_atomic(out_dir / "compare.json", results)
    write_text_atomic(out_dir / "compare.md", comparison_markdown(results))
    first = next(iter(results.values()))
    return [out_dir / "compare.json", out_dir / "compare.md", *plot_sweep(first, out_dir / "compare", results)]
