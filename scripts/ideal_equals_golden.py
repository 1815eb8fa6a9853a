"""Check that a build's ideal chip (physics executor, no variation) equals the integer golden model
on every accumulator and activation of the whole MNIST test set.

    python scripts/ideal_equals_golden.py BUILD_DIR [BUILD_DIR ...] [--data-dir DIR]

Prints one line per build; exits 1 if any build differs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bmcnn_hw.artefact import load_model
from bmcnn_hw.checks import physics_vs_golden
from bmcnn_hw.data.mnist import load_mnist


def main() -> int:
    """Compare each build; 1 if any differs."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("builds", type=Path, nargs="+", metavar="BUILD_DIR")
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/datasets/mnist"),
                        help="directory with the MNIST IDX files (default ../shared/datasets/mnist)")
    args = parser.parse_args()
    images = load_mnist(args.data_dir, "test").images
    differs = 0
    for build in args.builds:
        model = load_model(build)
        result = physics_vs_golden(model, images)  # the ideal chip: the build's devices without variation or wires
        differs += not result.passed
        print(f"{build}: ADC bits {[layer.adc_bits for layer in model.layers]}; ideal physics vs golden: "
              f"{result.detail}")
    return 1 if differs else 0


if __name__ == "__main__":
    sys.exit(main())
