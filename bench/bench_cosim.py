"""Benchmark: co-simulation seconds per image of a build, today's path against the fast one.

Baseline (measured first, in the same run): one image with the cocotb testbench on Icarus
(Python drives every beat), the path `cosim --sim icarus` takes. Fast path: ``--images``
images in one run (each tile netlist loaded into ngspice once for all of them) with each
layer top in a compiled Verilator harness fed through a pipe (`cosim --sim verilator`),
first with an empty harness cache (the Verilator builds counted), then again with the
builds cached. Shares of SPICE, RTL and Python per image, and the ratios.

    python bench/bench_cosim.py BUILD_DIR [--images 10] [--workers 1] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from common import timed

from bmcnn_hw.artefact import load_model
from bmcnn_hw.cosim.cosim import cosimulate
from bmcnn_hw.data import load_mnist
from bmcnn_hw.golden.chip import Chip


def _run(build: Path, images, chip, sim: str, jobs: int) -> float:
    """Seconds per image of one co-simulation; prints its shares."""
    with tempfile.TemporaryDirectory() as tmp:
        report, total = timed(cosimulate, build, images, chip, Path(tmp), sim=sim, progress=False, spice_jobs=jobs)
    assert report["mismatches"] == 0, report["first_mismatch"]
    shares = {key: sum(row[f"seconds_{key}"] for row in report["layers"]) for key in ("spice", "rtl", "python")}
    shares["other"] = total - sum(shares.values())  # emitting the RTL, loading, reports
    n = len(images)
    print(f"  {total / n:6.2f} s per image ({n} image(s), {sim}, {jobs} ngspice process(es)); mismatches 0; "
          + ", ".join(f"{key} {seconds / n:.2f} s" for key, seconds in shares.items()))
    return total / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build", type=Path)
    parser.add_argument("--images", type=int, default=10, help="images of the fast path (default 10)")
    parser.add_argument("--workers", type=int, default=1, help="ngspice processes, both paths (default 1)")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("BMCNN_HW_TEST_DATA",
                                                                             "../shared/datasets/mnist")))
    args = parser.parse_args()
    model = load_model(args.build)
    chip = Chip.of_build(model)
    images = load_mnist(args.data_dir, "test").images[: args.images]
    print(f"{args.build}: co-simulation, chip seed {chip.seed}")
    print("baseline: cocotb + Icarus, 1 image")
    base = _run(args.build, images[:1], chip, "icarus", args.workers)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["BMCNN_HW_CACHE"] = cache  # an empty harness cache: the first run builds
        print(f"fast path, {args.images} images, Verilator builds included")
        cold = _run(args.build, images, chip, "verilator", args.workers)
        print(f"fast path, {args.images} images, Verilator builds cached")
        warm = _run(args.build, images, chip, "verilator", args.workers)
    print(f"speed-up per image: {base / cold:.1f}x with the builds, {base / warm:.1f}x with them cached")


if __name__ == "__main__":
    main()
