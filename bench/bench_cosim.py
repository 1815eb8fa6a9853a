"""Benchmark: co-simulation seconds per image of a build, with the share of SPICE, RTL and Python.

    python bench/bench_cosim.py BUILD_DIR [--images 1] [--sim icarus] [--data-dir DIR]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build", type=Path)
    parser.add_argument("--images", type=int, default=1)
    parser.add_argument("--sim", default="icarus", choices=["icarus", "verilator"])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("BMCNN_HW_TEST_DATA",
                                                                             "../shared/datasets/mnist")))
    args = parser.parse_args()
    model = load_model(args.build)
    chip = Chip.of_build(model)
    images = load_mnist(args.data_dir, "test").images[: args.images]
    with tempfile.TemporaryDirectory() as tmp:
        report, total = timed(cosimulate, args.build, images, chip, Path(tmp), sim=args.sim, progress=False)
    shares = {key: sum(row[f"seconds_{key}"] for row in report["layers"]) for key in ("spice", "rtl", "python")}
    print(f"{args.build}: {total / args.images:.1f} s per image ({args.images} image(s), {args.sim}); "
          f"mismatches {report['mismatches']}")
    shares["other"] = total - sum(shares.values())  # emitting the RTL, loading, reports
    for key, seconds in shares.items():
        print(f"  {key:7s} {seconds / args.images:7.1f} s per image  {100 * seconds / total:5.1f} %")
    for row in report["layers"]:
        print(f"  {row['layer']:6s} SPICE {row['seconds_spice']:6.1f} s  RTL {row['seconds_rtl']:6.1f} s  "
              f"Python {row['seconds_python']:6.1f} s")


if __name__ == "__main__":
    main()
