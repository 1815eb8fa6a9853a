"""Benchmark: the golden physics executor (per-device variation) vs plain PyTorch inference.

Both run the same trained network on the same test images in this process; the ratio is
physics seconds / torch seconds. Also prints the cost of one sweep point (one chip:
calibration, untuned and tuned predictions) and the projected default sweep
(11 sigmas x 10 chips x 10,000 images) on this machine's cores.

    python bench/bench_physics.py runs/demo/build [--images 10000] [--threads 2]
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
    parser.add_argument("--threads", type=int, default=2, help="torch threads (BLAS uses the machine default)")
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/datasets/mnist"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.build)
    net, _ = load_checkpoint(Path(model.provenance["checkpoint"]))
    test = load_mnist(args.data_dir, "test").head(args.images)
    calib = load_mnist(args.data_dir, "train").images[:256]
    device = dataclasses.replace(model.hardware.device, sigma_on_rel=0.2, sigma_off_rel=0.2)
    chip, chip_s = timed(Chip, model, device, 1)
    torch_preds, torch_s = timed(predict, net, test.images)
    physics, physics_s = timed(physics_predictions, model, chip, test.images)
    tuning, calib_s = timed(calibrate, model, chip, calib)
    _, shared_s = timed(physics_predictions_shared, model, chip, test.images, [None, tuning.offsets])
    point_s = chip_s + calib_s + shared_s
    cores = os.cpu_count() or 1
    print(f"{model.model_config.get('name')}: {len(test)} test images, sigma 0.2 chip; {cores} cores")
    print(f"torch (eval, float)       {torch_s:7.2f} s   1.00x   accuracy {(torch_preds == test.labels).mean():.4f}")
    print(f"physics executor          {physics_s:7.2f} s   {physics_s / torch_s:.2f}x   "
          f"accuracy {(physics == test.labels).mean():.4f}")
    print(f"sweep point (chip {chip_s:.2f} s + calibration {calib_s:.2f} s + untuned and tuned {shared_s:.2f} s) "
          f"{point_s:.2f} s")
    full = 110 * (chip_s + calib_s + shared_s * 10000 / len(test)) / cores
    print(f"projected default sweep (110 points x 10,000 images, {cores} workers): {full / 60:.1f} min")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
