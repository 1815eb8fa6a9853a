"""Directed cocotb tests of the four interface questions rtl/README.md answers ("Same-edge
events and errors"): a tuning write on the edge of a channel's last beat, a write-1-to-clear on
the edge of a hardware set, what a result carries under a protocol error, and where the
``group`` bit can fire. Each runs on the ungated and the clock-gated periphery."""

from __future__ import annotations

import pytest

from bmcnn_hw.cosim.runner import run_stream_tb
from bmcnn_hw.cosim.scenarios import PERIPHERY_IN
from bmcnn_hw.rtl.periphery import ERROR_BITS, bipolar_offsets, layer_registers, periphery_for_layer
from bmcnn_hw.rtl.streams import stream_fields
from tests.helpers import gated, needs

BIT = {name: 1 << b for name, (b, _) in ERROR_BITS.items()}
CH = 3  # a channel of fc2 (10 channels)
pytestmark = [pytest.mark.icarus, needs("iverilog")]


def _beat(code: int, channel: int = CH, first: int = 1, last: int = 1, plane: int = 0, group_last: int = 0):
    """One beat into fc2's periphery (binary input: one plane; one row tile: first = last = 1)."""
    return [code, plane, channel, first, last, group_last]


def _acc(layer, code: int, tune: int, channel: int = CH) -> int:
    """The result ``acc`` of a one-beat channel: the code (bipolar-corrected) plus the tuning offset."""
    result = (code + bipolar_offsets(layer)[channel]) >> 1 if layer.bipolar else code
    return result + tune


def _run(model, tmp_path, steps: list, expected: list, outputs=("channel", "acc")) -> int:
    from amaranth.back import verilog

    fc2 = model.layers[2]
    periphery = periphery_for_layer(fc2)
    path = tmp_path / "periphery_fc2.v"
    path.write_text(verilog.convert(periphery, name="periphery_fc2", emit_src=False))
    scenario = {"fields": stream_fields(periphery), "inputs": PERIPHERY_IN, "outputs": list(outputs),
                "steps": steps, "expected": expected, "idle_prob": 0.0, "stall_prob": 0.0, "seed": 0}
    return run_stream_tb(path, "periphery_fc2", scenario, tmp_path / "sim")


@pytest.fixture(params=[False, True], ids=["ungated", "clock-gated"])
def model(request, compiled):
    """The session build's model, or the same with clock-gated peripheries."""
    return gated(compiled) if request.param else compiled


def test_a_tuning_write_on_the_edge_of_a_last_beat_applies_from_the_next_result(model, tmp_path):
    fc2 = model.layers[2]
    tune = layer_registers(fc2)["tune_offset"].offset + CH
    steps = [{"write": [tune, 5]}, {"beat": _beat(10)},
             {"beat_with_write": [_beat(10), tune, 100]},  # same edge: this result still uses 5
             {"beat": _beat(10)}, {"read": [tune, 100]}]
    expected = [[CH, _acc(fc2, 10, 5)], [CH, _acc(fc2, 10, 5)], [CH, _acc(fc2, 10, 100)]]
    assert _run(model, tmp_path, steps, expected) == 3


def test_a_clear_on_the_edge_of_a_hardware_set_loses_to_the_set(model, tmp_path):
    error = layer_registers(model.layers[2])["error"].offset
    steps = [{"beat": _beat(1, channel=12)}, {"idle": 2}, {"read": [error, BIT["channel"]]},
             {"beat_with_write": [_beat(1, channel=12), error, BIT["channel"]]},  # set and clear together
             {"idle": 2}, {"read": [error, BIT["channel"]]},  # the set won
             {"beat_with_write": [_beat(1, plane=1), error, BIT["channel"]]},  # clears channel, sets plane
             {"idle": 2}, {"read": [error, BIT["plane"]]},
             {"beat": _beat(1, channel=12)}, {"idle": 2}, {"read": [error, BIT["plane"] | BIT["channel"]]},
             {"write": [error, BIT["channel"]]}, {"read": [error, BIT["plane"]]},  # two set, one cleared
             {"write": [error, BIT["plane"] | BIT["channel"]]}, {"read": [error, 0]}]
    assert _run(model, tmp_path, steps, [[12], [12], [CH], [12]], outputs=("channel",)) == 4


def test_a_result_under_an_error_carries_its_beats_channel_and_the_next_channel_is_exact(model, tmp_path):
    fc2 = model.layers[2]
    steps = [{"beat": _beat(7, channel=12)},  # channel error: acc undefined
             {"beat": _beat(7, plane=1)},  # plane error
             {"beat": _beat(7, first=0)},  # frame error: nothing open
             {"beat": _beat(9, channel=4, last=0)}, {"beat": _beat(9, channel=5, first=0)},  # channel changes
             {"beat": _beat(-3)},  # a well-framed channel after the errors: exact
             {"beat": _beat(6, channel=4, group_last=1)}]  # group_last rides through to `last`
    expected = [[12, None, 0], [CH, None, 0], [CH, None, 0], [5, None, 0],
                [CH, _acc(fc2, -3, 0), 0], [4, _acc(fc2, 6, 0, channel=4), 1]]
    assert _run(model, tmp_path, steps, expected, outputs=("channel", "acc", "last")) == 6


def test_the_group_bit_never_fires_in_a_standalone_periphery(model, tmp_path):
    """Only a layer top's pool or argmax sets ``group`` (tests/rtl/test_periphery.py makes layer_conv0's
    pool set it); a periphery alone, fed group_last at every wrong place, leaves it 0."""
    error = layer_registers(model.layers[2])["error"].offset
    steps = [{"beat": _beat(1, channel=c, group_last=int(c % 3 == 0))} for c in range(7)]
    steps += [{"idle": 2}, {"read": [error, 0]}]
    assert _run(model, tmp_path, steps, [[c] for c in range(7)], outputs=("channel",)) == 7
    note = next(r for r in layer_registers(model.layers[1]).registers if r.name == "error").doc
    assert "never set in this layer" in note  # fc1: no pool, no argmax
    note = next(r for r in layer_registers(model.layers[2]).registers if r.name == "error").doc
    assert "set only in layer_fc2.v (by its argmax)" in note
