"""Verilog emission of the layer peripheries of a CompiledModel."""

from __future__ import annotations

from pathlib import Path

from amaranth.back import verilog

from ..artefact import CompiledModel
from ..io_utils import sha256_file, write_text_atomic
from .periphery import periphery_for_layer


def module_name(layer) -> str:
    """Verilog module name of a layer's periphery, e.g. ``periphery_conv0``."""
    return f"periphery_{layer.name}"


def emit_layer(layer) -> str:
    """Verilog text of one layer's periphery."""
    return verilog.convert(periphery_for_layer(layer), name=module_name(layer), emit_src=False)


def write_rtl(model: CompiledModel, out_dir: Path) -> dict[str, str]:
    """Write ``<module>.v`` for every layer; returns relative path -> SHA-256 for the manifest."""
    out_dir = Path(out_dir)
    files = {}
    for layer in model.layers:
        path = out_dir / f"{module_name(layer)}.v"
        write_text_atomic(path, emit_layer(layer))
        files[f"{out_dir.name}/{path.name}"] = sha256_file(path)
    return files
