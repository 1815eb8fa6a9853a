"""Named architectures: shipped files, option precedence, and what a build records."""

from __future__ import annotations

import json

import pytest

from bmcnn_hw.arch import load_architecture, resolve_option, shipped_architectures
from bmcnn_hw.cli import main
from bmcnn_hw.errors import ConfigError


def test_shipped_architectures_load():
    assert {"baseline", "clock-gated"} <= set(shipped_architectures())
    assert load_architecture("baseline").options == {}
    assert load_architecture("clock-gated").options == {"clock_gating": True}


def test_command_line_wins_over_the_architecture(tmp_path):
    arch = load_architecture("clock-gated")
    assert resolve_option(None, arch, "clock_gating", False) is True
    assert resolve_option(False, arch, "clock_gating", False) is False
    assert resolve_option(None, arch, "tile", "128x128") == "128x128"
    path = tmp_path / "mine.toml"
    path.write_text('description = "x"\n[compile]\ntile = "64x64"\nadc_bits = true\n')
    with pytest.raises(ConfigError, match=r"mine.toml: \[compile\]: adc_bits = True is not a whole number$"):
        load_architecture(str(path))


@pytest.mark.slow
def test_compile_records_the_architecture_and_the_gating(checkpoint, tmp_path, capsys):
    build = tmp_path / "b"
    assert main(["compile", str(checkpoint), "-o", str(build), "--arch", "clock-gated", "--tile", "64x64"]) == 0
    assert "architecture clock-gated:" in capsys.readouterr().out
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["provenance"]["architecture"] == "clock-gated"
    assert manifest["hardware"]["digital"]["clock_gating"] is True
    assert manifest["hardware"]["geometry"]["tile_rows"] == 64
    assert all(layer["clock_gating"] for layer in manifest["layers"])
    assert "cfg_clk" in (build / "rtl" / "periphery_fc1.v").read_text()
    shared = tmp_path / "shared"
    assert main(["compile", str(checkpoint), "-o", str(shared), "--columns-per-adc", "16"]) == 0
    readout = json.loads((shared / "manifest.json").read_text())["hardware"]["readout"]
    assert readout["columns_per_adc"] == 16 and readout["columns_per_comparator"] == 0
    off = tmp_path / "off"
    assert main(["compile", str(checkpoint), "-o", str(off), "--arch", "clock-gated", "--no-clock-gating"]) == 0
    assert not any(layer["clock_gating"] for layer in json.loads((off / "manifest.json").read_text())["layers"])
