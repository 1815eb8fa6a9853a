"""``bmcnn-hw spice``: run a build's netlists on real images and compare with the physics model."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..artefact import CompiledModel, load_model, verify_netlists
from ..config import CellType, SpiceMode
from ..golden.chip import Chip
from ..golden.crossbar import CrossbarAccumulator, run_crossbar
from ..golden.readout import adc_scale
from ..golden.tile_reader import PhysicsReader, RecordedRead
from .read_cache import ReadCache
from .run import SpiceReader

AGREEMENT_RTOL: dict[CellType, float] = {"linear": 1e-6, "sinh": 1e-6, "1t1r": 1e-5}
"""Agreement of SPICE and physics column currents asserted per cell type, as a read's largest
difference over its largest current (at least one ADC step). Linear and sinh cells: both solve
the same equations (measured ~1e-13). 1T1R: the physics executor interpolates an
ngspice-characterised transistor table; measured up to 7.1e-6 per read on the 10 kOhm preset
with met1 wires (cosim, 1 image) and 4.2e-7 of a batch's largest current on a random 64 x 64
tile of that preset (``bench/bench_cells.py``); 1e-5 leaves a margin."""
Mismatch = tuple[RecordedRead, RecordedRead, int, int]
"""An unexplained ADC-code difference: (SPICE read, physics read, vector, column)."""


def compare_reads(spice_reads: list[RecordedRead], physics_reads: list[RecordedRead], codes_per_amp: float = 0.0,
                  rtol: float = 0.0) -> tuple[float, Mismatch | None, int]:
    """Worst current error of paired tile reads, the first unexplained ADC-code difference, and
    the number of explained ones.

    The error of a read is its largest column-current difference relative to its largest
    column current (at least one ADC step, ``1 / codes_per_amp``, so that a read of all-zero
    inputs, where physics and ngspice both give ~0 A, compares on the ADC's scale): the
    measure the tests hold SPICE and physics to. A code difference is explained when the
    physics current ``I+ - I-`` lies within ``rtol`` of that scale of a rounding boundary: a
    current difference inside the stated tolerance can move it across. The mismatch is
    ``(spice record, physics record, vector, column)``; None when every difference is explained.
    """
    worst, explained = 0.0, 0
    first: Mismatch | None = None
    floor = 1.0 / codes_per_amp if codes_per_amp else 1e-30
    for s, p in zip(spice_reads, physics_reads, strict=True):
        scale = np.maximum(np.maximum(np.abs(p.i_plus), np.abs(p.i_minus)).max(axis=1), floor)  # per read
        for got, want in ((s.i_plus, p.i_plus), (s.i_minus, p.i_minus)):
            worst = max(worst, float(np.max(np.abs(got - want).max(axis=1) / scale)))
        bad = np.argwhere(s.codes != p.codes)
        if len(bad) and codes_per_amp and rtol:
            scaled = (p.i_plus - p.i_minus)[bad[:, 0], bad[:, 1]] * codes_per_amp
            near = np.abs(scaled - np.floor(scaled) - 0.5) <= rtol * scale[bad[:, 0]] * codes_per_amp
            explained += int(near.sum())
            bad = bad[~near]
        if first is None and len(bad):
            first = (s, p, int(bad[0][0]), int(bad[0][1]))
    return worst, first, explained


def compare_chip_reads(model: CompiledModel, chip: Chip, spice_reads: list[RecordedRead],
                       physics_reads: list[RecordedRead]) -> tuple[float, Mismatch | None, int]:
    """:func:`compare_reads` at the ADC scale of ``model`` on ``chip`` and its cell type's tolerance."""
    unit = chip.unit_current_a * model.hardware.geometry.unit_scale
    return compare_reads(spice_reads, physics_reads, adc_scale(unit, model.hardware.readout),
                         AGREEMENT_RTOL[chip.params.cell])


def _layer_rows(model: CompiledModel, chip: Chip, spice_acc: CrossbarAccumulator, physics_acc: CrossbarAccumulator,
                n_images: int) -> list[dict[str, Any]]:
    rows = []
    rtol = AGREEMENT_RTOL[chip.params.cell]
    for i, layer in enumerate(model.layers):
        if layer.digital:
            continue
        assert layer.tiling is not None  # memristive layers are tiled
        pairs = [(s, p) for s, p in zip(spice_acc.reads, physics_acc.reads, strict=True) if s.layer == i]
        worst, first, explained = compare_chip_reads(model, chip, [s for s, _ in pairs], [p for _, p in pairs])
        reads = sum(len(s.codes) for s, _ in pairs)
        rows.append({
            "layer": layer.name, "tiles": layer.tiling.n_row_tiles * layer.tiling.n_col_tiles,
            "tile_reads": reads, "max_rel_current_error": worst, "rtol": rtol,
            "worst_tile": worst_tile(model, chip, layer.name, pairs),
            "first_code_mismatch": None if first is None else _describe(layer.name, first),
            "adc_codes_identical": first is None and not explained,
            "adc_codes_agree": first is None, "codes_differing_at_boundary": explained,
            "energy_per_inference_j": spice_acc.energy_j[i] / n_images,
            "energy_per_inference_physics_j": physics_acc.energy_j[i] / n_images,
            "energy_per_tile_read_j": spice_acc.energy_j[i] / max(reads, 1),
        })
    return rows


def worst_tile(model: CompiledModel, chip: Chip, name: str,
                pairs: list[tuple[RecordedRead, RecordedRead]]) -> str | None:
    """The netlist name (``<layer>_r<rt>_c<ct>``) of the tile whose reads differ most from physics."""
    by_tile: dict[tuple[int, int], list[tuple[RecordedRead, RecordedRead]]] = {}
    for s, p in pairs:
        by_tile.setdefault((s.rt, s.ct), []).append((s, p))
    errors = {key: compare_chip_reads(model, chip, [s for s, _ in tile], [p for _, p in tile])[0]
              for key, tile in by_tile.items()}
    if not errors:
        return None
    rt, ct = max(errors, key=lambda key: errors[key])
    return f"{name}_r{rt}_c{ct}"


def _describe(name: str, mismatch: Mismatch) -> str:
    """Where an unexplained ADC-code difference is: tile, bit plane, read vector, column, both codes."""
    s, p, m, c = mismatch
    return (f"tile {name}_r{s.rt}_c{s.ct}, bit plane {s.plane}, read vector {m}, column {c}: SPICE code "
            f"{s.codes[m, c]}, physics {p.codes[m, c]}")


def disagreement(report: dict[str, Any]) -> str | None:
    """One line on where SPICE and physics disagree in a :func:`spice_report` (None when they agree)."""
    for row in report["layers"]:
        if row["max_rel_current_error"] > row["rtol"] or not row["adc_codes_agree"]:
            line = (f"SPICE differs from physics in layer {row['layer']}: worst tile {row['worst_tile']} "
                    f"(netlists/{row['worst_tile']}.sub), dI/I_max {row['max_rel_current_error']:.2e} "
                    f"(tolerance {row['rtol']:g})")
            return line + (f"; first ADC code difference: {row['first_code_mismatch']}"
                           if row["first_code_mismatch"] else "")
    return None


def spice_report(build_dir: Path, images: np.ndarray, mode: SpiceMode = "auto", jobs: int = 1,
                 progress: bool = False, cache: ReadCache | None = None, scheduler: str | None = None,
                 engine: str = "ngspice") -> dict[str, Any]:
    """Every crossbar read of ``images`` through ngspice and through the physics model.

    Returns per-layer rows (tiles, reads, worst relative current error, ADC agreement,
    read energy per inference from SPICE and physics, energy per tile read), the
    predictions of both, ngspice solve count and seconds; ``jobs`` ngspice processes at a time
    (a progress bar per layer with ``progress``; on the Dask cluster at ``scheduler`` if given),
    per-vector reads through ``cache`` if given, solved by ``engine`` (ngspice or vacask).
    """
    model = load_model(build_dir)
    verify_netlists(build_dir)
    chip = Chip.of_build(model)
    start = time.perf_counter()
    reader = SpiceReader(model, chip, Path(build_dir) / "netlists", mode=mode, jobs=jobs, progress=progress,
                         cache=cache, scheduler=scheduler, engine=engine)
    spice, spice_acc = run_crossbar(model, images, reader, record=True)
    seconds = time.perf_counter() - start
    physics, physics_acc = run_crossbar(model, images, PhysicsReader(chip), record=True)
    return {
        "build": str(build_dir), "images": len(images), "mode": mode, "jobs": jobs, "scheduler": scheduler,
        "engine": reader.engine_name(),
        "ngspice_solves": reader.solves,
        "characterised_tiles": len(reader.responses), "seconds": round(seconds, 3),
        "layers": _layer_rows(model, chip, spice_acc, physics_acc, len(images)),
        "cell": chip.params.cell,
        "predictions_spice": spice.predictions.tolist(), "predictions_physics": physics.predictions.tolist(),
        "t_read_s": model.hardware.readout.t_read_s,
    }


def disagreeing_layers(report: dict[str, Any]) -> list[str]:
    """Layers of a :func:`spice_report` where SPICE and physics disagree: a column current off by
    more than the cell type's ``AGREEMENT_RTOL``, or an ADC code that differs other than at a
    rounding boundary within it. The one agreement rule of ``spice``, ``demo`` and ``regress``."""
    return [row["layer"] for row in report["layers"]
            if not row["adc_codes_agree"] or row["max_rel_current_error"] > row["rtol"]]


def format_report(report: dict[str, Any]) -> str:
    """A plain-text table of :func:`spice_report`."""
    lines = [f"{'layer':6s} {'tiles':>5s} {'reads':>8s} {'dI/I_max':>11s} {'codes':>6s} "
             f"{'E/inference SPICE':>18s} {'physics':>11s} {'E/tile read':>12s}"]
    for row in report["layers"]:
        codes = "same" if row["adc_codes_identical"] else (f"{row['codes_differing_at_boundary']}@b"
                                                            if row["adc_codes_agree"] else "DIFF")
        lines.append(f"{row['layer']:6s} {row['tiles']:5d} {row['tile_reads']:8d} {row['max_rel_current_error']:11.1e} "
                     f"{codes:>6s} {row['energy_per_inference_j']:16.4e} J "
                     f"{row['energy_per_inference_physics_j']:9.4e} J {row['energy_per_tile_read_j']:10.3e} J")
    total = sum(r["energy_per_inference_j"] for r in report["layers"])
    lines.append(f"cell {report['cell']}: currents agree when dI/I_max (a read's largest difference over its largest "
                 f"current) <= {report['layers'][0]['rtol']:g}; N@b = N codes differ where the current sits within "
                 "that tolerance of a rounding boundary")
    lines.append(f"read energy per inference {total:.4e} J (t_read {report['t_read_s']:g} s); "
                 f"{report['ngspice_solves']} solves by {report.get('engine', 'ngspice')}, "
                 f"{report['characterised_tiles']} tiles characterised by superposition, {report['seconds']} s; "
                 f"predictions SPICE {report['predictions_spice']} physics {report['predictions_physics']}")
    return "\n".join(lines)
