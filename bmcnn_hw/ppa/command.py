"""``bmcnn-hw ppa``: run the PPA flow on a build and write ppa.json, ppa.md and ppa.png atomically."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..io_utils import replaced_directory, write_json_atomic, write_text_atomic
from .cost_model import load_cost_model
from .flow import run_ppa
from .records import PpaOptions
from .summary import format_markdown, plot_breakdown
from .tools import DEFAULT_CELL_MODELS, DEFAULT_LIBERTY, require_file, require_tool

OUTPUTS = ("ppa.json", "ppa.md", "ppa.png")


def check_out_dir(out: Path) -> None:
    """Refuse an output path that exists and is not an earlier PPA report (checked before any work)."""
    if out.exists() and not (out.is_dir() and (out / "ppa.json").is_file()):
        raise ConfigError(f"{out}: exists and is not a PPA output directory (no ppa.json); refusing to replace it")


def options_from_args(args: Any) -> PpaOptions:
    """PpaOptions from ``ppa``'s command options (:class:`bmcnn_hw.options.PpaCommandOptions`), with
    the tools and files checked up front.

    Raises:
        ConfigError: a Liberty file without the Verilog models of its cells for the gate-level
            simulation (or the reverse).
        ToolNotFound: yosys, sta, iverilog or a named file missing.
    """
    liberty, models = args.liberty, args.cell_models
    if (liberty is None) != (models is None) and not args.no_digital:
        raise ConfigError("--liberty and --cell-models go together: the gate-level simulation that measures "
                          "switching activity needs the Verilog models of the Liberty file's cells")
    options = PpaOptions(liberty=liberty or DEFAULT_LIBERTY, cell_models=models or DEFAULT_CELL_MODELS,
                         cost_model=args.cost_model, clock_mhz=args.clock_mhz, activity_beats=args.activity_beats,
                         digital=not args.no_digital, columns_per_adc=args.columns_per_adc, engine=args.engine)
    check_tools(options)
    return options


def check_tools(options: PpaOptions) -> None:
    """Load the cost model, find VACASK where it is the engine and, for the digital flow, Yosys,
    OpenSTA, Icarus and the cell files.

    Raises:
        ConfigError: a bad cost-model file.
        ToolNotFound: a missing tool or file (with the apt line).
    """
    load_cost_model(options.cost_model)
    if options.engine == "vacask":
        from ..spice.vacask import openvaf_command

        openvaf_command()  # VACASK and its Verilog-A compiler
    if options.digital:
        require_tool("yosys")
        require_tool("sta")
        require_file(options.liberty, "Liberty file")
        require_file(options.cell_models, "cell Verilog models")
        _check_cell_files(options.liberty, options.cell_models)
        from ..rtl.simulators import check_simulator

        check_simulator("icarus")


def _check_cell_files(liberty: Path, cell_models: Path) -> None:
    """A Liberty library with at least one flip-flop, and Verilog with modules: checked before the
    tools run, so that garbage is named here rather than in a log of a run that never finishes."""
    from .liberty import liberty_cells

    for option, path in (("--liberty", liberty), ("--cell-models", cell_models)):
        try:
            Path(path).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{option} {path}: cannot be read as text ({exc})") from None
    cells, models = liberty_cells(Path(liberty)), Path(cell_models).read_text()
    if not any(sequential for sequential, _ in cells.values()):
        raise ConfigError(f"--liberty {liberty}: not a Liberty library with flip-flops (no cell with an ff group)")
    if not re.search(r"^\s*module\s+\w+", models, re.MULTILINE):
        raise ConfigError(f"--cell-models {cell_models}: no Verilog module in it")


def write_report(report: dict[str, Any], staging: Path) -> None:
    """ppa.json, ppa.md and the stacked-bar plot ppa.png into ``staging``."""
    write_json_atomic(staging / "ppa.json", report)
    write_text_atomic(staging / "ppa.md", format_markdown(report))
    plot_breakdown(report, staging / "ppa.png")


def run_command(build: Path, images: np.ndarray, out: Path, options: PpaOptions,
                progress: bool = True) -> dict[str, Any]:
    """Run the flow into a sibling temp directory and rename it to ``out`` when everything is written."""
    with replaced_directory(out) as staging:
        report = run_ppa(build, images, staging, options, progress=progress)
        write_report(report, staging)
    return report
