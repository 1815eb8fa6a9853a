"""Benchmark (a): many input vectors through one loaded 128 x 128 tile vs one ngspice run per vector.

Baseline: for each vector, load the netlist (`source`), set the rows, solve `op`, read the
currents. Loaded: the netlist is loaded once; (1) `alter` + `op` per vector; (2) superposition
(one solve per row, then exact sums). Prints vectors/s and the ratios to the baseline.

    python bench/bench_spice_vectors.py [--vectors 500] [--baseline-vectors 8]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from common import timed

from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.spice.netlist import write_netlists
from bmcnn_hw.spice.ngspice import NgSpice
from bmcnn_hw.spice.run import SpiceReader
from tests.helpers import random_fc_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=500, help="vectors through the loaded tile")
    parser.add_argument("--baseline-vectors", type=int, default=8, help="vectors for the reload-per-vector baseline")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model = random_fc_model(128, 128, args.seed)
    chip = Chip(model)
    rng = np.random.default_rng(args.seed)
    volts = rng.integers(0, 2, (args.vectors, 128)) * chip.params.v_read_v
    with tempfile.TemporaryDirectory() as tmp:
        write_netlists(model, chip, Path(tmp))
        netlist = Path(tmp) / "fc0_r0_c0.cir"

        def reload_each(vs):
            for v in vs:
                NgSpice.get().current = None  # force a fresh `source`
                reader = SpiceReader(model, chip, Path(tmp), mode="per-vector")
                reader.read(0, 0, 0, v[None, :], 128)

        _, base_s = timed(reload_each, volts[: args.baseline_vectors])
        per_vector = SpiceReader(model, chip, Path(tmp), mode="per-vector")
        n_alter = min(args.vectors, 100)
        _, alter_s = timed(per_vector.read, 0, 0, 0, volts[:n_alter], 128)
        superpos = SpiceReader(model, chip, Path(tmp), mode="superposition")
        _, sup_s = timed(superpos.read, 0, 0, 0, volts, 128)
        assert netlist.exists()
    base = args.baseline_vectors / base_s
    alter = n_alter / alter_s
    sup = args.vectors / sup_s
    print(f"128x128 tile (256 device columns), seed {args.seed}")
    print(f"baseline: reload netlist + op per vector   {base:8.2f} vectors/s  ({args.baseline_vectors} vectors)")
    print(f"loaded once: alter + op per vector         {alter:8.2f} vectors/s  ratio {alter / base:6.1f}x")
    print(f"loaded once: superposition ({superpos.solves} solves)    {sup:8.2f} vectors/s  ratio {sup / base:6.1f}x "
          f"({args.vectors} vectors incl. characterisation)")


if __name__ == "__main__":
    main()
