"""Architectures as data: shipped model files, fixed-point formats, bad configs."""

from __future__ import annotations

import pytest

from bmcnn_hw.cli import main
from bmcnn_hw.errors import ConfigError
from bmcnn_hw.train.architecture import FixedFormat, LayerSpec, ModelConfig
from bmcnn_hw.train.registry import describe_models, load_model_file, resolve_model, shipped_models


def test_the_four_shipped_models_load_with_their_tile_counts():
    assert shipped_models() == ["bmcnn-compact", "bmcnn-compact-1bit", "bmcnn-float", "bmcnn-hybrid", "bmcnn-large"]
    rows = {r["name"]: r for r in describe_models()}
    assert rows["bmcnn-compact"]["tiles_per_layer"] == [1, 36, 1]  # 25x32, 4608x128, 128x10 on 128x128
    assert rows["bmcnn-large"]["tiles_per_layer"] == [1, 3, 5, 32, 4]
    assert rows["bmcnn-hybrid"]["tiles_per_layer"] == [0, 3, 5, 32, 0]  # first and last layers digital
    assert rows["bmcnn-float"]["tiles"] is None
    assert resolve_model("bmcnn-compact") == ModelConfig(train=resolve_model("bmcnn-compact").train,
                                                         description=resolve_model("bmcnn-compact").description)
    hybrid = resolve_model("bmcnn-hybrid")
    assert [s.precision for s in hybrid.layers] == ["fixed", "binary", "binary", "binary", "fixed"]
    assert hybrid.layers[0].weight_fmt == FixedFormat(True, 1, 7)


def test_fixed_point_formats():
    q = FixedFormat.parse("Q1.7")
    assert (q.bits, q.code_min, q.code_max, str(q)) == (8, -128, 127, "Q1.7")
    u = FixedFormat.parse("UQ0.8")
    assert (u.bits, u.code_min, u.code_max) == (8, 0, 255)
    for bad in ("Q1", "1.7", "Q0.40", "Q0.7"):
        with pytest.raises(ConfigError):
            FixedFormat.parse(bad)


def _write(tmp_path, text: str):
    path = tmp_path / "m.toml"
    path.write_text(text)
    return path


FC = '[[layers]]\nkind = "fc"\nout = 10\n'


def test_bad_model_files_name_the_file_and_field(tmp_path):
    with pytest.raises(ConfigError, match=r"m.toml: not valid TOML"):
        load_model_file(_write(tmp_path, "layers = [\n"))
    with pytest.raises(ConfigError, match=r"m.toml: .*pool 5 does not divide"):
        load_model_file(_write(tmp_path, '[[layers]]\nkind = "conv"\nout = 4\nkernel = 5\npool = 5\n' + FC))
    with pytest.raises(ConfigError, match=r"layers\[1\].weight_format 'Q8.8'.*over the 24-bit accumulator"):
        load_model_file(_write(tmp_path, '[[layers]]\nkind = "conv"\nout = 4\nkernel = 5\n'
                                         '[[layers]]\nkind = "fc"\nout = 10\nprecision = "fixed"\n'
                                         'weight_format = "Q8.8"\n'))
    with pytest.raises(ConfigError, match=r"weight_format: 'Q1' is not a fixed-point format"):
        load_model_file(_write(tmp_path, FC + 'precision = "fixed"\nweight_format = "Q1"\n'))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) momentum"):
        load_model_file(_write(tmp_path, FC + "[train]\nmomentum = 0.9\n"))
    with pytest.raises(ConfigError, match=r"m.toml: layers\[0\]: unknown key\(s\) outs; expected some of kernel, "):
        load_model_file(_write(tmp_path, '[[layers]]\nkind = "fc"\nouts = 10\n'))
    with pytest.raises(ConfigError, match=r"m.toml: layers\[0\]: lacks out; expected kind, out, "):
        load_model_file(_write(tmp_path, '[[layers]]\nkind = "fc"\n'))
    with pytest.raises(ConfigError, match=r"m.toml: layers\[0\]: out = '10' is not a whole number$"):
        load_model_file(_write(tmp_path, '[[layers]]\nkind = "fc"\nout = "10"\n'))
    with pytest.raises(ConfigError, match=r"m.toml: missing \[\[layers\]\] tables"):
        load_model_file(_write(tmp_path, 'input_bits = 8\n'))
    with pytest.raises(ConfigError, match="float baseline must have every layer float"):
        ModelConfig(layers=(LayerSpec("conv", 4, kernel=5, precision="float"), LayerSpec("fc", 10)))


def test_unknown_model_is_one_line_listing_the_shipped_ones(capsys):
    assert main(["train", "--model", "bmcnn-huge", "--data-dir", "/nonexistent"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown model 'bmcnn-huge'" in err and "bmcnn-compact" in err


def test_models_command_lists_parameters_and_tiles(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "bmcnn-large" in out and "585,504" in out and " 45 " in out
