"""Benchmark: the physics executor on a build of nonlinear cells behind wires, today's path vs the
previous one, on the same images and chip.

Baseline (measured first, in the same run): the previous release's path: every tile's chord
matrix factorised (sparse LU, kept for the whole run) and each read's chord iteration solved
on it, every input vector solved, even repeated ones. Fast path: what ``evaluate --backend
physics`` runs now: distinct input vectors only, each iterated on the mesh (rows and columns
in turn, compiled, one read per thread), the sparse path only for reads that do not settle.
Each runs in its own process, so the peak resident memory of each is its own. Prints seconds
per image, the ratio, peak memory, the reads each path solved, and whether every layer's
accumulators, activations and class scores are equal (the ADC codes of both paths agree; the
currents differ within the solvers' 1e-11 V tolerance).

    python bench/bench_nonlinear_physics.py BUILD_DIR [--images 16] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time
from pathlib import Path

import numpy as np
from common import timed  # noqa: F401  (puts the repository on sys.path)

from bmcnn_hw.artefact import load_model
from bmcnn_hw.data.mnist import load_mnist
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.golden.crossbar import PhysicsReader, run_crossbar
from bmcnn_hw.golden.tile_nonlinear import BATCH_ELEMENTS, NonlinearTile


class _PreviousTile(NonlinearTile):
    """The previous read path: sparse chord iteration on every vector, in chunks, no mesh, no de-duplication."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs, mesh=False)

    def read(self, volts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows, cols = self.r.shape
        batch = max(1, BATCH_ELEMENTS // (rows * cols))
        parts = [self._read_sparse(volts[start:start + batch]) for start in range(0, len(volts), batch)]
        self.served["sparse"] += len(volts)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


class _PreviousReader(PhysicsReader):
    """A PhysicsReader whose nonlinear tiles take the previous path."""

    nonlinear_tile_class = _PreviousTile


def _run(build: str, data_dir: str, images: int, previous: bool) -> dict:
    """One path in a fresh process: seconds, the layer trace, peak RSS, reads served."""
    model = load_model(Path(build))
    data = load_mnist(Path(data_dir), "test").head(images)
    chip = Chip.of_build(model)
    reader = (_PreviousReader if previous else PhysicsReader)(chip)
    start = time.perf_counter()
    trace, _ = run_crossbar(model, data.images, reader)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "trace": trace, "rss_mb": peak_mb, "served": reader.nonlinear_reads()}


def _in_process(*args) -> dict:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_run, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build", help="a build of nonlinear cells (sinh or 1T1R) with wire resistance")
    parser.add_argument("--images", type=int, default=16, help="test images, one batch, the same for both paths")
    parser.add_argument("--data-dir", default="../shared/datasets/mnist", help="MNIST IDX directory")
    args = parser.parse_args()
    old = _in_process(args.build, args.data_dir, args.images, True)
    new = _in_process(args.build, args.data_dir, args.images, False)
    n = args.images
    print(f"previous path: {old['seconds'] / n:7.3f} s per image, peak {old['rss_mb']:,.0f} MB, "
          f"{old['served']['sparse']:,} reads solved (sparse LU)")
    print(f"mesh path    : {new['seconds'] / n:7.3f} s per image, peak {new['rss_mb']:,.0f} MB, "
          f"{new['served']['mesh']:,} distinct reads by the mesh, {new['served']['sparse']:,} by the sparse LU")
    same = old["trace"].same_as(new["trace"])
    print(f"speed-up {old['seconds'] / new['seconds']:.1f}x on {n} images; every layer's accumulators, "
          f"activations and scores equal: {same}")


if __name__ == "__main__":
    main()
