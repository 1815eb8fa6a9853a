"""Shipped model architectures (``bmcnn_hw/models/*.toml``) and loading a model file."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..io_utils import read_toml
from .architecture import ModelConfig

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
DEFAULT_MODEL = "bmcnn-compact"


def shipped_models() -> list[str]:
    """Names of the shipped architectures, sorted."""
    return sorted(p.stem for p in MODELS_DIR.glob("*.toml"))


def load_model_file(path: Path) -> ModelConfig:
    """A ModelConfig from a TOML model file.

    Raises:
        ConfigError: naming the file for bad TOML, unknown fields or inconsistent sizes.
    """
    path = Path(path)
    data = read_toml(path, "model file")
    if "layers" not in data:
        raise ConfigError(f"{path}: missing [[layers]] tables")
    data.setdefault("name", path.stem)
    return ModelConfig.from_dict(data, where=str(path))


def resolve_model(name_or_path: str, option: str = "--model") -> ModelConfig:
    """A shipped model by name, or a model file by path (``option``: how the user gave it).

    Raises:
        ConfigError: for an unknown name (listing the shipped ones) or a bad file.
    """
    if name_or_path in shipped_models():
        return load_model_file(MODELS_DIR / f"{name_or_path}.toml")
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError(f"{path}: model file not found")
        return load_model_file(path)
    raise ConfigError(f"{option}: unknown model {name_or_path!r}; shipped: {', '.join(shipped_models())} "
                      f"(or give a .toml model file)")


def describe_models(tile_rows: int = 128, tile_cols: int = 128) -> list[dict]:
    """One row per shipped model: name, layers, parameters, crossbar tiles, description."""
    rows = []
    for name in shipped_models():
        config = resolve_model(name)
        tiles = config.crossbar_tiles(tile_rows, tile_cols)
        rows.append({"name": name, "layers": len(config.layers),
                     "precision": "/".join(spec.precision for spec in config.layers),
                     "parameters": config.parameter_count(),
                     "tiles": None if config.is_float else sum(tiles), "tiles_per_layer": tiles,
                     "description": config.description})
    return rows
