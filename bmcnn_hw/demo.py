"""``demo``: data -> training -> compile -> golden -> SPICE -> RTL, with a summary of what agreed."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .artefact import load_model
from .build import build
from .checks import CheckResult, ideal_chip, physics_vs_golden, rtl_vs_golden, spice_vs_physics
from .config import HardwareConfig
from .data.mnist import load_mnist
from .golden.chip import Chip
from .golden.integer import run_batched, run_integer
from .io_utils import write_json_atomic, write_text_atomic
from .train.checkpoint import load_checkpoint, save_checkpoint
from .train.loop import TrainParams, predict, to_tensor, train


@dataclass
class Summary:
    """Rows of (stage, result, agreed) collected while the demo runs."""

    rows: list = field(default_factory=list)

    def add(self, stage: str, result: str, agreed: bool | None = None) -> None:
        """Record one stage and print it at once."""
        self.rows.append({"stage": stage, "result": result, "agreed": agreed})
        mark = {True: "OK  ", False: "FAIL", None: "    "}[agreed]
        print(f"[{mark}] {stage}: {result}", flush=True)

    def add_check(self, check: CheckResult, note: str = "") -> None:
        """Record an agreement check (:mod:`bmcnn_hw.checks`) as a stage (``note`` qualifies its result)."""
        note = f" {note}" if note else ""
        self.add(check.name, f"{check.detail}{note} ({check.seconds:.0f} s)", check.passed)

    @property
    def ok(self) -> bool:
        """True when no stage disagreed."""
        return all(row["agreed"] is not False for row in self.rows)

    def markdown(self) -> str:
        """The summary as a Markdown table."""
        lines = ["| stage | result | agreed |", "|---|---|---|"]
        for row in self.rows:
            agreed = {True: "yes", False: "**NO**", None: "-"}[row["agreed"]]
            lines.append(f"| {row['stage']} | {row['result']} | {agreed} |")
        return "\n".join(lines) + "\n"


def torch_activations_match(torch_model, model, images: np.ndarray) -> bool:
    """Every hidden activation and the scores of torch equal the integer golden model's."""
    with torch.no_grad():
        scores, acts = torch_model(to_tensor(images), return_activations=True)
    trace = run_integer(model, images)
    same = all(np.array_equal(a.numpy().astype(np.uint8).reshape(g.shape), g)
               for a, g in zip(acts, trace.outputs[:-1], strict=True))  # hidden layers; scores below
    return same and np.array_equal(scores.numpy() * 2 ** model.score_frac_bits, trace.scores)


def run_demo(out_dir: Path, data_dir: Path, *, hardware: HardwareConfig | None = None, arch: str = "baseline",
             model_name: str = "bmcnn-compact", epochs: int = 1, seed: int = 0, spice_images: int = 2,
             physics_images: int = 200, rtl_sim: str = "icarus", limit: int | None = None, calib: int = 1024,
             tune_images: int = 500, keep_work: bool = False) -> Summary:
    """Train ``model_name`` and run every stage end to end on ``hardware`` (default: the ideal
    baseline) from architecture ``arch``; returns the summary (also written to ``out_dir``). A
    build whose chip is not ideal (wires, spread) is checked for exactness on its ideal chip and
    tuned on its own (``calib`` training images, accuracy on ``tune_images`` test images).
    Scratch of passing checks (``rtl_check/``, ``ppa/work/``) is removed unless ``keep_work``."""
    out_dir = Path(out_dir)
    summary = Summary()
    train_set, test_set = load_mnist(data_dir, "train"), load_mnist(data_dir, "test")
    summary.add("data", f"{len(train_set)} train / {len(test_set)} test images from {data_dir}")

    start = time.perf_counter()
    params = TrainParams(epochs=epochs, seed=seed, limit=limit, val_size=0)
    torch_model, metrics = train(load_model_config(model_name), train_set, test_set, params)
    save_checkpoint(out_dir / "checkpoint", torch_model, params.to_dict(), metrics)
    summary.add(f"train {model_name} ({epochs} epoch, seed {seed})",
                f"test accuracy {100 * metrics['test_acc']:.2f} % in {time.perf_counter() - start:.0f} s")

    model = build(out_dir / "checkpoint", out_dir / "build", hardware or HardwareConfig(), chip_seed=seed, arch=arch)
    tiles = model.tile_count
    summary.add("compile", f"{_circuit(model, arch)}: {len(model.layers)} layers, {tiles} tiles -> {tiles} tile "
                           f"netlists, {2 * len(model.layers)} Verilog files + register maps in {out_dir / 'build'}")

    torch_model, _ = load_checkpoint(out_dir / "checkpoint")
    golden = run_batched(model, test_set.images)
    torch_preds = predict(torch_model, test_set.images)
    same = int((golden == torch_preds).sum())
    acts = torch_activations_match(torch_model, model, test_set.images[:physics_images])
    summary.add("torch vs golden (integer)",
                f"{same}/{len(test_set)} same class, golden accuracy {100 * (golden == test_set.labels).mean():.2f} %; "
                f"activations and scores {'identical' if acts else 'DIFFER'} on {physics_images} images",
                same == len(test_set) and acts)

    model = load_model(out_dir / "build")
    chip = Chip.of_build(model)
    ideal = chip.is_ideal and not chip.params.has_parasitics
    note = "on the ideal chip" if ideal else "on the build's ideal chip (nominal devices, no wire or driver resistance)"
    summary.add_check(physics_vs_golden(model, test_set.images[:physics_images], ideal_chip(model)), note)
    if not ideal:
        summary_tuning(summary, model, chip, train_set, test_set.head(tune_images), calib, out_dir / "tuning.json")
    summary.add_check(spice_vs_physics(out_dir / "build", test_set.images[:spice_images], engine="auto"),
                      "" if ideal else "on the untuned chip (tuning sets registers; it changes no read)")
    summary.add_check(rtl_vs_golden(model, test_set.images[:2], out_dir / "rtl_check", sim=rtl_sim, seed=seed,
                                    build_dir=out_dir / "build", keep_work=keep_work),
                      f"(periphery and top of {len(model.layers)} layers)")
    summary_ppa(summary, out_dir / "build", test_set.images[:2], out_dir / "ppa", keep_work)

    write_json_atomic(out_dir / "summary.json", {"ok": summary.ok, "rows": summary.rows})
    write_text_atomic(out_dir / "summary.md", summary.markdown())
    verdict = "every stage agreed" if summary.ok else "a stage DISAGREED (marked FAIL above)"
    print(f"\ndemo: {verdict}; summary in {out_dir / 'summary.md'}")
    return summary


def _circuit(model, arch: str) -> str:
    """The build in words: architecture, cells, wires and rails."""
    device, readout = model.hardware.device, model.hardware.readout
    wires = f"{device.r_wire_ohm:.3g} ohm wire segments" if device.r_wire_ohm else "ideal wires"
    rails = f"TIA rails +-{readout.v_swing_v:g} V" if readout.v_swing_v else "no TIA rails"
    return (f"--arch {arch}, {device.cell} cells {device.r_on_ohm / 1e3:g} kOhm / {device.r_off_ohm / 1e3:g} kOhm, "
            f"{wires}, {rails}")


def summary_tuning(summary: Summary, model, chip: Chip, train_set, test_set, calib: int, out: Path) -> None:
    """Register-only tuning of the build's own chip (:func:`bmcnn_hw.tune.calibrate` on the first
    ``calib`` training images) and its physics accuracy before and after; corrections to ``out``."""
    from .tune import accuracy_before_after, calibrate, save_tuning

    start = time.perf_counter()
    calibration = train_set.head(calib)
    tuning = calibrate(model, chip, calibration.images, labels=calibration.labels)
    tuning.meta["calibration"] = {"split": "train", "first_images": calib}
    save_tuning(out, model, tuning)
    before, after = accuracy_before_after(model, chip, test_set.images, test_set.labels, tuning.offsets)
    summary.add("physics on the build's chip, register-only tuning",
                f"accuracy on {len(test_set)} test images {100 * before:.2f} % untuned -> {100 * after:.2f} % tuned "
                f"({calib} calibration images; corrections in {out}) ({time.perf_counter() - start:.0f} s)")


def load_model_config(name: str = "bmcnn-compact"):
    """A shipped model (``bmcnn_hw/models/NAME.toml``) or a model file."""
    from .train.registry import resolve_model

    return resolve_model(name)


def summary_ppa(summary: Summary, build_dir: Path, images: np.ndarray, out: Path, keep_work: bool = False) -> None:
    """Energy, latency and area per inference (``bmcnn-hw ppa`` with a short activity run); its
    ``work/`` (netlists, logs, tens of MB) is removed after a pass unless ``keep_work``."""
    from .errors import BmcnnError
    from .ppa.command import check_out_dir, check_tools, run_command
    from .ppa.records import PpaOptions

    options = PpaOptions(activity_beats=2000, engine="auto")
    start = time.perf_counter()
    try:
        check_out_dir(out)
        check_tools(options)
        report = run_command(build_dir, images, out, options, progress=False)
    except BmcnnError as exc:
        summary.add("PPA (transients, cost model, Yosys + OpenSTA)", str(exc), False)
        return
    if not keep_work:
        shutil.rmtree(out / "work", ignore_errors=True)
    t = report["totals"]
    checked = sum(la["digital"]["gate_level_outputs_checked"] for la in report["layers"].values())
    engine = report["spice_engine"].split(" (")[0]
    summary.add("PPA (transients, cost model, Yosys + OpenSTA)",
                f"{t['energy_per_inference_j'] * 1e9:.4g} nJ and {t['latency_s'] * 1e6:.3g} us per inference, "
                f"{t['area_mm2']:.3g} mm^2, {t['tops_per_w']:.3g} TOPS/W at {report['clock_mhz']:.0f} MHz; "
                f"transients by {engine}; gate-level netlists = golden on {checked} outputs; {out / 'ppa.md'} "
                f"({time.perf_counter() - start:.0f} s)", True)  # a gate-level mismatch raises above
