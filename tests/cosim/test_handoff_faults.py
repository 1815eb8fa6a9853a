"""What is verified is what is handed off: `rtl-regress`, `cosim` and `spice` simulate the build's
own files, so a fault planted in them (and re-hashed, as `bmcnn-hw rtl` would after a user's edit)
fails the run, naming layer, image and output (RTL) or the tile (netlist), with exit 1."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bmcnn_hw.artefact import record_files
from bmcnn_hw.io_utils import sha256_file
from tests.helpers import needs

CLI = [sys.executable, "-m", "bmcnn_hw.cli"]
ACTIVATION = "  assign act = \\$40  ^ \\$41 ;\n"
"""The line of a crossbar layer's Verilog that applies the flip bit to the threshold compare."""


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True)


def _plant(build: Path, rel: str, old: str, new: str, rehash: bool = True) -> None:
    """Replace ``old`` (once) by ``new`` in a build file, then list its new hash unless told not to."""
    path = build / rel
    text = path.read_text()
    assert text.count(old) == 1, f"{rel}: the line to mutate is not there once"
    path.write_text(text.replace(old, new))
    if rehash:
        record_files(build, {rel: sha256_file(path)})


@pytest.fixture(scope="module")
def rtl_fault(build_dir, tmp_path_factory) -> Path:
    """A copy of the session build whose fc1 layer top inverts every activation (hashes updated)."""
    build = tmp_path_factory.mktemp("rtl-fault") / "build"
    shutil.copytree(build_dir, build)
    _plant(build, "rtl/layer_fc1.v", ACTIVATION, ACTIVATION.replace("= \\$40  ^ \\$41 ;", "= ~(\\$40  ^ \\$41 );"))
    return build


@pytest.fixture(scope="module")
def netlist_fault(build_dir, tmp_path_factory) -> Path:
    """A copy of the session build where the R_off devices of fc2 tile (0,0)'s first physical column are
    at 1 kOhm (re-hashed): whichever rows an image drives, that column's current is wrong."""
    build = tmp_path_factory.mktemp("netlist-fault") / "build"
    shutil.copytree(build_dir, build)
    path = build / "netlists" / "fc2_r0_c0.sub"
    lines = path.read_text().splitlines(keepends=True)
    column = [k for k, line in enumerate(lines) if line.startswith("Xd_") and line.split()[2] == "c0"]
    for k in column:
        lines[k] = lines[k].replace(" r=100000.0 ", " r=1000.0 ")
    path.write_text("".join(lines))
    record_files(build, {"netlists/fc2_r0_c0.sub": sha256_file(path)})
    return build


@needs("verilator")
@pytest.mark.slow
def test_rtl_regress_fails_on_a_planted_fault_in_the_builds_rtl(rtl_fault, mnist_dir, tmp_path):
    """The build's own Verilog is simulated: the inverted activation is found, named by layer, output
    and image; regenerated Verilog (asked for, and said so) passes."""
    proc = _cli("rtl-regress", rtl_fault, "--images", "2", "--data-dir", mnist_dir, "--out", tmp_path / "a")
    assert proc.returncode == 1, proc.stderr
    assert re.search(r"FAILED: layer fc1, output \d+ \(image 0\): RTL bit", proc.stdout), proc.stdout
    assert f"RTL simulated: the build's own {rtl_fault / 'rtl'} (hashes checked)" in proc.stdout
    proc = _cli("rtl-regress", rtl_fault, "--images", "2", "--data-dir", mnist_dir, "--out", tmp_path / "b",
                "--regenerate-rtl")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "RTL simulated: regenerated from the CompiledModel" in proc.stdout


@needs("verilator")
def test_an_unhashed_edit_of_the_builds_rtl_is_refused_in_one_line(build_dir, mnist_dir, tmp_path):
    """A Verilog file changed after compile without `bmcnn-hw rtl`: exit 2 naming the file, before any work."""
    build = tmp_path / "build"
    shutil.copytree(build_dir, build, ignore=shutil.ignore_patterns("netlists"))
    _plant(build, "rtl/layer_fc1.v", ACTIVATION, ACTIVATION.replace("^", "|"), rehash=False)
    proc = _cli("rtl-regress", build, "--images", "2", "--data-dir", mnist_dir, "--out", tmp_path / "out")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (f"bmcnn-hw: error: {build / 'rtl' / 'layer_fc1.v'}: SHA-256 "
                                                     "differs from manifest.json (file changed or corrupt)")


@pytest.mark.slow
@needs("ngspice")
@needs("verilator")
def test_cosim_fails_on_a_planted_fault_in_the_builds_rtl(rtl_fault, mnist_dir, tmp_path):
    """cosim simulates the build's rtl/ too: the fault is named by layer and output (image first)."""
    proc = _cli("cosim", rtl_fault, "--images", "1", "--sim", "verilator", "--data-dir", mnist_dir,
                "--out", tmp_path / "cosim")
    assert proc.returncode == 1, proc.stderr
    assert re.search(r"mismatches: 128 \(first: layer fc1, output \(0, \d+\) \(image, channel, \.\.\.\): RTL",
                     proc.stdout), proc.stdout


@needs("ngspice")
@pytest.mark.slow
def test_spice_fails_on_a_planted_netlist_fault_naming_the_tile(netlist_fault, mnist_dir):
    """One device at the wrong resistance: `spice` exits 1 with one line naming layer and tile."""
    proc = _cli("spice", netlist_fault, "--images", "1", "--data-dir", mnist_dir)
    assert proc.returncode == 1, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("bmcnn-hw: SPICE differs from physics in layer fc2: worst tile fc2_r0_c0 "
                           "(netlists/fc2_r0_c0.sub), dI/I_max "), line


@pytest.mark.slow
@needs("ngspice")
@needs("verilator")
def test_cosim_fails_on_a_planted_netlist_fault_naming_the_tile(netlist_fault, mnist_dir, tmp_path):
    """cosim compares every SPICE read with physics: the faulty tile is named and the run exits 1."""
    proc = _cli("cosim", netlist_fault, "--images", "1", "--sim", "verilator", "--data-dir", mnist_dir,
                "--out", tmp_path / "cosim")
    assert proc.returncode == 1, proc.stderr
    pattern = r"FAILED: SPICE differs from physics beyond \S+ in layer fc2, worst tile fc2_r0_c0"
    assert re.search(pattern, proc.stdout), proc.stdout


@pytest.mark.icarus
@needs("iverilog")
@pytest.mark.parametrize("old, new, what", [
    (">= 4'ha;", ">= 4'hb;", "the channel range compare off by one (channel 10 of 10 not flagged)"),
    (" ? bus__wdata[3:0] : 4'h0;", " ? 4'hf : 4'h0;", "a write-1-to-clear that clears every error bit"),
])
def test_rtl_check_catches_interface_faults_in_the_builds_periphery(build_dir, mnist_test, tmp_path, old, new, what):
    """The directed protocol scenario, part of every ``rtl --check``, fails on the build's own
    periphery_fc2.v with ``what`` planted (re-hashed); the golden-vector scenarios alone pass it."""
    from bmcnn_hw.artefact import load_model
    from bmcnn_hw.cosim.rtl_check import check_rtl
    from bmcnn_hw.rtl.emit import verified_rtl

    build = tmp_path / "build"
    shutil.copytree(build_dir, build)
    _plant(build, "rtl/periphery_fc2.v", old, new)
    model = load_model(build)
    checks = check_rtl(model, mnist_test.images[:1], tmp_path / "work", per_layer=20, tops=False,
                       rtl_dir=verified_rtl(build, model))
    failed = {c.module for c in checks if not c.passed}
    assert failed == {"periphery_fc2 (protocol)"}, (what, [(c.module, c.message) for c in checks])


@pytest.mark.icarus
@needs("iverilog")
def test_rtl_check_catches_an_argmax_that_lets_the_last_of_equal_scores_win(build_dir, mnist_test, tmp_path):
    """Every ``rtl --check`` sends the output layer top an image whose two best classes tie (the
    first must win, as numpy's argmax): the build's own layer_fc2.v with the argmax's ``>`` turned
    into ``>=`` (re-hashed) fails there and only there; real images alone have no ties."""
    from bmcnn_hw.artefact import load_model
    from bmcnn_hw.cosim.rtl_check import check_rtl
    from bmcnn_hw.cosim.scenarios import tie_image
    from bmcnn_hw.rtl.emit import verified_rtl

    build = tmp_path / "build"
    shutil.copytree(build_dir, build, ignore=shutil.ignore_patterns("netlists"))
    text = (build / "rtl" / "layer_fc2.v").read_text()
    compare = re.search(r"\$signed\(i__payload\[\d+:\d+\]\) > \$signed\(\\\$like \);", text)
    assert compare, "the argmax's score compare is not in layer_fc2.v"
    _plant(build, "rtl/layer_fc2.v", compare.group(0), compare.group(0).replace(" > ", " >= "))
    model = load_model(build)
    assert tie_image(model.layers[2]) is not None
    checks = check_rtl(model, mnist_test.images[:3], tmp_path / "work", per_layer=20,
                       rtl_dir=verified_rtl(build, model))
    failed = {c.module: c.message for c in checks if not c.passed}
    assert list(failed) == ["layer_fc2"] and "output 3" in failed["layer_fc2"], failed
