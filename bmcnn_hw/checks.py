"""The agreement checks every flow runs (demo, regress): one function per comparison, typed results.

Each comparison has one rule, named once:

- physics executor on an ideal chip vs the integer golden model: every accumulator and
  output identical (exact);
- SPICE vs physics on the build's chip: :func:`~bmcnn_hw.spice.report.disagreeing_layers`
  (column currents within the cell type's ``AGREEMENT_RTOL``, ADC codes equal except at a
  rounding boundary inside it), and the same classes;
- RTL vs golden: every output of every testbench bit for bit, error register 0.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .artefact import CompiledModel
from .golden.chip import Chip
from .golden.crossbar import run_crossbar
from .golden.integer import run_integer
from .golden.tile_reader import PhysicsReader


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one agreement check."""

    name: str
    passed: bool
    detail: str
    """One line: what was compared, on how much, and the first disagreement if any."""
    seconds: float


def ideal_chip(model: CompiledModel) -> Chip:
    """The build's device model without variation or wire/source resistance (seed 0)."""
    device = dataclasses.replace(model.hardware.device, sigma_on_rel=0.0, sigma_off_rel=0.0, r_wire_ohm=0.0,
                                 r_source_ohm=0.0, sigma_vth_v=0.0)
    return Chip(model, device, 0)


def physics_vs_golden(model: CompiledModel, images: np.ndarray, chip: Chip | None = None) -> CheckResult:
    """The physics executor on ``chip`` (default: :func:`ideal_chip`, with ideal sense comparators)
    equals the integer golden model."""
    start = time.perf_counter()
    if chip is None:  # ideal comparators too: a sense layer's offsets are the readout's, not the devices'
        readout = dataclasses.replace(model.hardware.readout, comparator_offset_v=0.0)
        model = dataclasses.replace(model, hardware=dataclasses.replace(model.hardware, readout=readout))
    physics, _ = run_crossbar(model, images, PhysicsReader(chip or ideal_chip(model)), count_energy=False)
    golden = run_integer(model, images)
    passed = physics.same_as(golden)
    detail = (f"{len(images)} images, every accumulator and activation identical" if passed else
              f"{len(images)} images: the physics executor differs from the integer golden model in layer(s) "
              + ", ".join(layer.name for layer, a, b in zip(model.layers, physics.accumulators, golden.accumulators,
                                                            strict=True) if not np.array_equal(a, b)))
    return CheckResult("crossbar physics vs golden", passed, detail, time.perf_counter() - start)


def spice_vs_physics(build_dir: Path, images: np.ndarray, *, jobs: int = 1, engine: str = "ngspice") -> CheckResult:
    """Every crossbar read of ``images`` through the build's netlists in SPICE (``engine``: ngspice,
    vacask or auto) vs the physics model of the build's chip (same devices), and the classes of both."""
    from .spice.report import disagreeing_layers, spice_report

    start = time.perf_counter()
    report = spice_report(build_dir, images, jobs=jobs, engine=engine)
    bad = disagreeing_layers(report)
    worst = max((row["max_rel_current_error"] for row in report["layers"]), default=0.0)
    spice, physics = report["predictions_spice"], report["predictions_physics"]
    name = report["engine"].split()[0]
    detail = (f"{len(images)} images, {report['ngspice_solves']} {name} solves, max relative current error "
              f"{worst:.1e}, classes {spice} " + ("= physics" if spice == physics else f"!= physics {physics}"))
    if bad:
        detail += f"; SPICE differs from physics in {', '.join(bad)}"
    return CheckResult(f"SPICE ({name}) vs physics", not bad and spice == physics, detail,
                       time.perf_counter() - start)


def rtl_vs_golden(model: CompiledModel, images: np.ndarray, work_dir: Path, *, sim: str = "icarus", seed: int = 0,
                  chip: Chip | None = None, per_layer: int = 200, tops: bool = True,
                  build_dir: Path | None = None, keep_work: bool = False) -> CheckResult:
    """Every layer's periphery (and, with ``tops``, layer top) in a cocotb testbench on golden vectors:
    the Verilog of ``build_dir``'s own ``rtl/`` after its hashes are checked (what is handed off),
    or without a build the model's Verilog emitted into ``work_dir``. ``work_dir`` (simulator
    builds, hundreds of MB) is removed when every check passes, unless ``keep_work``; a failing
    check keeps it (logs, VCD) and the result says where."""
    from .cosim.rtl_check import check_rtl
    from .rtl.emit import verified_rtl

    start = time.perf_counter()
    rtl_dir = None if build_dir is None else verified_rtl(build_dir, model)
    checks = check_rtl(model, images, work_dir, sim=sim, per_layer=per_layer, seed=seed, chip=chip, tops=tops,
                       rtl_dir=rtl_dir)
    failed = [c for c in checks if not c.passed]
    detail = f"{failed[0].message} (simulator builds, logs and VCD kept in {work_dir})" if failed else (
        f"{sum(c.outputs for c in checks)} outputs of {len(checks)} modules bit-exact, with stalls, register "
        "writes and resets")
    if not failed and not keep_work:
        shutil.rmtree(work_dir, ignore_errors=True)
    return CheckResult(f"RTL ({sim}, cocotb) vs golden", not failed, detail, time.perf_counter() - start)
