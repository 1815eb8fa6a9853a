"""MAC engine of digital fixed-point layers: construction checks, the cycle count it reports,
and the layer top (engine + periphery + pool/argmax) against the golden model on Verilator
(compiled harness) and in the cocotb testbench on Icarus and Verilator, on synthetic layers and
on the digital layers of a real bmcnn-hybrid build."""

from __future__ import annotations

import dataclasses
import gc

import numpy as np
import pytest

from bmcnn_hw.artefact import CompiledLayer, load_model
from bmcnn_hw.cosim.rtl_check import check_rtl
from bmcnn_hw.cosim.rtl_regress import expected_outputs, first_difference, layer_harness, mac_payloads, start_layer_run
from bmcnn_hw.cosim.runner import run_stream_tb
from bmcnn_hw.cosim.scenarios import MAC_IN, full_layer_scenario, layer_top_scenario, periphery_scenario
from bmcnn_hw.errors import ConfigError
from bmcnn_hw.golden.integer import exact_matmul
from bmcnn_hw.golden.layers import layer_output, layer_rows, network_input
from bmcnn_hw.rtl.emit import layer_texts, mac_name, module_name, top_name
from bmcnn_hw.rtl.layer import layer_stream_fields
from bmcnn_hw.rtl.mac import MacEngine, frame_cycles, layer_cycles, mac_engine_for
from bmcnn_hw.rtl.periphery import ERROR_BITS, layer_registers
from tests.helpers import needs, run_cli

HARNESS_OVERHEAD = 12
"""Cycles the stream harness adds to a run: 2 of reset, 8 of drain, 2 to read `error`."""


def digital_layer(kind: str, lanes: int, seed: int = 0, cols: int = 8, weight_bits: int = 8) -> CompiledLayer:
    """A small random digital layer: conv 5x5 on 8x8 8-bit images with pool 2, or the output fc."""
    rng = np.random.default_rng(seed)
    rows = 25
    bound = 1 << (weight_bits - 1)
    weight = rng.integers(-bound, bound, (rows, cols)).astype(np.int16)
    peak = 255 * rows * bound
    common = dict(kernel=5, pool=2, input_bits=8, weight=weight, acc_min=-peak, acc_max=peak, digital=True,
                  weight_bits=weight_bits, mac_lanes=lanes)
    if kind == "conv":
        return CompiledLayer(name="conv0", kind="conv", in_shape=(1, 8, 8), out_shape=(cols, 2, 2),
                             theta=rng.integers(-20000, 20000, cols), flip=rng.integers(0, 2, cols).astype(np.uint8),
                             **common)
    return CompiledLayer(name="fc0", kind="fc", in_shape=(1, 5, 5), out_shape=(cols,), **{**common, "kernel": 0,
                         "pool": 1}, score_scale=rng.integers(-50, 50, cols), score_bias=rng.integers(-999, 999, cols))


def _images(layer: CompiledLayer, n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *layer.in_shape))


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")  # construction fails on purpose
def test_bad_lanes_and_accumulators_raise_one_sentence_naming_the_layer():
    with pytest.raises(ConfigError, match="layer conv0: 3 MAC lanes do not divide its 8 output channels"):
        mac_engine_for(digital_layer("conv", 3))
    wide = dataclasses.replace(digital_layer("conv", 8), acc_min=-(1 << 40), acc_max=1 << 40)
    with pytest.raises(ConfigError, match="layer conv0: 8-bit fixed-point weights x 8-bit inputs over 25 rows need "
                                          "a 42-bit accumulator"):
        mac_engine_for(wide)
    narrow = dataclasses.replace(digital_layer("conv", 8), acc_min=-100, acc_max=100)
    with pytest.raises(ConfigError, match="layer conv0: its dot products reach"):
        mac_engine_for(narrow)
    with pytest.raises(ConfigError, match="outside the signed 4-bit range"):
        MacEngine(weight=[[9], [1]], weight_bits=4, input_bits=1, lanes=1, members=1, acc_width=8)
    with pytest.raises(ConfigError, match="a MAC frame needs at least two input elements"):
        MacEngine(weight=[[3]], weight_bits=4, input_bits=1, lanes=1, members=1, acc_width=8)
    gc.collect()


def test_cycle_count_formula():
    # conv0 of bmcnn-hybrid: 25 rows, 32 channels, pool windows of 4, 144 windows per image
    assert frame_cycles(25, 32, 32, 4) == 100 + 1 * (100 + 128)
    assert frame_cycles(25, 32, 1, 4) == 100 + 32 * (100 + 4)
    assert layer_cycles(digital_layer("conv", 2)) == 4 * frame_cycles(25, 8, 2, 4)
    assert layer_cycles(digital_layer("fc", 5, cols=10)) == 25 + 2 * (25 + 5)


def test_error_register_documents_the_input_bit_for_digital_layers_only(compiled):
    digital = layer_registers(digital_layer("conv", 8))["error"]
    assert digital.width == 5 and "bit 4 (input)" in digital.doc
    crossbar = layer_registers(compiled.layers[0])["error"]
    assert crossbar.width == len(ERROR_BITS) - 1 and "input" not in crossbar.doc


@needs("verilator")
@pytest.mark.verilator
@pytest.mark.parametrize("kind, lanes, cols", [("conv", 1, 8), ("conv", 4, 8), ("conv", 8, 8), ("fc", 2, 10),
                                               ("fc", 10, 10)])
def test_layer_top_equals_golden_and_takes_the_reported_cycles(tmp_path, kind, lanes, cols):
    """Every output of 20 random images through the compiled harness; cycles = the formula."""
    layer = digital_layer(kind, lanes, seed=lanes, cols=cols)
    for name, text in layer_texts(layer).items():
        (tmp_path / name).write_text(text)
    images = _images(layer, 20)
    rows = layer_rows(layer, network_input(images, layer.input_shift))
    golden = layer_output(layer, exact_matmul(rows, layer.weight))
    fields = layer_stream_fields(layer, top=True)
    run = start_layer_run(layer_harness(tmp_path, layer), layer, tmp_path / "out.bin")
    run.send(mac_payloads(layer, rows, fields["i"]))
    result = run.finish()
    assert first_difference(layer, expected_outputs(layer, golden), result.outputs, fields["o"]) is None
    assert result.error == 0 and result.beats == rows.size
    assert result.cycles == len(images) * layer_cycles(layer) + HARNESS_OVERHEAD


@pytest.mark.parametrize("sim", [pytest.param("icarus", marks=[pytest.mark.icarus, needs("iverilog")]),
                                 pytest.param("verilator", marks=[pytest.mark.verilator, needs("verilator")])])
@pytest.mark.parametrize("kind, lanes", [("conv", 2), ("fc", 5)])
@pytest.mark.slow
def test_layer_top_in_cocotb_from_power_up(tmp_path, sim, kind, lanes):
    """The cocotb bench (idles, stalls) with a non-zero first element right after power-up: an
    earlier engine lost exactly that write on Icarus (its write address was unknown until the
    element counter first moved), which zero borders of MNIST images hid."""
    layer = digital_layer(kind, lanes, seed=7, cols=10)
    for name, text in layer_texts(layer).items():
        (tmp_path / name).write_text(text)
    images = _images(layer, 3)
    images[..., 0, 0] = 255
    rows = layer_rows(layer, network_input(images, layer.input_shift))
    scenario, _ = full_layer_scenario(layer, layer_output(layer, exact_matmul(rows, layer.weight)), rows,
                                      len(images))
    scenario.update(idle_prob=0.1, stall_prob=0.3, seed=1)
    assert scenario["steps"][0]["beat"] == [255, 0]  # the first element after power-up
    assert run_stream_tb(tmp_path / f"{top_name(layer)}.v", top_name(layer), scenario, tmp_path / sim,
                         sim) == len(scenario["expected"])


@needs("verilator")
@pytest.mark.verilator
def test_short_and_long_frames_set_the_input_error_bit(tmp_path):
    layer = digital_layer("fc", 10, cols=10)
    for name, text in layer_texts(layer).items():
        (tmp_path / name).write_text(text)
    fields = layer_stream_fields(layer, top=True)["i"]
    binary = layer_harness(tmp_path, layer)
    value, last = 1 << fields["value"][0], 1 << fields["last"][0]
    # 25 elements: one frame. 11: `last` too early. 27: the buffer is full after 25 (no `last`),
    # and the last 2 form a frame that their `last` closes too early: two errors, two results.
    for length, outputs, error in ((25, 1, 0), (11, 1, 1), (27, 2, 1)):
        run = start_layer_run(binary, layer, tmp_path / "out.bin")
        run.send(np.asarray([value] * (length - 1) + [value | last], dtype=np.uint32))
        result = run.finish()
        assert (len(result.outputs), result.error) == (outputs, error << ERROR_BITS["input"][0]), length


@pytest.mark.icarus
@needs("iverilog")
@pytest.mark.slow
def test_digital_layers_of_a_hybrid_build_on_icarus(hybrid_build, mnist_test, tmp_path):
    """The periphery and the layer top of conv0 and fc4 of a real bmcnn-hybrid build, with
    register traffic, resets, idles and back-pressure (cocotb on Icarus)."""
    model = load_model(hybrid_build)
    images = mnist_test.images[:2]
    _check_digital_layers(model, images, tmp_path, "icarus")


@pytest.mark.verilator
@needs("verilator")
@pytest.mark.slow
def test_digital_layers_of_a_hybrid_build_on_verilator(hybrid_build, mnist_test, tmp_path):
    model = load_model(hybrid_build)
    _check_digital_layers(model, mnist_test.images[:2], tmp_path, "verilator")


def _check_digital_layers(model, images, tmp_path, sim: str) -> None:
    from bmcnn_hw.golden.integer import run_integer

    trace = run_integer(model, images)
    layer_input = network_input(images, model.layers[0].input_shift)
    checked = []
    for i, layer in enumerate(model.layers):
        if layer.digital:
            for name, text in layer_texts(layer).items():
                (tmp_path / name).write_text(text)
            acc = trace.accumulators[i].reshape(-1, layer.cols)
            rng = np.random.default_rng(i)
            picks = np.stack([rng.integers(0, acc.shape[0], 60), rng.integers(0, layer.cols, 60)], axis=1)
            scenario = periphery_scenario(layer, acc, {(0, 0): acc}, picks, seed=i)
            assert run_stream_tb(tmp_path / f"{module_name(layer)}.v", module_name(layer), scenario,
                                 tmp_path / sim / module_name(layer), sim) == len(scenario["expected"])
            top = layer_top_scenario(layer, trace.accumulators[i], trace.outputs[i], layer_rows(layer, layer_input),
                                     len(images), 3, seed=i)
            assert top["inputs"] == MAC_IN
            assert run_stream_tb(tmp_path / f"{top_name(layer)}.v", top_name(layer), top,
                                 tmp_path / sim / top_name(layer), sim) == len(top["expected"])
            checked.append(layer.name)
        layer_input = trace.outputs[i]
    assert checked == ["conv0", "fc4"]


def test_hybrid_build_writes_mac_rtl_and_reports_lanes(hybrid_build, tmp_path):
    model = load_model(hybrid_build)
    assert [layer.mac_lanes for layer in model.layers] == [32, 0, 0, 0, 10]
    assert (hybrid_build / "rtl" / f"{mac_name(model.layers[0])}.v").is_file()
    text = (hybrid_build / "rtl" / "mac_conv0.v").read_text()
    assert "module mac_conv0" in text and "i__payload" in text


@pytest.mark.slow
def test_compile_rejects_lanes_that_do_not_divide_a_digital_layer(hybrid_build, tmp_path):
    checkpoint = load_model(hybrid_build).provenance["checkpoint"]
    code, out, err = run_cli("compile", checkpoint, "-o", tmp_path / "b", "--mac-lanes", "3")
    assert code == 2 and "layer conv0: mac_lanes 3 does not divide its 32 output channels" in err
    assert "Traceback" not in err and not (tmp_path / "b").exists()
    code, out, err = run_cli("compile", checkpoint, "-o", tmp_path / "b2", "--mac-lanes", "2")
    assert code == 0, err
    assert "MAC engine with 2 lanes" in out and "fc4" in out
    assert [layer.mac_lanes for layer in load_model(tmp_path / "b2").layers] == [2, 0, 0, 0, 2]


@pytest.mark.slow
@pytest.mark.icarus
@needs("iverilog")
def test_rtl_check_covers_hybrid_builds(hybrid_build, mnist_test, tmp_path):
    """`rtl --check` path: every module of the hybrid build, crossbar and digital, bit-exact."""
    checks = check_rtl(load_model(hybrid_build), mnist_test.images[:1], tmp_path, sim="icarus", per_layer=40)
    assert [c.module for c in checks if not c.passed] == []
    assert {"layer_conv0", "periphery_conv0", "layer_fc4"} <= {c.module for c in checks}
