"""A non-editable install: the wheel carries its SPICE models and model files, and compiles and
simulates from outside the repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.helpers import REPO, needs

NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "runs", "build", "sim_build", "__pycache__", ".pytest_cache",
                                    ".hypothesis", "*.egg-info", "rtl_check", "tests")


def _run(cmd: list, cwd: Path) -> str:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout[-1500:]}{proc.stderr[-1500:]}"
    return proc.stdout


@pytest.mark.slow
@pytest.mark.ngspice
@needs("ngspice")
def test_wheel_install_compiles_and_simulates(tmp_path, checkpoint, mnist_dir):
    source = tmp_path / "src"  # built from a copy: setuptools writes build/ and egg-info in place
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist",
          source], tmp_path)
    wheel = next((tmp_path / "dist").glob("bmcnn_hw-*.whl"))
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], tmp_path)
    site = next((venv / "lib").glob("python*/site-packages"))
    # the dependencies of this environment (a plain path entry: its editable bmcnn_hw stays off)
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], tmp_path)
    where = _run([venv / "bin" / "python", "-c", "import bmcnn_hw; print(bmcnn_hw.__file__)"], tmp_path)
    assert Path(where.strip()).is_relative_to(site)
    assert (site / "bmcnn_hw" / "spice_models" / "memristor.lib").is_file()

    cli = venv / "bin" / "bmcnn-hw"
    _run([cli, "compile", checkpoint, "-o", tmp_path / "b", "--tile", "64x64"], tmp_path)
    assert (tmp_path / "b" / "netlists" / "lib" / "memristor.lib").is_file()
    report = _run([cli, "spice", tmp_path / "b", "--images", "1", "--data-dir", mnist_dir, "--workers", "1"], tmp_path)
    assert "predictions SPICE" in report


def test_spice_models_live_at_the_top_level_and_the_package_links_there():
    """The brief's layout: spice_models/ beside bmcnn_hw/ is the source; the package reaches it by a link."""
    from bmcnn_hw.spice.netlist import spice_models_dir

    assert (REPO / "spice_models").is_dir() and not (REPO / "spice_models").is_symlink()
    assert (REPO / "bmcnn_hw" / "spice_models").resolve() == (REPO / "spice_models").resolve()
    assert spice_models_dir().resolve() == (REPO / "spice_models").resolve()
