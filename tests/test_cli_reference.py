"""docs/cli.md is the parser's own --help of every command (regenerate: python scripts/cli_reference.py)."""

from __future__ import annotations

import importlib.util

from tests.helpers import REPO


def _generator():
    spec = importlib.util.spec_from_file_location("cli_reference", REPO / "scripts" / "cli_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_command_reference_is_the_parser_s_help():
    generator = _generator()
    text = generator.reference()
    assert (REPO / "docs" / "cli.md").read_text() == text, "docs/cli.md is stale: run python scripts/cli_reference.py"
    for command in ("compile", "evaluate", "ppa", "explore", "cosim", "rtl-regress", "flow run"):
        assert f"## bmcnn-hw {command}\n" in text
    assert "--adc-range" in text and "--engine" in text  # options reach the page, not only command names
