"""CompiledModel on disk: round trip, schema and hash checks."""

from __future__ import annotations

import json
import os
import shutil
import stat

import numpy as np
import pytest

from bmcnn_hw.artefact import load_model
from bmcnn_hw.errors import ArtefactError


def test_round_trip_keeps_every_array(build_dir, compiled):
    again = load_model(build_dir)
    for a, b in zip(compiled.layers, again.layers, strict=True):
        assert np.array_equal(a.weight, b.weight) and a.tiling == b.tiling
        assert a.weight.dtype == np.int8 and set(np.unique(a.weight)) <= {-1, 1}
    manifest = json.loads((build_dir / "manifest.json").read_text())
    assert manifest["schema_version"] == 1 and len(manifest["files"]["arrays.npz"]) == 64


def _copy(build_dir, tmp_path):
    target = tmp_path / "b"
    shutil.copytree(build_dir, target)
    return target


def test_changed_arrays_fail_the_hash(build_dir, tmp_path):
    target = _copy(build_dir, tmp_path)
    with open(target / "arrays.npz", "ab") as handle:
        handle.write(b"x")
    with pytest.raises(ArtefactError, match=r"arrays\.npz: SHA-256 differs"):
        load_model(target)


def test_schema_version_and_malformed_manifest(build_dir, tmp_path):
    target = _copy(build_dir, tmp_path)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["schema_version"] = 99
    (target / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtefactError, match="schema_version 99 is not supported"):
        load_model(target)
    (target / "manifest.json").write_text("{not json")
    with pytest.raises(ArtefactError, match=r"manifest\.json: not valid JSON"):
        load_model(target)
    with pytest.raises(ArtefactError, match="missing"):
        load_model(tmp_path / "nothing")


@pytest.mark.slow
def test_written_files_and_builds_follow_the_umask(tmp_path, checkpoint):
    """Atomic writes and build directories get open()/mkdir() permissions, not 0600/0700."""
    from bmcnn_hw.build import build
    from bmcnn_hw.config import CrossbarGeometry, HardwareConfig
    from bmcnn_hw.io_utils import write_text_atomic

    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
        build(checkpoint, tmp_path / "b", HardwareConfig(geometry=CrossbarGeometry(128, 128)))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "b" / "manifest.json").stat().st_mode) == 0o644


@pytest.mark.parametrize(("layer", "shift"), [(0, 8), (0, -1), (0, "7"), (1, 1)])
def test_an_impossible_input_shift_is_refused(build_dir, tmp_path, layer, shift):
    target = _copy(build_dir, tmp_path)
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["layers"][0]["input_shift"] == 0  # an 8-bit-pixel model
    manifest["layers"][layer]["input_shift"] = shift
    (target / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtefactError, match=rf"layers\[{layer}\]\.input_shift = .*; expected an integer in \[0, "):
        load_model(target)
