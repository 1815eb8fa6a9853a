"""Benchmark: the golden physics executor (per-device variation) vs plain PyTorch inference,
at equal thread counts.

Both run the same trained network on the same test images in this process, once per thread
count: torch with ``torch.set_num_threads(n)``, the physics executor with its batches on
``n`` threads (BLAS one thread each, threadpoolctl). The ratio is physics seconds / torch
seconds. Also prints the cost of one sweep point (one chip: calibration, untuned and tuned
predictions, one thread: a sweep worker's) and the projected default sweep (11 sigmas x 10
chips x 10,000 images) on this machine's cores.

    python bench/bench_physics.py runs/demo/build [--images 10000] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

import numpy as np
import torch
from common import timed

from bmcnn_hw.artefact import load_model
from bmcnn_hw.data import load_mnist
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.golden.crossbar import physics_predictions, physics_predictions_shared
from bmcnn_hw.train.checkpoint import load_checkpoint
from bmcnn_hw.train.loop import predict
from bmcnn_hw.tune import calibrate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build", type=Path)
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--threads", default="1,2", help="thread counts to compare at (default 1,2)")
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/datasets/mnist"))
    args = parser.parse_args()
    model = load_model(args.build)
    net, _ = load_checkpoint(Path(model.provenance["checkpoint"]))
    test = load_mnist(args.data_dir, "test").head(args.images)
    calib = load_mnist(args.data_dir, "train").images[:256]
    device = dataclasses.replace(model.hardware.device, sigma_on_rel=0.2, sigma_off_rel=0.2)
    chip, chip_s = timed(Chip, model, device, 1)
    print(f"{model.model_config.get('name')}: {len(test)} test images, sigma 0.2 chip; {os.cpu_count()} cores")
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        torch_preds, torch_s = timed(predict, net, test.images)
        physics, physics_s = timed(physics_predictions, model, chip, test.images, threads=threads)
        print(f"{threads} thread(s): torch (eval, float) {torch_s:6.2f} s, accuracy "
              f"{(torch_preds == test.labels).mean():.4f}; physics {physics_s:6.2f} s, accuracy "
              f"{(physics == test.labels).mean():.4f}; ratio {physics_s / torch_s:.2f}x")
    tuning, calib_s = timed(calibrate, model, chip, calib)
    _, shared_s = timed(physics_predictions_shared, model, chip, test.images, [None, tuning.offsets])
    point_s = chip_s + calib_s + shared_s
    cores = os.cpu_count() or 1
    print(f"sweep point (chip {chip_s:.2f} s + calibration {calib_s:.2f} s + untuned and tuned {shared_s:.2f} s) "
          f"{point_s:.2f} s")
    full = 110 * (chip_s + calib_s + shared_s * 10000 / len(test)) / cores
    print(f"projected default sweep (110 points x 10,000 images, {cores} workers): {full / 60:.1f} min")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
