"""Worked example: train a binarized CNN in Brevitas, export it to QONNX, for ``bmcnn-hw import``.

    python examples/brevitas_mnist.py -o bnn.onnx [--data-dir DIR] [--steps 600] [--seed 0]

The network is a plain Brevitas BNN (binary weights and activations, batch norm, max pool);
nothing in it is specific to bmcnn-hw except two choices that make the import exact
(docs/guide/models.md, "Bring your own network"):

* the input quantizer is unsigned 8-bit with the constant power-of-two scale 2**-8, so the
  graph's input for a pixel p is p / 256 and its integer code is the pixel itself;
* the binary weight quantizer's scale is the constant 1.0 (Brevitas's default binary weight
  quantizer uses 0.1, which float32 cannot represent exactly; the import still works, but
  the source graph's float32 sums are then rounded and can disagree at ties).

Needs ``brevitas`` (and ``onnxoptimizer`` for the export): ``pip install -e '.[dev]'``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

with warnings.catch_warnings():  # brevitas warns about optional CUDA kernels on import
    warnings.simplefilter("ignore")
    import brevitas.nn as qnn
    from brevitas.export import export_qonnx
    from brevitas.inject.enum import RestrictValueType, ScalingImplType
    from brevitas.quant import (
        SignedBinaryActPerTensorConst,
        SignedBinaryWeightPerTensorConst,
        Uint8ActPerTensorFixedPoint,
    )


class PixelQuant(Uint8ActPerTensorFixedPoint):
    """Unsigned 8-bit input quantizer with the constant scale 2**-8 (codes = pixels)."""

    scaling_impl_type = ScalingImplType.CONST
    restrict_scaling_type = RestrictValueType.POWER_OF_TWO
    max_val = 1.0


class UnitBinaryWeight(SignedBinaryWeightPerTensorConst):
    """Binary weights {-1, +1} (scale 1.0; the Brevitas default is 0.1)."""

    scaling_const = 1.0


def build_bnn(channels: int = 16, hidden: int = 64, weight_quant=UnitBinaryWeight) -> nn.Sequential:
    """conv5x5 (binary) -> BN -> sign -> maxpool2 -> fc (binary) -> BN -> sign -> fc10 (binary)."""
    return nn.Sequential(
        qnn.QuantIdentity(act_quant=PixelQuant),
        qnn.QuantConv2d(1, channels, 5, bias=False, weight_quant=weight_quant),
        nn.BatchNorm2d(channels),
        qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst),
        nn.MaxPool2d(2),
        nn.Flatten(),
        qnn.QuantLinear(channels * 12 * 12, hidden, bias=False, weight_quant=weight_quant),
        nn.BatchNorm1d(hidden),
        qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst),
        qnn.QuantLinear(hidden, 10, bias=False, weight_quant=weight_quant),
    )


def pixels_to_input(images: np.ndarray) -> torch.Tensor:
    """uint8 images (N, 28, 28) -> the graph's float input (N, 1, 28, 28): p / 256."""
    return torch.from_numpy(images.astype(np.float32) / 256.0)[:, None]


def train_bnn(model: nn.Module, images: np.ndarray, labels: np.ndarray, *, steps: int, seed: int,
              batch: int = 100, lr: float = 3e-3, logit_scale: float = 0.125) -> None:
    """``steps`` Adam steps on random batches of (images, labels), seeded.

    The loss sees the integer class scores times ``logit_scale`` (a temperature for training
    only; the exported graph's scores stay the integer sums of +-1 products).
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        pick = rng.integers(0, len(labels), batch)
        loss = nn.functional.cross_entropy(model(pixels_to_input(images[pick])) * logit_scale,
                                           torch.from_numpy(labels[pick].astype(np.int64)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def export_bnn(model: nn.Module, path: Path) -> None:
    """The QONNX file of ``model`` (batch size 1, as Brevitas's default exporter writes it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(model, torch.zeros(1, 1, 28, 28), export_path=str(path))


def main(argv: list[str] | None = None) -> int:
    """Train on MNIST from ``--data-dir`` and write the QONNX file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="directory with the MNIST IDX files (default: $BMCNN_HW_DATA, "
                                                      "else the cache filled by `bmcnn-hw data fetch`)")
    parser.add_argument("-o", "--out", type=Path, required=True, help="QONNX file to write")
    parser.add_argument("--steps", type=int, default=600, help="training steps of 100 images (default 600)")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialisation and batches (default 0)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bmcnn_hw.commands import _data_dir
    from bmcnn_hw.data.mnist import load_mnist

    train = load_mnist(_data_dir(args), "train")
    torch.manual_seed(args.seed)
    model = build_bnn()
    train_bnn(model, train.images, train.labels, steps=args.steps, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    export_bnn(model, args.out)
    print(f"wrote {args.out} (Brevitas BNN, {args.steps} steps, seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
