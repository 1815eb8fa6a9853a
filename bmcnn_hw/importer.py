"""``bmcnn-hw import``: a network trained elsewhere, as a checkpoint directory ``compile`` accepts.

Supported: a PyTorch ``state_dict`` saved with ``torch.save`` for a network described in this
project's architecture format (a shipped model name or a model TOML file). The keys and shapes
are those of :class:`~bmcnn_hw.train.model.BMCNN` for that description (``weights.<i>``: the
latent float weights, binarized by sign or quantized to the layer's fixed-point format when
compiled; ``norms.<i>.weight|bias|running_mean|running_var``: batch norm of each hidden layer;
``head.scale|bias``: the output layer's score affine). The checkpoint is the same artefact
``train`` writes, so every back end runs the imported network unchanged. QONNX/ONNX graphs are
not imported yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .errors import ConfigError, DataError
from .io_utils import sha256_file
from .train.checkpoint import save_checkpoint
from .train.model import BMCNN
from .train.registry import resolve_model


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``torch.save``-d state dict (loaded without unpickling code).

    Raises:
        DataError: the file is missing, not a torch file, or not a mapping of names to tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for files it cannot read  # noqa: BLE001
        raise DataError(f"{path}: not a PyTorch state_dict file (torch.load failed: {type(exc).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise DataError(f"{path}: expected a state_dict (names -> tensors), got {type(state).__name__}")
    return state


def _check_fits(state: dict[str, torch.Tensor], model: BMCNN, path: Path, arch: str) -> None:
    """One clear line for the first key that is missing, unexpected, misshapen or not finite."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    if missing:
        raise ConfigError(f"{path}: key {missing[0]!r} of {arch} is missing ({len(missing)} missing in all)")
    extra = [k for k in state if k not in expected]
    if extra:
        raise ConfigError(f"{path}: key {extra[0]!r} is not part of {arch} (expected keys: "
                          f"{', '.join(list(expected)[:6])}, ...)")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise ConfigError(f"{path}: key {key!r} has shape {tuple(tensor.shape)}, {arch} needs "
                              f"{tuple(expected[key].shape)}")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ConfigError(f"{path}: key {key!r} holds NaN or infinite values")


def import_state_dict(weights: Path, arch: str, out: Path) -> BMCNN:
    """Write checkpoint directory ``out`` for the state dict ``weights`` of architecture ``arch``.

    Raises:
        DataError: ``weights`` is not a readable state dict.
        ConfigError: ``arch`` is unknown or the state dict does not fit it (names the key).
    """
    config = resolve_model(arch, "--arch")
    if config.is_float:
        raise ConfigError(f"{arch}: a float baseline has no hardware form; import a binary or hybrid model")
    state = load_state_dict_file(weights)
    model = BMCNN(config)
    _check_fits(state, model, Path(weights), arch)
    model.load_state_dict(state)
    model.eval()
    source: dict[str, Any] = {"imported_from": str(Path(weights).resolve()), "sha256": sha256_file(Path(weights)),
                              "architecture": arch}
    save_checkpoint(out, model, {"imported": source}, {"imported": source, "history": []}, plot=False)
    return model
