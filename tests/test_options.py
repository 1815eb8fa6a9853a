"""The typed command layer: one options dataclass per command, the parser built from it, flow
files read into it, and run_command for Python callers."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path
from typing import get_args

import pytest

from bmcnn_hw.cli import build_parser, parse_command
from bmcnn_hw.errors import ConfigError
from bmcnn_hw.options import COMMANDS, CompileOptions, EvaluateOptions, RegressOptions, SweepOptions
from bmcnn_hw.options.fields import argument_fields, command_line, flag_of, from_table

REQUIRED = {"compile": ["C", "-o", "B"], "tune": ["B"], "sweep": ["B"], "lifetime": ["B"], "cosim": ["B"],
            "rtl-regress": ["B"], "import": ["M.onnx", "-o", "C"], "export": ["B", "--programming", "m.csv"],
            "flow run": ["f.toml"], "regress": ["r.toml"], "spice": ["B"], "evaluate": ["B"], "ppa": ["B"],
            "explore": ["C", "--grid", "g.toml"]}
"""The required arguments of each command (the others have none)."""


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_parser_defaults_are_the_dataclass_defaults(command, monkeypatch):
    """A command line with only the required arguments parses into the options class's own
    defaults (the parser is built from the declaration, so they cannot drift)."""
    monkeypatch.delenv("SIM", raising=False)
    name, options = parse_command(command.name.split() + REQUIRED.get(command.name, []))
    assert name == command.name and type(options) is command.options
    for field in argument_fields(command.options):
        if field.default is not dataclasses.MISSING:
            assert getattr(options, field.name) == field.default, field.name
        elif field.default_factory is not dataclasses.MISSING:
            assert getattr(options, field.name) == field.default_factory(), field.name


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_every_option_has_help_and_one_spelling(command):
    flags = [flag_of(f) for f in argument_fields(command.options)]
    assert len(flags) == len(set(flags))
    assert all(f.metadata["arg"].help.strip() for f in argument_fields(command.options))


def test_choices_come_from_the_literal_types():
    from bmcnn_hw.config import Encoding, TransientEngine
    from bmcnn_hw.evaluate import BACKENDS, BackendName

    assert list(get_args(BackendName)) == list(BACKENDS)
    actions = {a.dest: a for a in _subparser("compile")._actions}
    assert actions["encoding"].choices == list(get_args(Encoding))
    assert {a.dest: a for a in _subparser("ppa")._actions}["engine"].choices == list(get_args(TransientEngine))


def _subparser(name):
    import argparse

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


@pytest.mark.parametrize("argv", [
    ["compile", "C", "-o", "B", "--skip-zero-reads", "--no-fit-tiles", "--clock-gating", "--sigma-on", "0.1",
     "--tia-rf", "auto", "--columns-per-adc", "4"],
    ["compile", "C", "-o", "B", "--skip-zero-reads", "auto", "--adc-range", "weights"],
    ["compile", "C", "-o", "B", "--no-skip-zero-reads", "--encoding", "reference"],
    ["sweep", "B1", "B2", "--labels", "a,b", "--sigmas", "0,0.25", "--no-tune", "--workers", "3"],
    ["regress", "r.toml", "--checkpoint", "c1", "--checkpoint", "c2", "--scheduler", "tcp://h:8786"],
    ["evaluate", "B", "--backend", "spice", "--images", "7", "--engine", "ngspice", "--json", "r.json"],
    ["rtl-regress", "B", "--calibrate", "50", "--tuning-method", "lsq", "--regenerate-rtl"],
    ["cosim", "my build", "--out", "runs/it's here", "--age", "1y"],
])
def test_command_line_writes_back_what_parses_into_the_same_options(argv):
    name, options = parse_command(argv)
    line = command_line(name, options)
    assert parse_command(shlex.split(line)[1:]) == (name, options)


def test_typed_values_not_strings():
    _, options = parse_command(["sweep", "B", "--sigmas", "0,0.1", "--labels", "x"])
    assert isinstance(options, SweepOptions)
    assert options.sigmas == [0.0, 0.1] and options.labels == ["x"] and options.build == [Path("B")]
    _, options = parse_command(["regress", "r.toml", "--checkpoint", "c1", "--checkpoint", "c2"])
    assert isinstance(options, RegressOptions) and options.checkpoint == [Path("c1"), Path("c2")]


@pytest.mark.parametrize("argv, message", [
    (["sweep", "B", "--sigmas", "0,-0.1"], "must be a number >= 0, not '-0.1'"),
    (["sweep", "B", "--sigmas", ","], "must be comma-separated numbers >= 0"),
    (["evaluate", "B", "--images", "0"], "must be a whole number >= 1, not '0'"),
    (["rtl-regress", "B", "--tuning", "t.json", "--calibrate", "5"], "not allowed with argument"),
    (["spice", "B", "--scheduler", "localhost"], "must be a scheduler address"),
])
def test_bad_command_lines_are_refused_by_the_parser(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_command(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_from_table_builds_typed_options_with_the_command_lines_checks(capsys):
    options = from_table(CompileOptions, ["ckpt"], {"out": "b", "chip-seed": 3, "fit_tiles": True,
                                                   "skip_zero_reads": "auto", "sigma_on": 0.2}, "f.toml")
    assert options == parse_command(["compile", "ckpt", "-o", "b", "--chip-seed", "3", "--fit-tiles",
                                     "--skip-zero-reads", "auto", "--sigma-on", "0.2"])[1]
    options = from_table(EvaluateOptions, ["b"], {"limit": 5}, "f.toml")  # the old spelling warns
    assert options.images == 5
    assert capsys.readouterr().err.strip() == "warning: f.toml: limit is deprecated and goes in the next release; " \
                                              "use images"
    assert from_table(SweepOptions, ["a", "b"], {"sigmas": [0, 0.5]}, "f.toml").sigmas == [0.0, 0.5]


@pytest.mark.parametrize("cls, args, table, message", [
    (CompileOptions, ["c"], {"out": "b", "lanes": 2}, r"f\.toml: unknown key\(s\) lanes; expected some of "),
    (CompileOptions, ["c"], {}, r"f\.toml: lacks --out$"),
    (CompileOptions, [], {"out": "b"}, r"f\.toml: lacks CKPT_DIR$"),
    (CompileOptions, ["c", "d"], {"out": "b"}, r"f\.toml: 1 value\(s\) too many; expected CKPT_DIR$"),
    (CompileOptions, ["c"], {"out": "b", "chip_seed": "1"}, r"f\.toml: chip_seed = '1' is not a whole number$"),
    (CompileOptions, ["c"], {"out": "b", "chip_seed": -1}, r"f\.toml: chip_seed = -1 must be a whole number >= 0"),
    (CompileOptions, ["c"], {"out": "b", "encoding": "diff"}, r"encoding = 'diff' is not one of 'differential', "),
    (SweepOptions, ["b"], {"sigmas": "0,0.1"}, r"sigmas = '0,0.1' is not a list \(each item a number\)"),
    (SweepOptions, ["b"], {"sigmas": [0, -1]}, r"sigmas = '0,-1' must be a number >= 0, not '-1'"),
    (EvaluateOptions, ["b"], {"images": 0}, r"images = 0 must be a whole number >= 1, not '0'"),
    (EvaluateOptions, ["b"], {"images": 3, "limit": 4}, r"f\.toml: images is given twice \(under two spellings\)"),
])
def test_bad_flow_options_are_one_error_naming_the_file(cls, args, table, message):
    with pytest.raises(ConfigError, match=message):
        from_table(cls, args, table, "f.toml")


def test_exclusive_options_in_a_flow():
    from bmcnn_hw.options import RtlRegressOptions

    with pytest.raises(ConfigError, match=r"f\.toml: tuning and calibrate exclude each other; give one"):
        from_table(RtlRegressOptions, ["b"], {"tuning": "t.json", "calibrate": 5}, "f.toml")


def test_run_command_from_python(capsys):
    """A script fills an options class and runs the command, as the CLI does."""
    from bmcnn_hw.commands import run_command
    from bmcnn_hw.options import ModelsOptions

    assert run_command("models", ModelsOptions(json=True)) == 0
    rows = json.loads(capsys.readouterr().out)
    assert "bmcnn-compact" in {r["name"] for r in rows}
    with pytest.raises(ConfigError, match="models: options must be a ModelsOptions, not CompileOptions"):
        run_command("models", CompileOptions(checkpoint=Path("c"), out=Path("b")))
    with pytest.raises(ConfigError, match="no command 'format-disk'"):
        run_command("format-disk", ModelsOptions())


@pytest.mark.parametrize("options, message", [
    (EvaluateOptions(build=Path("b"), images=0), r"^evaluate: images = 0 must be a whole number >= 1, not '0'$"),
    (EvaluateOptions(build=Path("b"), images="10"), r"^evaluate: images = '10' is not a whole number or absent"),
    (EvaluateOptions(build=Path("b"), backend="gold"), r"^evaluate: backend = 'gold' is not one of 'torch', "),
    (SweepOptions(build=[Path("b")], sigmas=[0.1, -0.1]), r"^sweep: sigmas = '0.1,-0.1' must be a number >= 0"),
    (SweepOptions(build=["b"]), r"^sweep: build = \['b'\] is not a list \(each item a path\)$"),
])
def test_run_command_checks_a_scripts_values_as_the_command_line_does(options, message):
    """Options built in Python get the command line's type, choice and range checks before any work."""
    from bmcnn_hw.commands import run_command

    command = {EvaluateOptions: "evaluate", SweepOptions: "sweep"}[type(options)]
    with pytest.raises(ConfigError, match=message):
        run_command(command, options)


def test_compile_with_an_architecture_leaves_the_callers_options_alone(tmp_path):
    """The architecture's settings are resolved into a copy: a Python caller's options object is
    not changed by running the command."""
    from bmcnn_hw.commands import _apply_architecture

    options = CompileOptions(checkpoint=Path("c"), out=Path("b"), arch="efficient")
    resolved, arch = _apply_architecture(options)
    assert arch is not None and resolved.encoding == "reference" and options.encoding is None


def test_the_tables_beside_the_declarations_name_the_same_things():
    """Two maps kept beside the options classes: every device override sets a DeviceParams field
    (a field missing from the map would be parsed and silently ignored), and every command has a
    handler."""
    from bmcnn_hw.commands import HANDLERS
    from bmcnn_hw.config import DeviceParams
    from bmcnn_hw.options.common import DEVICE_FIELDS, DeviceOverrides

    assert set(DEVICE_FIELDS) == {f.name for f in dataclasses.fields(DeviceOverrides)}
    assert set(DEVICE_FIELDS.values()) <= {f.name for f in dataclasses.fields(DeviceParams)}
    assert set(HANDLERS) == {c.name for c in COMMANDS}
