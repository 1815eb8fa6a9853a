"""The VACASK translation of a transient tile netlist, as text (no simulator needed)."""

from __future__ import annotations

import pytest

from bmcnn_hw.config import DeviceParams
from bmcnn_hw.errors import SimulationError
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.ppa.cost_model import load_cost_model
from bmcnn_hw.ppa.transient import _TransientTile
from bmcnn_hw.spice.vacask import Translation
from tests.helpers import random_fc_model


def _transient_files(tmp_path, tia: str = "gbw"):
    device = DeviceParams(r_wire_ohm=2.0, sigma_on_rel=0.1, sigma_off_rel=0.1)
    model = random_fc_model(5, 3, 0, tile_rows=8, tile_cols=4, device=device)
    tile = _TransientTile(model, Chip(model, device, 0), 0, 0, 0, load_cost_model(), 4e-9, ideal_tia=tia == "ideal")
    (tmp_path / "t.sub").write_text(tile.subckt_text())
    (tmp_path / "t.cir").write_text(tile.text("t.sub"))
    return tile, tmp_path / "t.cir"


def test_capacitors_ramps_and_op_amp_tias_translate(tmp_path):
    tile, cir = _transient_files(tmp_path)
    t = Translation(cir)
    lines = t.text.splitlines()
    assert t.rows == 5 and t.senses == [f"xt{j}_vsense" for j in range(6)] and t.modules == ["tia_gbw.va"]
    assert 'load "tia_gbw.osdi"' in lines and 'load "capacitor.osdi"' in lines
    models = [line for line in lines if line.startswith("model tia")]
    assert len(models) == 1 and f"rf={tile.readout.tia_rf_ohm!r}" in models[0]  # one card for the tile's TIAs
    # each TIA: the sense source from the column's bottom wire node into its own input, the op-amp to o<j>
    assert "xt2_vsense (c2_b xt2_inx) vsource dc=0" in lines and "xt2 (xt2_inx o2) tia0" in lines
    tr, v = load_cost_model().array.driver_rise_s, tile.chip.params.v_read_v
    t0, t1 = tile.t_start, tile.t_start + tile.window_s / 2
    wave = ", ".join(repr(float(x)) for x in (0, 0, t0, 0, t0 + tr, v, t1, v, t1 + tr, 0))
    assert f'vr3 (r3_0 0) vsource type="pwl" wave=[{wave}]' in lines
    # one capacitor per wire segment of the 5 used rows x 6 physical columns, and the padding of
    # each wire (8 physical columns, 8 rows per tile) lumped at its far end
    assert sum(line.startswith(("cr0_", "cr4_")) for line in lines) == 2 * 6
    assert sum(line.startswith("crp") for line in lines) == 5 and sum(line.startswith("ccp") for line in lines) == 6
    assert sum(line.startswith("cc") and not line.startswith("ccp") for line in lines) == 6 * 5


def test_an_ideal_tia_transient_is_ngspices_only(tmp_path):
    """An ideal TIA has no output node in the VACASK translation (it only senses), so a transient
    with ideal TIAs is one clear error before VACASK is called."""
    from bmcnn_hw.ppa.transient import transient_read

    device = DeviceParams(r_wire_ohm=2.0)
    model = random_fc_model(5, 3, 0, tile_rows=8, tile_cols=4, device=device)
    with pytest.raises(SimulationError, match=r"ideal TIAs .* ngspice"):
        transient_read(model, Chip(model, device, 0), 0, 0, 0, load_cost_model(), tmp_path, window_s=4e-9,
                       ideal_tia=True, engine="vacask")
