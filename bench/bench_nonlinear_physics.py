"""Benchmark: the physics executor on a build of nonlinear cells behind wires, today's path vs the
previous ones, on the same chip.

Baseline (measured first, in the same run): the path before the mesh iteration: every tile's
chord matrix factorised (sparse LU, kept for the whole run) and each read's chord iteration
solved on it, every input vector solved, even repeated ones, on ``--images`` images in one
batch. Then the mesh path on those images in one batch (its trace must equal the baseline's),
and what ``evaluate --backend physics`` runs, on the first ``--fast-images`` test images in
batches of 256 sharing one reader: distinct input vectors of a batch only, each iterated on
the mesh (rows and columns in turn, compiled, one read per thread), the sparse path only for
reads that do not settle; once without the code memo (every batch solves its own reads, the
previous release) and once with it (a read solved in an earlier batch is served from its kept
codes, :mod:`bmcnn_hw.golden.code_memo`). Each run is its own process, so the peak resident
memory of each is its own. Prints seconds per image, the ratios to the baseline, peak memory,
the reads each path solved or served, and whether the traces (every layer's accumulators,
activations and class scores) are equal: baseline = mesh on the same images (the ADC codes
agree; the currents differ within the solvers' 1e-11 V tolerance), memo = no memo bit for bit.

    python bench/bench_nonlinear_physics.py BUILD_DIR [--images 16] [--fast-images 1024] [--data-dir DIR]
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
from bmcnn_hw.golden.code_memo import BUDGET_BYTES
from bmcnn_hw.golden.crossbar import run_crossbar
from bmcnn_hw.golden.tile_nonlinear import BATCH_ELEMENTS, NonlinearTile
from bmcnn_hw.golden.tile_reader import PhysicsReader


class _PreviousTile(NonlinearTile):
    """The previous read path: sparse chord iteration on every vector, in chunks, no mesh, no de-duplication."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs, mesh=False)

    def read_reusable(self, volts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows, cols = self.r.shape
        batch = max(1, BATCH_ELEMENTS // (rows * cols))
        parts = [self._read_sparse(volts[start:start + batch]) for start in range(0, len(volts), batch)]
        self.served["sparse"] += len(volts)
        return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                np.zeros(len(volts), dtype=bool))


class _PreviousReader(PhysicsReader):
    """A PhysicsReader whose nonlinear tiles take the previous path."""

    nonlinear_tile_class = _PreviousTile


def _run(build: str, data_dir: str, images: int, path: str, batch: int) -> dict:
    """One path (``previous``, ``mesh`` or ``memo``) in a fresh process: seconds, the layer traces of
    its batches, peak RSS, reads served."""
    model = load_model(Path(build))
    data = load_mnist(Path(data_dir), "test").head(images)
    chip = Chip.of_build(model)
    reader = _PreviousReader(chip, memo_bytes=0) if path == "previous" else \
        PhysicsReader(chip, memo_bytes=0 if path == "mesh" else BUDGET_BYTES)
    start = time.perf_counter()
    traces = [run_crossbar(model, data.images[k:k + batch], reader)[0] for k in range(0, images, batch)]
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "traces": traces, "rss_mb": peak_mb, "served": reader.nonlinear_reads(),
            "images": images}


def _in_process(*args) -> dict:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_run, args)


def _line(name: str, run: dict, base: dict | None) -> str:
    per_image = run["seconds"] / run["images"]
    ratio = f", {base['seconds'] / base['images'] / per_image:5.1f}x the baseline" if base else ""
    served = run["served"]
    return (f"{name:<28}: {per_image:7.3f} s per image on {run['images']:,} images{ratio}, peak {run['rss_mb']:,.0f} "
            f"MB; reads solved: {served['mesh']:,} mesh, {served['sparse']:,} sparse LU; served from the memo: "
            f"{served['memo']:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build", help="a build of nonlinear cells (sinh or 1T1R) with wire resistance")
    parser.add_argument("--images", type=int, default=16, help="test images of the baseline, one batch")
    parser.add_argument("--fast-images", type=int, default=1024,
                        help="test images of today's path, in batches of 256 (evaluate's)")
    parser.add_argument("--data-dir", default="../shared/datasets/mnist", help="MNIST IDX directory")
    args = parser.parse_args()
    n = args.images
    old = _in_process(args.build, args.data_dir, n, "previous", n)
    same_images = _in_process(args.build, args.data_dir, n, "mesh", n)
    plain = _in_process(args.build, args.data_dir, args.fast_images, "mesh", 256)
    memo = _in_process(args.build, args.data_dir, args.fast_images, "memo", 256)
    print(_line("sparse LU, every vector", old, None))
    print(_line("mesh, one batch", same_images, old))
    print(_line("mesh, 256 per batch", plain, old))
    print(_line("mesh + memo, 256 per batch", memo, old))
    same = all(a.same_as(b) for a, b in zip(old["traces"], same_images["traces"], strict=True))
    exact = all(a.same_as(b) for a, b in zip(plain["traces"], memo["traces"], strict=True))
    print(f"traces equal: sparse LU = mesh on the same {n} images: {same}; memo = no memo on "
          f"{args.fast_images:,} images: {exact}")


if __name__ == "__main__":
    main()
