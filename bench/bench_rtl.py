"""Benchmark: vectors/s through one layer periphery on Icarus vs Verilator (cocotb), and cocotb
overhead vs the Amaranth simulator on the same vectors.

Vectors are the golden ADC codes of real MNIST images through the trained-like reference
model's conv0 periphery (8 bit planes: 8 beats per output). Baseline for the ratios: the
Amaranth simulator (pure Python), measured in the same run. Build time is reported apart.

    python bench/bench_rtl.py [--outputs 2000] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
from common import timed

from bmcnn_hw.cosim.rtl_check import layer_codes
from bmcnn_hw.cosim.runner import run_stream_tb
from bmcnn_hw.cosim.scenarios import periphery_scenario
from bmcnn_hw.data import load_mnist
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.golden.crossbar import run_crossbar
from bmcnn_hw.golden.tile_reader import PhysicsReader
from bmcnn_hw.rtl.emit import write_rtl
from bmcnn_hw.rtl.periphery import periphery_for_layer
from bmcnn_hw.rtl.reference import reference_model


def amaranth_run(layer, scenario: dict) -> float:
    """Seconds to push the scenario's beats through the Amaranth simulator (no stalls)."""
    from amaranth.sim import Simulator

    dut = periphery_for_layer(layer)
    beats = [s["beat"] for s in scenario["steps"] if "beat" in s]

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for code, plane, channel, first, last, group_last in beats:
            ctx.set(dut.i.payload, {"code": code, "plane": plane, "channel": channel, "first": first,
                                    "last": last, "group_last": group_last})
            ctx.set(dut.i.valid, 1)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    start = time.perf_counter()
    sim.run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outputs", type=int, default=2000, help="periphery outputs (8 beats each)")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("BMCNN_HW_TEST_DATA",
                                                                             "../shared/datasets/mnist")))
    args = parser.parse_args()
    model = reference_model()
    images = load_mnist(args.data_dir, "test").images[:5]
    trace, acc = run_crossbar(model, images, PhysicsReader(Chip(model)), record=True)
    layer = model.layers[0]
    golden = trace.accumulators[0].reshape(-1, layer.cols)
    rng = np.random.default_rng(0)
    picks = np.stack([rng.integers(0, len(golden), args.outputs), rng.integers(0, layer.cols, args.outputs)], 1)
    scenario = periphery_scenario(layer, golden, layer_codes(acc.reads, 0), picks, write_prob=0, reset_prob=0,
                                  idle_prob=0, stall_prob=0)
    beats = sum("beat" in s for s in scenario["steps"])
    base_s = amaranth_run(layer, scenario)
    print(f"{len(scenario['expected'])} outputs, {beats} beats through periphery_conv0")
    print(f"{'amaranth sim (baseline)':26s} {beats / base_s:9.0f} beats/s")
    with tempfile.TemporaryDirectory() as tmp:
        write_rtl(model, Path(tmp) / "rtl")
        for sim in ("icarus", "verilator"):
            _, total_s = timed(run_stream_tb, Path(tmp) / "rtl" / "periphery_conv0.v", "periphery_conv0", scenario,
                               Path(tmp) / sim, sim)
            case = ElementTree.parse(Path(tmp) / sim / "results.xml").find(".//testcase")
            sim_s = float(case.get("time"))
            print(f"{'cocotb + ' + sim:26s} {beats / sim_s:9.0f} beats/s   ratio {base_s / sim_s:5.2f}x the Amaranth "
                  f"simulator (test {sim_s:.1f} s; with build {total_s:.1f} s)")


if __name__ == "__main__":
    main()
