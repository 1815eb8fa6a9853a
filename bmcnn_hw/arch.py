"""Named architectures: sets of compile options shipped as TOML files (``bmcnn-hw compile --arch NAME``).

An architecture file has a ``description`` and a ``[compile]`` table whose keys are compile
options (the ``--option`` names with underscores). Options given on the command line win over
the architecture's; options neither sets take the built-in defaults. ``baseline`` is the design
of earlier releases (every option at its default).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Encoding, InputMode
from .errors import ConfigError
from .io_utils import read_toml
from .tables import check_table

ARCH_DIR = Path(__file__).parent / "archs"
ARCH_OPTIONS: dict[str, Any] = {
    "tile": str, "fit_tiles": bool, "device": str, "adc_bits": int, "adc_range": str, "encoding": Encoding,
    "input_mode": InputMode,
    "v_swing": float, "tia_rf": str | float, "mac_lanes": int, "clock_gating": bool,
    "columns_per_adc": int, "skip_zero_reads": bool | str, "sense_layers": str, "comparator_offset": float,
    "columns_per_comparator": int, "hardwired_thresholds": bool,
}
"""Compile options an architecture may set, and their TOML types."""


@dataclass(frozen=True)
class Architecture:
    """A named set of compile options."""

    name: str
    description: str
    options: dict[str, Any]
    source: str
    """The file it was read from."""


def shipped_architectures() -> list[str]:
    """Names of the architectures shipped with bmcnn-hw."""
    return sorted(p.stem for p in ARCH_DIR.glob("*.toml"))


def load_architecture(name_or_path: str) -> Architecture:
    """A shipped architecture by name, or an architecture TOML file.

    Raises:
        ConfigError: unknown name, missing or malformed file, unknown option or wrong type
            (naming the file and the key).
    """
    path = Path(name_or_path)
    if name_or_path in shipped_architectures():
        path = ARCH_DIR / f"{name_or_path}.toml"
    elif path.suffix != ".toml":
        raise ConfigError(f"--arch {name_or_path!r}: not a shipped architecture ({', '.join(shipped_architectures())})"
                          " or a .toml file")
    data = check_table(read_toml(path, "architecture file"), {"description": str, "compile": dict}, str(path))
    options = check_table(data.get("compile", {}), ARCH_OPTIONS, f"{path}: [compile]")
    return Architecture(path.stem, str(data.get("description", "")), dict(options), str(path))


def resolve_option(given: Any, arch: Architecture | None, key: str, default: Any) -> Any:
    """The value of compile option ``key``: the command line's (``given`` not None), else the
    architecture's, else ``default``."""
    if given is not None:
        return given
    if arch is not None and key in arch.options:
        return arch.options[key]
    return default
