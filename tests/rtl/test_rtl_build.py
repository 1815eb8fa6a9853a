"""``bmcnn_hw.rtl_build``: the ``rtl`` command's steps as library functions."""

from __future__ import annotations

import json
import shutil

import pytest

from bmcnn_hw.artefact import load_model
from bmcnn_hw.io_utils import sha256_file
from bmcnn_hw.rtl.emit import verified_rtl
from bmcnn_hw.rtl_build import run_rtl, write_model_rtl


def test_run_rtl_into_a_directory_lists_every_file_and_its_hash(tmp_path):
    from bmcnn_hw.rtl.reference import reference_model

    report = run_rtl(reference_model(), tmp_path / "out")
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert sorted(name.split("/")[1] for name in report.files) == written and written
    assert all(sha256_file(tmp_path / name) == digest for name, digest in report.files.items())
    assert report.ok and report.quality == [] and report.checks == [] and report.scratch is None


@pytest.mark.slow
def test_rewriting_a_builds_own_rtl_records_the_new_hashes(tiny_build, tmp_path):
    """Written into the build's own ``rtl/``, the files' hashes go into the build's manifest (here
    wiped first), so the hand-off check accepts them; written elsewhere, the manifest is untouched."""
    build = tmp_path / "b"
    shutil.copytree(tiny_build, build)
    model = load_model(build)
    manifest_path = build / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"] = {name: "0" * 64 if name.startswith("rtl/") else digest
                         for name, digest in manifest["files"].items()}
    manifest_path.write_text(json.dumps(manifest))
    write_model_rtl(model, tmp_path / "elsewhere", build)
    assert json.loads(manifest_path.read_text()) == manifest
    files = write_model_rtl(model, build / "rtl", build)
    listed = json.loads(manifest_path.read_text())["files"]
    assert files and all(listed[name] == digest for name, digest in files.items())
    assert verified_rtl(build, model) == build / "rtl"
