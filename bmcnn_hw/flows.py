"""The regression matrix (a TOML file of cases).

A regression file describes a matrix of cases (see ``flows/regression.toml``); every case compiles
the checkpoint for its tile size and encoding, samples the chip of its sigma and seed, and checks
physics = golden, SPICE = physics and RTL = golden on real images. Results go to JUnit XML plus
Markdown and HTML summaries; each failing case prints the command that re-runs it alone. (Flow
files, one command and its options, are read by :mod:`bmcnn_hw.options.flow_file`.)
"""

from __future__ import annotations

import dataclasses
import html
import itertools
import shutil
import time
from pathlib import Path
from typing import Any, Literal
from xml.etree import ElementTree

from .config import Encoding
from .errors import BmcnnError, ConfigError
from .io_utils import read_toml, write_text_atomic
from .tables import check_table

CELL_PRESETS = {"linear": "ideal", "sinh": "rram-sinh", "1t1r": "rram-1t1r-sky130"}
"""Device preset of each value of the regression matrix's optional ``cell`` axis (sigma from the case)."""
MATRIX_AXES: dict[str, Any] = {
    "checkpoint": list[str], "tile": list[str], "encoding": list[Encoding], "sigma": list[float], "seed": list[int],
    "sim": list[Literal["icarus", "verilator"]], "cell": list[Literal["linear", "sinh", "1t1r"]]}
"""A regression file's ``[matrix]``: each axis a list of values (``cell`` optional, linear by default)."""
MATRIX_SETTINGS = {"physics_images": int, "spice_images": int, "rtl_outputs": int}
"""A regression file's optional ``[settings]``: images per check (defaults 100, 1) and RTL outputs per layer (100)."""


def matrix_cases(path: Path, checkpoints: list | None = None) -> tuple[dict, list[dict]]:
    """The regression settings and the list of cases (the cartesian product of [matrix]).

    ``checkpoints`` replaces the matrix's checkpoint list (``regress --checkpoint``).
    """
    data = check_table(read_toml(path), {"settings": dict, "matrix": dict}, str(path), required=("matrix",))
    settings = check_table(data.get("settings", {}), MATRIX_SETTINGS, f"{path}: [settings]")
    matrix = {**data["matrix"], "checkpoint": [str(c) for c in checkpoints]} if checkpoints else data["matrix"]
    keys = ("checkpoint", "tile", "encoding", "sigma", "seed", "sim")
    matrix = check_table(matrix, MATRIX_AXES, f"{path}: [matrix]", required=keys)
    empty = [k for k, values in matrix.items() if not values]
    if empty:
        raise ConfigError(f"{path}: [matrix] needs non-empty lists for {', '.join(empty)}")
    cells = matrix.get("cell", ["linear"])
    axes = keys + ("cell",)
    cases = [dict(zip(axes, values, strict=True)) for values in itertools.product(*(matrix[k] for k in keys), cells)]
    for k, case in enumerate(cases):
        case["override"] = bool(checkpoints)
        cell = "" if case["cell"] == "linear" else f"_{case['cell']}"
        case["name"] = f"case{k}_{Path(case['checkpoint']).name}_{case['tile']}_{case['encoding']}_s{case['sigma']}_" \
                       f"seed{case['seed']}_{case['sim']}{cell}"
    return settings, cases


def run_case(case: dict, settings: dict, work: Path, data_dir: Path) -> dict:
    """Compile, sample the chip, and check physics/SPICE/RTL against golden for one case."""
    from .build import build
    from .checks import physics_vs_golden, rtl_vs_golden, spice_vs_physics
    from .config import CrossbarGeometry, HardwareConfig
    from .data.mnist import load_mnist
    from .golden.chip import Chip, sized_readout
    from .presets import get_preset

    start = time.perf_counter()
    base = get_preset(CELL_PRESETS[case.get("cell", "linear")])
    device = dataclasses.replace(base, sigma_on_rel=case["sigma"], sigma_off_rel=case["sigma"])
    geometry = CrossbarGeometry.parse(case["tile"], encoding=case["encoding"])
    hardware = HardwareConfig(device=device, geometry=geometry, readout=sized_readout(device, geometry))
    model = build(Path(case["checkpoint"]), work / "build", hardware, chip_seed=case["seed"])
    test = load_mnist(data_dir, "test").images
    checks = [
        physics_vs_golden(model, test[: settings.get("physics_images", 100)]),
        spice_vs_physics(work / "build", test[: settings.get("spice_images", 1)]),
        rtl_vs_golden(model, test[:2], work / "rtl_check", sim=case["sim"], seed=case["seed"],
                      chip=Chip(model, device, case["seed"]), per_layer=settings.get("rtl_outputs", 100), tops=False,
                      build_dir=work / "build"),
    ]
    failures = [f"{c.name}: {c.detail}" for c in checks if not c.passed]
    if not failures:  # a passing case's build and simulator builds (~80 MB) are scratch; a failing one keeps them
        shutil.rmtree(work, ignore_errors=True)
    return {**case, "passed": not failures, "failures": failures, "checks": [f"{c.name}: {c.detail}" for c in checks],
            "seconds": round(time.perf_counter() - start, 2)}


def rerun_line(regression: Path, case: dict) -> str:
    """The command that re-runs one case alone."""
    override = f" --checkpoint {case['checkpoint']}" if case.get("override") else ""
    return f"bmcnn-hw regress {regression}{override} --case {case['name']}"


def write_reports(regression: Path, results: list[dict], out_dir: Path) -> list[Path]:
    """JUnit XML, Markdown and HTML summaries of a regression."""
    out_dir.mkdir(parents=True, exist_ok=True)
    suite = ElementTree.Element("testsuite", name="bmcnn-hw-regression", tests=str(len(results)),
                                failures=str(sum(not r["passed"] for r in results)),
                                time=str(sum(r["seconds"] for r in results)))
    for r in results:
        case = ElementTree.SubElement(suite, "testcase", classname="regression", name=r["name"], time=str(r["seconds"]))
        if not r["passed"]:
            failure = ElementTree.SubElement(case, "failure", message="; ".join(r["failures"])[:2000])
            failure.text = rerun_line(regression, r)
    junit = out_dir / "junit.xml"
    write_text_atomic(junit, ElementTree.tostring(suite, encoding="unicode") + "\n")
    lines = [f"# Regression {regression}", "", f"{sum(r['passed'] for r in results)}/{len(results)} cases passed.", "",
             "| case | result | seconds | re-run |", "|---|---|---|---|"]
    rows = []
    for r in results:
        verdict = "pass" if r["passed"] else "FAIL: " + "; ".join(r["failures"])
        lines.append(f"| {r['name']} | {verdict} | {r['seconds']} | `{rerun_line(regression, r)}` |")
        rows.append(f"<tr><td>{html.escape(r['name'])}</td><td>{html.escape(verdict)}</td><td>{r['seconds']}</td>"
                    f"<td><code>{html.escape(rerun_line(regression, r))}</code></td></tr>")
    markdown = out_dir / "summary.md"
    write_text_atomic(markdown, "\n".join(lines) + "\n")
    page = out_dir / "summary.html"
    write_text_atomic(page, "<!doctype html><meta charset=utf-8><title>bmcnn-hw regression</title>"
                            f"<h1>Regression {html.escape(str(regression))}</h1><table border=1>"
                            "<tr><th>case</th><th>result</th><th>seconds</th><th>re-run</th></tr>"
                            + "".join(rows) + "</table>\n")
    return [junit, markdown, page]


def _guarded_case(case: dict, settings: dict, work: Path, data_dir: Path) -> dict:
    try:
        return run_case(case, settings, work, data_dir)
    except BmcnnError as exc:
        return {**case, "passed": False, "failures": [str(exc)], "seconds": 0.0}


def run_regression(regression: Path, out_dir: Path, data_dir: Path, only: str | None = None, *,
                   workers: int = 1, scheduler: str | None = None, checkpoints: list | None = None) -> list[dict]:
    """Run every case (or the one named ``only``); a failing case does not stop the others.

    Cases run one after another (``workers=1``), on a local process pool, or on the Dask
    cluster at ``scheduler`` (tasks of a crashed worker are retried); results keep case order.
    """
    settings, cases = matrix_cases(regression, checkpoints)
    if only is not None:
        cases = [c for c in cases if c["name"] == only]
        if not cases:
            raise ConfigError(f"{regression}: no case named {only!r}")
    args = [(c, settings, out_dir / c["name"], data_dir) for c in cases]
    if scheduler:
        from .parallel import dask_client

        with dask_client(scheduler) as client:
            futures = [client.submit(_guarded_case, *a, retries=3, pure=False) for a in args]
            results = client.gather(futures)
    elif workers > 1:
        from .parallel import single_threaded_pool

        with single_threaded_pool(workers) as pool:
            results = list(pool.map(_guarded_case, *zip(*args, strict=True)))
    else:
        results = [_guarded_case(*a) for a in args]
    for r in results:
        print(f"{r['name']}: " + ("pass" if r["passed"] else "FAIL -> " + rerun_line(regression, r)), flush=True)
    return results
