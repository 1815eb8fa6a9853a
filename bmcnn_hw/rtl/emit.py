"""Verilog and register-map emission for every layer of a CompiledModel."""

from __future__ import annotations

import json
from pathlib import Path

from amaranth.back import verilog

from ..artefact import CompiledLayer, CompiledModel, verify_rtl
from ..errors import ArtefactError
from ..io_utils import sha256_file, write_text_atomic
from .layer import layer_top_for
from .mac import mac_engine_for
from .periphery import layer_registers, periphery_for_layer


def module_name(layer: CompiledLayer) -> str:
    """Verilog module of a layer's periphery, e.g. ``periphery_conv0``."""
    return f"periphery_{layer.name}"


def top_name(layer: CompiledLayer) -> str:
    """Verilog module of a layer's top (periphery + pool/argmax), e.g. ``layer_conv0``."""
    return f"layer_{layer.name}"


def mac_name(layer: CompiledLayer) -> str:
    """Verilog module of a digital layer's MAC engine, e.g. ``mac_conv0``."""
    return f"mac_{layer.name}"


def emit_layer(layer: CompiledLayer) -> str:
    """Verilog text of one layer's periphery."""
    return verilog.convert(periphery_for_layer(layer), name=module_name(layer), emit_src=False)


def emit_layer_top(layer: CompiledLayer) -> str:
    """Verilog text of one layer's top."""
    return verilog.convert(layer_top_for(layer), name=top_name(layer), emit_src=False)


def layer_texts(layer: CompiledLayer) -> dict[str, str]:
    """File name -> text of everything emitted for one layer."""
    registers = layer_registers(layer)
    texts = {
        f"{module_name(layer)}.v": emit_layer(layer),
        f"{top_name(layer)}.v": emit_layer_top(layer),
        f"regmap_{layer.name}.md": registers.to_markdown(),
        f"regmap_{layer.name}.json": registers.to_json(),
    }
    if layer.digital:
        texts[f"{mac_name(layer)}.v"] = verilog.convert(mac_engine_for(layer), name=mac_name(layer), emit_src=False)
    return texts


def write_rtl(model: CompiledModel, out_dir: Path) -> dict[str, str]:
    """Write each layer's periphery and top Verilog (and MAC engine, digital layers) and register
    map; returns path -> SHA-256."""
    out_dir = Path(out_dir)
    files = {}
    for layer in model.layers:
        for name, text in layer_texts(layer).items():
            write_text_atomic(out_dir / name, text)
            files[f"{out_dir.name}/{name}"] = sha256_file(out_dir / name)
    return files


def verified_rtl(build_dir: Path, model: CompiledModel) -> Path:
    """The build's own ``rtl/`` directory, the Verilog a user hands to synthesis, after checking
    that every file is the one compile (or `bmcnn-hw rtl BUILD`) wrote and of this interface version.

    Raises:
        ArtefactError: an edited or missing file, or RTL from an older interface version.
    """
    verify_rtl(build_dir)
    check_interface_version(build_dir, model)
    return Path(build_dir) / "rtl"


def emitted_rtl(model: CompiledModel, work_dir: Path, rtl_dir: Path | None) -> Path:
    """``rtl_dir`` when given (a build's verified ``rtl/``), else the model's Verilog emitted into
    ``work_dir/rtl`` (an in-memory model, or a regeneration the caller asked for and reports).
    ``work_dir`` is created either way (simulations write there)."""
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    if rtl_dir is not None:
        return Path(rtl_dir)
    write_rtl(model, Path(work_dir) / "rtl")
    return Path(work_dir) / "rtl"


def check_interface_version(build_dir: Path, model: CompiledModel) -> None:
    """Refuse a build whose Verilog an older bmcnn-hw wrote (another port and register interface).

    Raises:
        ArtefactError: naming the register map, its version and the command that regenerates it.
    """
    for layer in model.layers:
        path = Path(build_dir) / "rtl" / f"regmap_{layer.name}.json"
        try:
            ident = next(r for r in json.loads(path.read_text())["registers"] if r["name"] == "id")["reset"][0]
        except (OSError, ValueError, KeyError, IndexError, StopIteration, TypeError):
            raise ArtefactError(f"{path}: missing or not a register map; regenerate the RTL with "
                                f"`bmcnn-hw rtl {build_dir}`") from None
        expected = layer_registers(layer)["id"].reset[0]
        if ident != expected:
            raise ArtefactError(f"{path}: RTL interface version {ident & 0xFFFF} from an older bmcnn-hw; this one "
                                f"needs version {expected & 0xFFFF}: regenerate it with `bmcnn-hw rtl {build_dir}`")
