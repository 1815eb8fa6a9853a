"""The build is the single source of truth for its chip: compile records the sampler version and a
hash of the sampled devices, and every executor's ``Chip.of_build`` refuses a build whose devices
its sampler would not reproduce."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from bmcnn_hw.artefact import load_model
from bmcnn_hw.errors import ArtefactError
from bmcnn_hw.golden import chip as chip_module
from bmcnn_hw.golden.chip import SAMPLER_VERSION, Chip


def test_a_build_records_its_sampler_and_devices(compiled):
    """The record is the sampler version and the hash of the very devices Chip.of_build samples."""
    record = compiled.provenance["chip_devices"]
    assert record["sampler"] == SAMPLER_VERSION
    assert record["sha256"] == Chip.of_build(compiled).devices_sha256()


def test_the_device_hash_sees_one_device(compiled):
    """Changing one resistance of one tile changes the hash."""
    chip = Chip.of_build(compiled)
    before = chip.devices_sha256()
    key = sorted(chip.tiles)[-1]
    chip.tiles[key].r_plus[0, 0] *= 1.0 + 1e-12
    assert chip.devices_sha256() != before


def test_a_changed_sampler_is_refused(compiled, monkeypatch):
    """A sampler that draws other devices for the same seed (here: 0.1 % higher) cannot rebuild the
    build's chip: refused, naming the record, instead of a chip the netlists were not written for."""
    original = chip_module.sample_devices

    def drifted(on, params, rng):
        return original(on, params, rng) * 1.001

    monkeypatch.setattr(chip_module, "sample_devices", drifted)
    with pytest.raises(ArtefactError, match=r"differ from provenance\.chip_devices\.sha256"):
        Chip.of_build(compiled)


def test_a_build_of_another_sampler_version_is_one_line(build_dir, mnist_dir, tmp_path):
    """`evaluate --backend physics` on a build recorded by another sampler: exit 2, one line."""
    build = tmp_path / "build"
    shutil.copytree(build_dir, build, ignore=shutil.ignore_patterns("netlists", "rtl"))
    manifest = json.loads((build / "manifest.json").read_text())
    manifest["provenance"]["chip_devices"]["sampler"] = SAMPLER_VERSION + 1
    (build / "manifest.json").write_text(json.dumps(manifest))
    assert load_model(build).provenance["chip_devices"]["sampler"] == SAMPLER_VERSION + 1
    proc = subprocess.run([sys.executable, "-m", "bmcnn_hw.cli", "evaluate", str(build), "--backend", "physics",
                           "--images", "5", "--data-dir", str(mnist_dir)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"bmcnn-hw: error: manifest.json: provenance.chip_devices.sampler is {SAMPLER_VERSION + 1}; this bmcnn-hw "
        f"samples devices with sampler {SAMPLER_VERSION}, so its chip would differ from the build's netlists: "
        "re-compile the build")
