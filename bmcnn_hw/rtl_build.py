"""A model's Verilog written out, measured and checked: what ``bmcnn-hw rtl`` does, as functions a
script can call (:func:`run_rtl` for all of it, or each step alone)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .artefact import CompiledModel, record_files
from .cosim.rtl_check import LayerCheck, check_rtl
from .io_utils import staged_files
from .rtl.emit import write_rtl


@dataclass(frozen=True)
class ModuleQuality:
    """One Verilog file's Yosys cell count and Verilator lint warnings (None: not measured)."""

    module: str
    cells: int | None = None
    warnings: list[str] | None = None


@dataclass
class RtlReport:
    """What :func:`run_rtl` wrote and found: the files with their SHA-256, per-module quality, and
    the testbench checks (``scratch`` keeps the simulator work of a failing check)."""

    out: Path
    files: dict[str, str]
    quality: list[ModuleQuality] = field(default_factory=list)
    checks: list[LayerCheck] = field(default_factory=list)
    scratch: Path | None = None

    @property
    def ok(self) -> bool:
        """No lint warning and every check bit-exact."""
        return all(not q.warnings for q in self.quality) and all(c.passed for c in self.checks)


def write_model_rtl(model: CompiledModel, out: Path, build_dir: Path | None = None) -> dict[str, str]:
    """Write ``model``'s Verilog and register maps into ``out``, all files or none (a full disk or
    Ctrl-C leaves ``out`` as it was); returns ``out``-name/file -> SHA-256. When ``out`` is the
    build's own ``rtl/``, the build's manifest lists the new hashes."""
    out = Path(out)
    with staged_files(out) as staging:
        staged = write_rtl(model, staging)
    files = {f"{out.name}/{Path(name).name}": digest for name, digest in staged.items()}
    if build_dir is not None and out.resolve() == (Path(build_dir) / "rtl").resolve():
        record_files(Path(build_dir), files)
    return files


def module_quality(out: Path, files: dict[str, str], *, stats: bool, lint: bool) -> list[ModuleQuality]:
    """Per Verilog file of ``files`` (in ``out``): Yosys cells (``stats``) and lint warnings (``lint``)."""
    from .rtl.quality import cell_stats
    from .rtl.quality import lint as verilator_lint

    rows = []
    for name in sorted(f for f in files if f.endswith(".v")):
        path = Path(out) / Path(name).name
        rows.append(ModuleQuality(path.stem, cell_stats(path, path.stem)["cells"] if stats else None,
                                  verilator_lint(path) if lint else None))
    return rows


def check_written_rtl(model: CompiledModel, images: np.ndarray, out: Path, *, sim: str,
                      keep_work: bool = False) -> tuple[list[LayerCheck], Path | None]:
    """Every layer's cocotb testbenches on the Verilog in ``out`` (the files just written) against
    golden on ``images``; returns the checks and the scratch directory, kept where a check failed
    or ``keep_work`` (None where removed: simulator builds are hundreds of MB)."""
    scratch = Path(out).parent / "rtl_check"
    checks = check_rtl(model, images, scratch, sim=sim, rtl_dir=Path(out))
    if all(c.passed for c in checks) and not keep_work:
        shutil.rmtree(scratch, ignore_errors=True)
        return checks, None
    return checks, scratch


def run_rtl(model: CompiledModel, out: Path, *, build_dir: Path | None = None, stats: bool = False,
            lint: bool = False, check_images: np.ndarray | None = None, sim: str = "icarus",
            keep_work: bool = False) -> RtlReport:
    """Write ``model``'s RTL into ``out`` (:func:`write_model_rtl`), then measure it (:func:`module_quality`)
    and check it on ``check_images`` (:func:`check_written_rtl`), each where asked."""
    files = write_model_rtl(model, out, build_dir)
    report = RtlReport(Path(out), files)
    if stats or lint:
        report.quality = module_quality(out, files, stats=stats, lint=lint)
    if check_images is not None and len(check_images):
        report.checks, report.scratch = check_written_rtl(model, check_images, out, sim=sim, keep_work=keep_work)
    return report
