"""Value converters and the option groups several commands share (device overrides, SPICE jobs,
chip age), with the one spelling, default and help text each option has in every command."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
from pathlib import Path
from typing import Any, Literal, get_args

from ..config import CellType, Corner, Distribution, SpiceEngine
from .fields import option, positional

Simulator = Literal["auto", "icarus", "verilator"]
TuningMethod = Literal["guarded", "lsq"]


def positive_int(text: str) -> int:
    """A whole number >= 1 (a count of images, chips, epochs, workers ...)."""
    return _bounded_int(text, 1)


def non_negative_int(text: str) -> int:
    """A whole number >= 0 (seeds, and counts where 0 means off or automatic)."""
    return _bounded_int(text, 0)


def _bounded_int(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= {low}, not {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be a whole number >= {low}, not {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _finite(text, "a number > 0")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, not {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    value = _finite(text, "a number >= 0")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, not {text!r}")
    return value


def _finite(text: str, expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {expected}, not {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be {expected}, not {text!r}")
    return value


def scheduler_address(text: str) -> str:
    """A Dask scheduler address ``PROTOCOL://HOST:PORT``."""
    if not re.fullmatch(r"(tcp|tls|ucx|inproc)://[^\s:/]+:\d{1,5}", text):
        raise argparse.ArgumentTypeError(f"must be a scheduler address like tcp://HOST:PORT, not {text!r}")
    return text


def sigma_list(text: str) -> list[float]:
    """Comma-separated relative sigmas, each a number >= 0 (at least one)."""
    values = [non_negative_float(part) for part in text.split(",") if part.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"must be comma-separated numbers >= 0, not {text!r}")
    return values


def name_list(text: str) -> list[str]:
    """Comma-separated names (at least one)."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"must be comma-separated names, not {text!r}")
    return names


def data_dir_option() -> Any:
    """``--data-dir``: where MNIST is read from."""
    return option(None, metavar="DIR", help=(
        "directory with MNIST-format IDX files (gzip or raw; Fashion-MNIST works too). "
        "Default: $BMCNN_HW_DATA, else the cache filled by `bmcnn-hw data fetch`"))


def results_force_option() -> Any:
    """``--force`` of a command that writes results into ``--out``."""
    return option(False, help=(
        "write into an --out that holds results of another build, checkpoint or command (without it such an --out "
        "is refused before any work; this command's own results for the same input are always replaced)"))


def sim_option(what: str) -> Any:
    """``--sim``, spelt and defaulted alike in every command that simulates RTL (``what``: its use here)."""
    return option(default_factory=_sim_default, help=(
        f"{what}; auto (default, or $SIM): verilator when it can build (Verilator, make, a C++ compiler), else "
        "icarus. Verilator's first build of a module takes about a minute; builds are cached by content in "
        "~/.cache/bmcnn-hw"))


def _sim_default() -> Simulator:
    chosen = os.environ.get("SIM", "auto")
    return chosen if chosen in get_args(Simulator) else "auto"  # type: ignore[return-value]


def tuning_method_option() -> Any:
    """``--tuning-method``: how per-column corrections are fitted."""
    return option("guarded", help=(
        "guarded (default): per-column corrections fitted by a direct count on half the calibration images, each "
        "kept only where it lowers the held-out half's error, the whole tuning only if held-out accuracy does not "
        "drop; lsq: the least-squares fit on all calibration images, every correction kept (the method before "
        "guarded tuning)"))


def build_positional() -> Any:
    """``BUILD_DIR``: the build directory a command reads."""
    return positional(metavar="BUILD_DIR", help="build directory written by `bmcnn-hw compile`")


def chip_seed_option() -> Any:
    """``--chip-seed`` of a command that samples another chip than the build's (None: the build's)."""
    return option(None, convert=non_negative_int, help="sample a chip with this seed (default: the build's chip)")


def calib_option() -> Any:
    """``--calib`` of a command that tunes many chips."""
    return option(2048, convert=positive_int, help=(
        "calibration (training) images for tuning (default 2048; guarded tuning holds out half)"))


def regenerate_rtl_option() -> Any:
    """``--regenerate-rtl``: simulate regenerated Verilog instead of the build's own."""
    return option(False, help=(
        "simulate Verilog regenerated from the build's CompiledModel into --out/rtl instead of the build's own "
        "rtl/ (default: the build's rtl/, the files handed to synthesis, after checking their hashes); the report "
        "says which was simulated"))


def workers_option(help: str, default: int | None = 1, *, alias: bool = False) -> Any:
    """``--workers``: local processes (``--jobs``, its old spelling, where ``alias``)."""
    return option(default, help=help, convert=positive_int, metavar="N", aliases=("--jobs",) if alias else ())


def scheduler_option(help: str = "run on this Dask distributed scheduler instead") -> Any:
    """``--scheduler``: a Dask scheduler's address."""
    return option(None, help=help, convert=scheduler_address, metavar="tcp://HOST:PORT")


_DEVICE = "device overrides ({where})"


@dataclasses.dataclass(kw_only=True)
class DeviceOverrides:
    """Device parameters given on the command line, applied on top of a preset or a build's device
    (None: keep it). A command sets ``DEVICE_WHERE`` to say on top of what."""

    sigma_on: float | None = option(None, group=_DEVICE,
                                    help="relative std of R_on from device to device (0.1 = 10 %)")
    sigma_off: float | None = option(None, group=_DEVICE, help="relative std of R_off from device to device")
    distribution: Distribution | None = option(None, group=_DEVICE, help="device-to-device distribution")
    stuck_on: float | None = option(None, group=_DEVICE, help="probability that a device is stuck ON")
    stuck_off: float | None = option(None, group=_DEVICE, help="probability that a device is stuck OFF")
    read_noise: float | None = option(None, group=_DEVICE,
                                      help="relative std of each device's conductance at each read")
    r_wire: float | None = option(None, group=_DEVICE, help="resistance of one wire segment between cells (ohm)")
    r_source: float | None = option(None, group=_DEVICE, help="output resistance of each row driver (ohm)")
    v_read: float | None = option(None, group=_DEVICE, help="read voltage (V)")
    cell: CellType | None = option(None, group=_DEVICE, help=(
        "cell model: linear resistor, sinh RRAM read I-V, or 1T1R (device + sky130 nMOS)"))
    sinh_v0: float | None = option(None, group=_DEVICE,
                                   help="V_0 of the sinh read model (V; smaller = more nonlinear)")
    corner: Corner | None = option(None, group=_DEVICE, help="sky130 process corner of 1T1R access transistors")
    v_wordline: float | None = option(None, group=_DEVICE, help="1T1R word-line (gate) voltage during reads (V)")
    sigma_vth: float | None = option(None, group=_DEVICE,
                                     help="std of the 1T1R access transistors' threshold voltage (V)")
    access_w: float | None = option(None, group=_DEVICE, help="1T1R access transistor width (um)")
    access_l: float | None = option(None, group=_DEVICE, help="1T1R access transistor length (um, >= 0.15)")


DEVICE_FIELDS = {
    "sigma_on": "sigma_on_rel", "sigma_off": "sigma_off_rel", "distribution": "distribution",
    "stuck_on": "p_stuck_on", "stuck_off": "p_stuck_off", "read_noise": "read_noise_rel",
    "r_wire": "r_wire_ohm", "r_source": "r_source_ohm", "v_read": "v_read_v",
    "cell": "cell", "sinh_v0": "sinh_v0_v", "corner": "corner", "v_wordline": "v_wordline_v",
    "sigma_vth": "sigma_vth_v", "access_w": "access_w_um", "access_l": "access_l_um",
}
"""The :class:`~bmcnn_hw.config.DeviceParams` field each device override sets."""


@dataclasses.dataclass(kw_only=True)
class SpiceJobs:
    """How a command's SPICE tile reads are solved: local processes or a Dask cluster, engine, cache."""

    workers: int | None = workers_option(
        "SPICE processes solving tiles side by side (default: one per core this process may use); results equal "
        "within the engine's convergence tolerance for any N", default=None, alias=True)
    read_cache: Path | None = option(None, metavar="DIR", help=(
        "keep solved per-vector tile reads in DIR, keyed by the circuit's content, the engine and version, the "
        "solve options and the input vector, and serve repeated reads from there (a second run, cosim after "
        "spice); damaged entries are re-solved"))
    read_cache_mb: int = option(2048, convert=positive_int, metavar="MB", help=(
        "size limit of --read-cache; least recently used entries go first (default 2048)"))
    engine: SpiceEngine = option("auto", help=(
        "SPICE engine of the tile reads: ngspice (the reference), vacask (KLU solver, OSDI BSIM4; every distinct "
        "input solved, no superposition; linear and 1T1R cells with ideal or railed TIAs; pip install -e "
        "'.[vacask]'), or auto (default): vacask for 1T1R cells read one input at a time (wires, driver or TIA "
        "resistance) and for linear cells behind wires (large wired meshes ngspice cannot factorise in minutes), "
        "where it is installed and no --scheduler is given, else ngspice. Reports name the engine that ran"))
    scheduler: str | None = option(None, metavar="tcp://HOST:PORT", convert=scheduler_address, help=(
        "solve the tile reads on this Dask scheduler's workers instead of local processes (each worker needs "
        "ngspice and bmcnn-hw; circuits travel by content and hash; the reads are split as --workers local "
        "processes would split them, so results equal a local run's; a dead worker's reads are solved again "
        "elsewhere)"))


_AGE = "chip age (docs/guide/variation.md, 'Chip lifetime')"


@dataclasses.dataclass(kw_only=True)
class AgeOptions:
    """The age a chip is simulated at (retention drift, read disturb, wear)."""

    age: str | None = option(None, group=_AGE, metavar="T", help=(
        "age the chip to T after programming (e.g. 1d, 1y, 10y): retention drift, read disturb, wear"))
    reads_per_s: float = option(0.0, group=_AGE, convert=non_negative_float, metavar="R",
                                help="with --age: reads of every device per second, for read disturb (default 0)")
    retention: Path | None = option(None, group=_AGE, metavar="FILE.toml", help=(
        "with --age: retention model parameters ([retention] table; default: the cited preset)"))
