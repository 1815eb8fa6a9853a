"""Runs the bad-input catalogue (tests/bad_inputs.py): every row ends in one clear line, the
expected exit code, no traceback, nothing half-written and nothing it must not touch changed."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from bmcnn_hw.cli import main
from tests.bad_inputs import CATALOGUE, BadInput


def _fingerprint(path: Path) -> str:
    """SHA-256 over a file, or over every file (name and bytes) of a directory tree."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(str(file.relative_to(path) if file != path else "").encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own errors
        return int(exc.code or 0)


@pytest.mark.parametrize("row", CATALOGUE, ids=[row.id for row in CATALOGUE])
def test_bad_input(row: BadInput, tmp_path, build_dir, checkpoint, mnist_dir, monkeypatch, capsys):
    for tool in row.tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    fields = {"tmp": tmp_path, "build": build_dir, "copy": tmp_path / "copy", "ckpt": checkpoint, "data": mnist_dir}
    if any("{copy}" in a for a in row.args):
        shutil.copytree(build_dir, tmp_path / "copy")
    if row.setup:
        row.setup(tmp_path)
    for name, value in row.env:
        monkeypatch.setenv(name, value.format(**fields))
    untouched = {Path(p.format(**fields)): None for p in row.untouched}
    untouched = {p: _fingerprint(p) for p in untouched}
    capsys.readouterr()
    code = _run([a.format(**fields) for a in row.args])
    err = capsys.readouterr().err
    message = row.message.format(**fields)
    assert code == row.code, err
    assert message in err, err
    assert "Traceback" not in err
    if row.code:
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith("bmcnn-hw: error: "), err
    for path, before in untouched.items():
        assert _fingerprint(path) == before, f"{path} changed"
    for path in row.absent:
        assert not Path(path.format(**fields)).exists(), f"{path} was created"
