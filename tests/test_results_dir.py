"""Results directories (io_utils.results_dir): claimed per command and input, reused by a re-run,
another input's results kept unless forced, no trace left by a run that failed at once."""

from __future__ import annotations

import json

import pytest

from bmcnn_hw.errors import ConfigError
from bmcnn_hw.io_utils import RESULTS_MARKER, OutputBusy, results_dir


def test_a_rerun_reuses_its_own_results_and_another_build_needs_force(tmp_path):
    out = tmp_path / "runs" / "cosim"
    with results_dir(out, "cosim", [tmp_path / "a"], "cosim.json"):
        (out / "cosim.json").write_text("{}")
    with results_dir(out, "cosim", [tmp_path / "a"], "cosim.json"):  # the same build again: fine
        pass
    with pytest.raises(ConfigError, match=r"holds `bmcnn-hw cosim` results for .*/a; pass --force"):
        with results_dir(out, "cosim", [tmp_path / "b"], "cosim.json"):
            pass
    with pytest.raises(ConfigError, match="holds `bmcnn-hw cosim` results"):
        with results_dir(out, "sweep", [tmp_path / "a"], "sweep.md"):
            pass
    with results_dir(out, "cosim", [tmp_path / "b"], "cosim.json", force=True):
        pass
    assert json.loads((out / RESULTS_MARKER).read_text())["sources"] == [str((tmp_path / "b").resolve())]
    assert (out / "cosim.json").is_file()


def test_a_failure_before_any_result_leaves_no_directory(tmp_path):
    out = tmp_path / "fresh"
    with pytest.raises(ConfigError, match="bad input"):
        with results_dir(out, "cosim", [tmp_path], "cosim.json"):
            raise ConfigError("bad input")
    assert not out.exists()


def test_two_writers_of_one_results_directory(tmp_path):
    out = tmp_path / "res"
    with results_dir(out, "cosim", [tmp_path], "cosim.json"):
        with pytest.raises(OutputBusy, match="another process is writing it"):
            with results_dir(out, "cosim", [tmp_path], "cosim.json"):
                pass


def test_a_marker_edited_into_nonsense_is_one_line(tmp_path):
    out = tmp_path / "res"
    out.mkdir()
    (out / RESULTS_MARKER).write_text(json.dumps({"command": "cosim", "sources": [1, None]}))
    with pytest.raises(ConfigError, match=f"holds an unreadable {RESULTS_MARKER}; pass --force"):
        with results_dir(out, "cosim", [tmp_path], "cosim.json"):
            pass
