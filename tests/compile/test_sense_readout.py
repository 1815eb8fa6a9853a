"""Sense-amplifier read-out (``compile --sense-layers``): which layers qualify, the comparator's
decision in the physics executor, its offsets, and what the periphery is fed."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from bmcnn_hw.artefact import load_model, save_model
from bmcnn_hw.compile.tile import tile
from bmcnn_hw.config import CrossbarGeometry, ReadoutParams
from bmcnn_hw.errors import ArtefactError, ConfigError
from bmcnn_hw.golden.chip import Chip
from bmcnn_hw.golden.crossbar import CrossbarAccumulator, run_crossbar
from bmcnn_hw.golden.integer import run_integer
from bmcnn_hw.golden.layers import periphery_inputs
from bmcnn_hw.golden.readout import adc_scale
from bmcnn_hw.golden.tile_reader import PhysicsReader
from bmcnn_hw.presets import get_preset
from tests.helpers import hidden_fc_model


def with_readout(model, geometry: CrossbarGeometry | None = None, device=None, **readout):
    """``model`` re-tiled with readout fields (and geometry / device) changed."""
    hardware = dataclasses.replace(model.hardware, readout=dataclasses.replace(model.hardware.readout, **readout),
                                   geometry=geometry or model.hardware.geometry, device=device or model.hardware.device)
    return tile(dataclasses.replace(model, hardware=hardware))


def binary_rows(n: int, rows: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, rows)) < 0.4).astype(np.uint8)


def test_only_hidden_layers_with_binary_inputs_on_one_row_tile_qualify():
    model = hidden_fc_model(20, 4, input_bits=1, tile_rows=32, seed=0)
    assert [la.sense for la in with_readout(model, sense_layers="auto").layers] == [True, False]
    assert with_readout(model, sense_layers="fc0").layers[0].sense
    with pytest.raises(ConfigError, match=r"layer fc1 cannot be read out by sense amplifiers .* is the output layer"
                                          r"\); layers that qualify: fc0"):
        with_readout(model, sense_layers="fc0,fc1")
    with pytest.raises(ConfigError, match=r"no layer 'conv9' \(layers: fc0, fc1\); layers that qualify: fc0"):
        with_readout(model, sense_layers="conv9")
    two_tiles = hidden_fc_model(40, 4, input_bits=1, tile_rows=32, seed=0)
    with pytest.raises(ConfigError, match=r"at most 32 rows; it has 40 rows of 1-bit inputs.*qualify: none"):
        with_readout(two_tiles, sense_layers="fc0")
    multibit = hidden_fc_model(20, 4, input_bits=3, tile_rows=32, seed=0)
    with pytest.raises(ConfigError, match="it has 20 rows of 3-bit inputs"):
        with_readout(multibit, sense_layers="fc0")
    bipolar = CrossbarGeometry(32, 4, input_mode="bipolar")
    with pytest.raises(ConfigError, match="layers that qualify: none"):
        with_readout(model, geometry=bipolar, sense_layers="fc0")
    with pytest.raises(ConfigError, match="sense_layers must be layer names"):
        ReadoutParams(sense_layers="fc0,,fc1")


def test_a_sense_layer_has_no_adc_clipping_and_a_reference_dac_for_every_threshold():
    model = with_readout(hidden_fc_model(20, 4, input_bits=1, tile_rows=32, seed=0), adc_bits=3, sense_layers="fc0")
    sensed, other = model.layers
    assert sensed.adc_bits == 6 and other.adc_bits == 3  # +-20 needs 6 signed bits whatever --adc-bits says
    assert not sensed.adc_window


def test_the_ideal_chip_decides_exactly_as_golden():
    model = with_readout(hidden_fc_model(30, 6, input_bits=1, tile_rows=32, seed=1), sense_layers="auto")
    rows = binary_rows(300, 30, 2)
    golden = run_integer(model, rows[:, None, None, :].reshape(300, 1, 1, 30))
    physics, _ = run_crossbar(model, rows[:, None, None, :].reshape(300, 1, 1, 30), PhysicsReader(Chip(model)))
    assert golden.same_as(physics)


def test_a_varied_chip_compares_the_column_current_with_the_reference():
    """On a chip with variation and read wires the sense layer's activation is
    ``(I+ - I-) x adc_scale >= theta - 1/2`` from the read's own currents (no ADC range)."""
    device = dataclasses.replace(get_preset("ideal"), sigma_on_rel=0.3, sigma_off_rel=0.3, r_wire_ohm=1.0)
    model = with_readout(hidden_fc_model(30, 6, input_bits=1, tile_rows=32, seed=3), device=device,
                         sense_layers="fc0")
    layer = model.layers[0]
    rows = binary_rows(200, 30, 4)
    chip = Chip(model, device, 5)
    trace, acc = run_crossbar(model, rows.reshape(200, 1, 1, 30), PhysicsReader(chip), record=True)
    read = next(r for r in acc.reads if r.layer == 0)
    scaled = (read.i_plus - read.i_minus) * adc_scale(acc.unit, model.hardware.readout)
    decided = scaled >= layer.theta - 0.5
    assert np.array_equal(trace.outputs[0], (decided ^ layer.flip.astype(bool)).astype(np.uint8))
    assert np.array_equal(read.codes, np.rint(scaled))


def test_comparator_offsets_are_seeded_per_chip_and_leave_the_devices_alone():
    device = dataclasses.replace(get_preset("ideal"), sigma_on_rel=0.1, sigma_off_rel=0.1)
    base = with_readout(hidden_fc_model(30, 8, input_bits=1, tile_rows=32, seed=6), device=device,
                        sense_layers="fc0")
    offset = with_readout(base, comparator_offset_v=0.05)
    rows = binary_rows(400, 30, 7).reshape(400, 1, 1, 30)

    def codes(model, seed):
        return run_crossbar(model, rows, PhysicsReader(Chip(model, device, seed)))[0].accumulators

    plain, shifted, again, other = codes(base, 1), codes(offset, 1), codes(offset, 1), codes(offset, 2)
    assert all(np.array_equal(a, b) for a, b in zip(shifted, again, strict=True))  # same seed, same chip
    assert not np.array_equal(plain[0], shifted[0]) and not np.array_equal(shifted[0], other[0])
    hidden = np.random.default_rng(8).integers(0, 2, (100, 1, 8))
    fc1 = [CrossbarAccumulator(m, PhysicsReader(Chip(m, device, 1)))(1, m.layers[1], hidden) for m in (base, offset)]
    assert np.array_equal(*fc1)  # the ADC layer's devices and codes are unchanged
    # one constant per column: 50 mV over R_f * unit (10 kOhm x 18 uA = 0.18 V per code) is ~0.28 codes
    accumulator = CrossbarAccumulator(offset, PhysicsReader(Chip(offset, device, 1)))
    per_code = offset.hardware.readout.tia_rf_ohm * accumulator.unit
    sampled = accumulator._comparator_offsets(0, offset.layers[0])
    assert sampled is not None and 0.05 / per_code / 4 < np.std(sampled) < 0.05 / per_code * 4


def test_the_periphery_gets_decisions_against_the_tuned_reference():
    model = with_readout(hidden_fc_model(20, 3, input_bits=1, tile_rows=32, seed=0), sense_layers="fc0")
    layer = dataclasses.replace(model.layers[0], theta=np.array([2, -1, 0]))
    codes = {(0, 0): np.array([[2, -2, 0], [1, -1, -1]])}
    assert periphery_inputs(layer, codes)[(0, 0)].tolist() == [[1, 0, 1], [0, 1, 0]]
    assert periphery_inputs(layer, codes, np.array([1, 0, -1]))[(0, 0)].tolist() == [[1, 0, 0], [1, 1, 0]]
    assert periphery_inputs(model.layers[1], codes) is codes  # an ADC layer's beats are its codes


def test_a_skipped_read_decides_as_zero_current(mnist_test):
    """With zero-read skipping, an all-zero read's code is 0, so its decision is theta - tune <= 0,
    what a comparator with no column current decides."""
    model = with_readout(hidden_fc_model(24, 5, input_bits=1, tile_rows=32, seed=8), sense_layers="fc0",
                         skip_zero_reads=True)
    rows = binary_rows(50, 24, 9)
    rows[:10] = 0
    trace, _ = run_crossbar(model, rows.reshape(50, 1, 1, 24), PhysicsReader(Chip(model)))
    layer = model.layers[0]
    assert np.array_equal(trace.outputs[0][:10], np.broadcast_to((0 >= layer.theta) ^ layer.flip, (10, 5)))


def test_a_build_that_marks_an_unqualified_layer_sense_is_refused(tmp_path):
    model = with_readout(hidden_fc_model(20, 4, input_bits=1, tile_rows=32, seed=0), sense_layers="fc0")
    save_model(model, tmp_path)
    assert load_model(tmp_path).layers[0].sense
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["layers"][1]["sense"] = True
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtefactError, match=r"layers\[1\] is marked sense but is not a hidden crossbar layer"):
        load_model(tmp_path)


def test_the_ideal_chip_check_has_ideal_comparators():
    """``physics_vs_golden``'s ideal chip strips comparator offsets with the devices' spread: a
    build with 0.5 V offsets (~3 codes) still checks exact, while its sampled chip does not."""
    from bmcnn_hw.checks import physics_vs_golden

    model = with_readout(hidden_fc_model(30, 8, input_bits=1, tile_rows=32, seed=2), sense_layers="fc0",
                         comparator_offset_v=0.5)
    rows = binary_rows(300, 30, 3).reshape(300, 1, 1, 30)
    assert physics_vs_golden(model, rows).passed
    assert not physics_vs_golden(model, rows, chip=Chip(model)).passed


def test_sense_comparators_share_columns_on_their_own_and_decide_one_word_per_read():
    """``columns_per_comparator`` sets a sense layer's converter sharing in ``ppa`` (0: as ADCs),
    leaves the ADC layers to ``columns_per_adc``, must divide the tile; a sense layer's periphery
    takes one beat per read."""
    from bmcnn_hw.ppa.flow import converter_share
    from bmcnn_hw.ppa.records import PpaOptions
    from bmcnn_hw.ppa.schedule import layer_schedule

    base = hidden_fc_model(20, 4, input_bits=1, tile_rows=32, seed=0)
    model = with_readout(base, sense_layers="fc0", columns_per_adc=4, columns_per_comparator=2)
    sensed, other = model.layers
    options = PpaOptions()
    assert converter_share(sensed, model, options) == 2 and converter_share(other, model, options) == 4
    same = with_readout(base, sense_layers="fc0", columns_per_adc=4)
    assert converter_share(same.layers[0], same, options) == 4
    assert layer_schedule(sensed, "differential").beats == 1  # one read, every channel in one word
    assert layer_schedule(other, "differential").beats == other.cols
    with pytest.raises(ConfigError, match="columns_per_comparator must be a whole number"):
        ReadoutParams(columns_per_comparator=-1)


def test_decision_words_pack_any_width_for_cocotb_and_64_bits_for_the_stream_harness():
    """Bit c of a word is channel c: the Python-int words (cocotb) take any number of channels and
    match the numpy words of the compiled harness up to 64; wider numpy words are refused."""
    from bmcnn_hw.cosim.scenarios import pack_words, unpack_words, word, word_bits
    from bmcnn_hw.errors import SimulationError

    rng = np.random.default_rng(4)
    wide = rng.integers(0, 2, 100)
    assert word_bits(word(wide), 100) == wide.tolist() and word(wide) >> 99 == wide[99]
    rows = rng.integers(0, 2, (5, 64))
    words = pack_words(rows)
    assert [int(w) for w in words] == [word(r) for r in rows] and (unpack_words(words, 64) == rows).all()
    with pytest.raises(SimulationError, match="100 channels does not fit"):
        pack_words(wide)


def test_a_sense_periphery_is_interface_version_3_and_older_sense_rtl_is_refused(tmp_path):
    """A sense periphery's ``id`` says interface version 3 (one word beat per read); ADC layers keep
    version 2. RTL whose sense layer says version 2 (one beat per decision) is refused in one line."""
    from bmcnn_hw.rtl.emit import check_interface_version
    from bmcnn_hw.rtl.periphery import ID_VALUE, SENSE_ID_VALUE, layer_registers

    model = with_readout(hidden_fc_model(20, 4, input_bits=1, tile_rows=32, seed=0), sense_layers="fc0")
    ids = [layer_registers(layer)["id"].reset[0] for layer in model.layers]
    assert ids == [SENSE_ID_VALUE, ID_VALUE] == [0xB3C00003, 0xB3C00002]
    (tmp_path / "rtl").mkdir()
    for layer, ident in zip(model.layers, ids, strict=True):
        (tmp_path / "rtl" / f"regmap_{layer.name}.json").write_text(
            json.dumps({"registers": [{"name": "id", "reset": [ident]}]}))
    check_interface_version(tmp_path, model)
    (tmp_path / "rtl" / "regmap_fc0.json").write_text(json.dumps({"registers": [{"name": "id", "reset": [ID_VALUE]}]}))
    with pytest.raises(ArtefactError, match=r"regmap_fc0\.json: RTL interface version 2 from an older bmcnn-hw; "
                                            r"this one needs version 3"):
        check_interface_version(tmp_path, model)
