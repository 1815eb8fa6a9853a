"""Flow files and the regression matrix."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest

from bmcnn_hw.errors import ConfigError
from bmcnn_hw.flows import matrix_cases
from bmcnn_hw.options.flow_file import load_flow
from tests.helpers import REPO, needs, run_cli


def test_shipped_flows_parse_into_typed_options():
    from bmcnn_hw.options import CompileOptions, RtlRegressOptions, SweepOptions

    command, options = load_flow(REPO / "flows" / "compile_to_netlist.toml")
    assert command == "compile" and isinstance(options, CompileOptions)
    assert options.checkpoint == Path("runs/demo/checkpoint") and options.out == Path("runs/flows/build")
    assert options.chip_seed == 1 and options.sigma_on == 0.1 and options.input_mode == "unipolar"
    command, options = load_flow(REPO / "flows" / "sweep.toml")
    assert isinstance(options, SweepOptions) and options.sigmas == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert options.build == [Path("runs/demo/build")] and options.workers is None
    command, options = load_flow(REPO / "flows" / "rtl_regress.toml")
    assert isinstance(options, RtlRegressOptions) and (options.images, options.calibrate) == (10000, 500)
    _, cases = matrix_cases(REPO / "flows" / "regression.toml")
    assert len(cases) == 8 and len({c["name"] for c in cases}) == 8


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "flows").glob("*.toml")
                                         if "[flow]" in p.read_text()))
def test_every_shipped_flow_equals_its_command_line(name):
    """A shipped flow's options are the ones its printed command line parses into: the flow reader
    and the CLI read the one declaration alike (types, defaults, spellings)."""
    import shlex

    from bmcnn_hw.cli import parse_command
    from bmcnn_hw.options.fields import command_line

    command, options = load_flow(REPO / "flows" / name)
    assert parse_command(shlex.split(command_line(command, options))[1:]) == (command, options)


def test_bad_flow_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[flow\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_flow(bad)
    bad.write_text('[flow]\ncommand = "format-disk"\n')
    with pytest.raises(ConfigError, match=r"bad\.toml: \[flow\]: command = 'format-disk' is not one of 'compile', "):
        load_flow(bad)
    bad.write_text('[matrix]\ntile = ["128x128"]\n')
    with pytest.raises(ConfigError, match=r"bad\.toml: \[matrix\]: lacks checkpoint, encoding, sigma, seed, sim; "):
        matrix_cases(bad)
    bad.write_text('[matrix]\ncheckpoint = ["c"]\ntile = []\nencoding = ["reference"]\nsigma = [0]\nseed = [0]\n'
                   'sim = ["icarus"]\n[settings]\nphysics_images = "all"\n')
    with pytest.raises(ConfigError, match=r"bad\.toml: \[settings\]: physics_images = 'all' is not a whole number$"):
        matrix_cases(bad)
    bad.write_text(bad.read_text().replace('"all"', "100"))
    with pytest.raises(ConfigError, match=r"bad\.toml: \[matrix\] needs non-empty lists for tile$"):
        matrix_cases(bad)


@pytest.mark.slow
def test_flow_run_compiles(checkpoint, tmp_path):
    flow = tmp_path / "f.toml"
    flow.write_text(f'[flow]\ncommand = "compile"\nargs = ["{checkpoint}"]\n[options]\nout = "{tmp_path / "b"}"\n'
                    'tile = "64x64"\nsigma_on = 0.1\nchip_seed = 2\n')
    code, _, err = run_cli("flow", "run", flow)
    assert code == 0, err
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["provenance"]["chip_seed"] == 2


@pytest.mark.ngspice
@pytest.mark.icarus
@pytest.mark.slow
@needs("iverilog")
def test_regression_reports_and_reruns_a_failing_case(checkpoint, mnist_dir, tmp_path):
    regression = tmp_path / "r.toml"
    regression.write_text('[settings]\nphysics_images = 50\nrtl_outputs = 50\n'
                          f'[matrix]\ncheckpoint = ["{checkpoint}"]\n'
                          'tile = ["5x0", "0x5"]\nencoding = ["differential"]\nsigma = [0.1]\nseed = [3]\n'
                          'sim = ["icarus"]\n')
    code, out, err = run_cli("regress", regression, "--out", tmp_path / "out", "--data-dir", mnist_dir,
                             "--workers", "2")
    assert code == 1, err
    suite = ElementTree.parse(tmp_path / "out" / "junit.xml").getroot()
    assert suite.get("tests") == "2" and suite.get("failures") == "2"
    failing = [c for c in suite.iter("testcase") if c.find("failure") is not None][1]
    assert "tile_rows must be a positive integer" in failing.find("failure").get("message")
    rerun = failing.find("failure").text
    assert rerun.startswith("bmcnn-hw regress") and "--case" in rerun
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "0/2 cases passed" in summary and (tmp_path / "out" / "summary.html").is_file()
    # the printed re-run line, as a user would paste it, runs the failing case alone
    args = rerun.split()[1:]  # after "bmcnn-hw"
    code, out, err = run_cli(*args, "--out", tmp_path / "again", "--data-dir", mnist_dir)
    assert code == 1 and "0/1 cases passed" in out, err + out
    assert ElementTree.parse(tmp_path / "again" / "junit.xml").getroot().get("tests") == "1"


@pytest.mark.ngspice
@pytest.mark.icarus
@pytest.mark.slow
@needs("iverilog")
def test_the_default_regression_matrix_passes(tiny_checkpoint, mnist_dir, tmp_path):
    """flows/regression.toml as shipped, on the small test checkpoint instead of runs/demo's: its two
    opposite corners end to end (128 x 128 differential tiles on the ideal chip; 64 x 64
    reference tiles on a chip at sigma 0.2), each as `regress --case` runs it. The other six
    cases combine the same tiles, encodings and sigmas (their names and settings expand in
    test_shipped_flows_parse_into_command_lines); all eight took 217 s of this tier."""
    regression = REPO / "flows" / "regression.toml"
    _, cases = matrix_cases(regression, [tiny_checkpoint])
    corners = [c for c in cases if (c["tile"], c["encoding"], c["sigma"]) in
               {("128x128", "differential", 0.0), ("64x64", "reference", 0.2)}]
    assert len(corners) == 2
    for case in corners:
        out_dir = tmp_path / case["name"]
        code, out, err = run_cli("regress", regression, "--checkpoint", tiny_checkpoint, "--case", case["name"],
                                 "--out", out_dir, "--data-dir", mnist_dir)
        assert code == 0, out + err
        assert "1/1 cases passed" in out
        suite = ElementTree.parse(out_dir / "junit.xml").getroot()
        assert suite.get("tests") == "1" and suite.get("failures") == "0"
        assert not (out_dir / case["name"]).exists(), "a passing case left its scratch builds"


@pytest.mark.ngspice
@pytest.mark.icarus
@pytest.mark.slow
@needs("iverilog")
def test_regression_runs_on_a_dask_cluster(tiny_checkpoint, mnist_dir, tmp_path):
    """One case does all its work on a Dask worker (compile, physics, SPICE, RTL) and passes;
    the two that cannot compile fail with their reason; results come back in case order."""
    from distributed import LocalCluster

    from bmcnn_hw.flows import run_regression

    regression = tmp_path / "r.toml"
    regression.write_text('[settings]\nphysics_images = 20\nspice_images = 1\nrtl_outputs = 20\n'
                          f'[matrix]\ncheckpoint = ["{tiny_checkpoint}"]\n'
                          'tile = ["0x5", "128x128", "5x0"]\nencoding = ["differential"]\n'
                          'sigma = [0.1]\nseed = [0]\nsim = ["icarus"]\n')
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        results = run_regression(regression, tmp_path / "out", mnist_dir, scheduler=cluster.scheduler_address)
    assert [r["tile"] for r in results] == ["0x5", "128x128", "5x0"]  # case order kept
    assert [r["passed"] for r in results] == [False, True, False], results
    assert all("must be a positive integer" in results[k]["failures"][0] for k in (0, 2))
    physics = "crossbar physics vs golden: 20 images, every accumulator and activation identical"
    assert results[1]["checks"][0] == physics
    assert not (tmp_path / "out" / results[1]["name"]).exists()  # a passing case's scratch is removed


def test_cell_axis_of_the_regression_matrix(tmp_path):
    _, cases = matrix_cases(REPO / "flows" / "regression_cells.toml")
    assert [c["cell"] for c in cases] == ["linear", "sinh", "1t1r"]
    assert cases[0]["name"].endswith("_icarus") and cases[2]["name"].endswith("_icarus_1t1r")
    _, default = matrix_cases(REPO / "flows" / "regression.toml")
    assert {c["cell"] for c in default} == {"linear"}
    bad = tmp_path / "bad.toml"
    bad.write_text((REPO / "flows" / "regression_cells.toml").read_text().replace('"1t1r"]', '"memristor"]'))
    with pytest.raises(ConfigError, match=r"\[matrix\]: cell = .* is not a list \(each item one of 'linear', 'sinh', "):
        matrix_cases(bad)
