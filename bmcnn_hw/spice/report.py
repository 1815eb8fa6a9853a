"""``bmcnn-hw spice``: run a build's netlists on real images and compare with the physics model."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..artefact import load_model
from ..golden.chip import Chip
from ..golden.crossbar import PhysicsReader, run_crossbar
from .run import SpiceReader

_I_PLUS, _I_MINUS, _CODES = 5, 6, 7  # positions in CrossbarAccumulator.reads records


def compare_reads(spice_reads: list, physics_reads: list) -> tuple[float, tuple | None]:
    """Worst relative column-current error of paired tile reads, and the first differing ADC code.

    The mismatch is ``(spice record, physics record, vector, column)``; None when all codes agree.
    """
    worst, first = 0.0, None
    for s, p in zip(spice_reads, physics_reads):
        for k in (_I_PLUS, _I_MINUS):
            worst = max(worst, float(np.max(np.abs(s[k] - p[k]) / np.maximum(np.abs(p[k]), 1e-30))))
        bad = np.argwhere(s[_CODES] != p[_CODES])
        if first is None and len(bad):
            first = (s, p, int(bad[0][0]), int(bad[0][1]))
    return worst, first


def _layer_rows(model, spice_acc, physics_acc, n_images: int) -> list[dict]:
    rows = []
    for i, layer in enumerate(model.layers):
        if layer.digital:
            continue
        pairs = [(s, p) for s, p in zip(spice_acc.reads, physics_acc.reads) if s[0] == i]
        worst, first = compare_reads([s for s, _ in pairs], [p for _, p in pairs])
        same_codes = first is None
        reads = sum(len(s[_CODES]) for s, _ in pairs)
        rows.append({
            "layer": layer.name, "tiles": layer.tiling.n_row_tiles * layer.tiling.n_col_tiles,
            "tile_reads": reads, "max_rel_current_error": worst, "adc_codes_identical": same_codes,
            "energy_per_inference_j": spice_acc.energy_j[i] / n_images,
            "energy_per_inference_physics_j": physics_acc.energy_j[i] / n_images,
            "energy_per_tile_read_j": spice_acc.energy_j[i] / max(reads, 1),
        })
    return rows


def spice_report(build_dir: Path, images: np.ndarray, mode: str = "auto") -> dict:
    """Every crossbar read of ``images`` through ngspice and through the physics model.

    Returns per-layer rows (tiles, reads, worst relative current error, ADC agreement,
    read energy per inference from SPICE and physics, energy per tile read), the
    predictions of both, ngspice solve count and seconds.
    """
    model = load_model(build_dir)
    chip = Chip.of_build(model)
    start = time.perf_counter()
    reader = SpiceReader(model, chip, Path(build_dir) / "netlists", mode=mode)
    spice, spice_acc = run_crossbar(model, images, reader, record=True)
    seconds = time.perf_counter() - start
    physics, physics_acc = run_crossbar(model, images, PhysicsReader(chip), record=True)
    return {
        "build": str(build_dir), "images": len(images), "mode": mode, "ngspice_solves": reader.solves,
        "characterised_tiles": len(reader._responses), "seconds": round(seconds, 3),
        "layers": _layer_rows(model, spice_acc, physics_acc, len(images)),
        "predictions_spice": spice.predictions.tolist(), "predictions_physics": physics.predictions.tolist(),
        "t_read_s": model.hardware.readout.t_read_s,
    }


def format_report(report: dict) -> str:
    """A plain-text table of :func:`spice_report`."""
    lines = [f"{'layer':6s} {'tiles':>5s} {'reads':>8s} {'max |dI|/I':>11s} {'codes':>6s} "
             f"{'E/inference SPICE':>18s} {'physics':>11s} {'E/tile read':>12s}"]
    for row in report["layers"]:
        lines.append(f"{row['layer']:6s} {row['tiles']:5d} {row['tile_reads']:8d} {row['max_rel_current_error']:11.1e} "
                     f"{'same' if row['adc_codes_identical'] else 'DIFF':>6s} {row['energy_per_inference_j']:16.4e} J "
                     f"{row['energy_per_inference_physics_j']:9.4e} J {row['energy_per_tile_read_j']:10.3e} J")
    total = sum(r["energy_per_inference_j"] for r in report["layers"])
    lines.append(f"read energy per inference {total:.4e} J (t_read {report['t_read_s']:g} s); "
                 f"{report['ngspice_solves']} ngspice solves, {report['characterised_tiles']} tiles characterised by "
                 f"superposition, {report['seconds']} s; predictions SPICE {report['predictions_spice']} "
                 f"physics {report['predictions_physics']}")
    return "\n".join(lines)
