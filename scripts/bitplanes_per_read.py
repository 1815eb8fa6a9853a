"""Price k input bit planes per read against bit-serial reads, from a build and its ppa.json.

    python scripts/bitplanes_per_read.py BUILD_DIR [--ppa BUILD_DIR/ppa/ppa.json]

Prints one Markdown table per layer with multi-bit crossbar inputs (see bmcnn_hw/ppa/bitplanes.py
for the model).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bmcnn_hw.artefact import load_model
from bmcnn_hw.ppa.bitplanes import plane_group_table, plane_groups
from bmcnn_hw.ppa.cost_model import load_cost_model


def main() -> int:
    """Print the tables; 2 on a missing report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build", type=Path, help="build directory (bmcnn-hw compile)")
    parser.add_argument("--ppa", type=Path, help="its ppa.json (default BUILD/ppa/ppa.json)")
    args = parser.parse_args()
    report_path = args.ppa or args.build / "ppa" / "ppa.json"
    if not report_path.is_file():
        print(f"{report_path}: no ppa.json; run `bmcnn-hw ppa {args.build}` first", file=sys.stderr)
        return 2
    report = json.loads(report_path.read_text())
    model, cost = load_model(args.build), load_cost_model(Path(report["cost_model"]))
    for layer in model.layers:
        if layer.digital or layer.input_bits < 2:
            continue
        print(f"## {layer.name}: {layer.input_bits}-bit inputs, {report['images']} test images\n")
        print(plane_group_table(plane_groups(layer, report["layers"][layer.name], cost)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
