"""A directed protocol scenario for a crossbar layer's periphery: the interface answers of
``rtl/README.md`` ("Same-edge events and results under errors") checked on the Verilog a build
hands off, as part of ``rtl --check`` and every check built on it.

Steps, in order: the last channel (its index at the range boundary) is clean; a tuning write on
the edge of a channel's last beat applies from the next result; a beat without ``first`` sets
``frame``; where the channel field can carry an index past the last channel, that sets
``channel`` too and clearing one of two set bits keeps the other; a write-1-to-clear on the edge
of a hardware set loses; clearing everything reads 0; and the next well-framed channel is exact.
"""

from __future__ import annotations

from ..artefact import CompiledLayer
from ..rtl.layer import layer_stream_fields
from ..rtl.periphery import ERROR_BITS, bipolar_offsets, layer_registers
from ..rtl.streams import index_width
from .scenarios import PERIPHERY_IN, beat_order

CODE = 1
"""The ADC code of every beat of a directed channel (in range for any ADC of 2 bits or more)."""


def _channel(layer: CompiledLayer, channel: int) -> list[list[int]]:
    """The beats of one well-framed channel, every code :data:`CODE`."""
    order = beat_order(layer)
    return [[CODE, plane, channel, int(k == 0), int(k == len(order) - 1), 0] for k, (plane, _) in enumerate(order)]


def expected_acc(layer: CompiledLayer, channel: int, tune: int) -> int:
    """The periphery's ``acc`` for :func:`_channel`: the shifted sum, bipolar-corrected, plus ``tune``."""
    value = CODE
    if layer.adc_window:  # the one code of the channel's window whose low bits are CODE's
        low = int(layer.adc_low[channel])
        value = low + (CODE - low) % 2 ** layer.adc_bits
    total = sum(value << plane for plane, _ in beat_order(layer))
    result = (total + bipolar_offsets(layer)[channel]) >> 1 if layer.bipolar else total
    return result + tune


def protocol_scenario(layer: CompiledLayer) -> dict:
    """The directed scenario (module doc) for ``periphery_<layer>`` of a crossbar layer read out by ADCs."""
    regs = layer_registers(layer)
    error, bit = regs["error"].offset, {name: 1 << b for name, (b, _) in ERROR_BITS.items()}
    edge = layer.cols - 1
    tune = regs["tune_offset"].offset + edge
    late = min(100, 2 ** (layer.acc_width - 2) - 1)  # fits the register, and the accumulator with the sum
    early = min(5, late // 2)
    beats = _channel(layer, edge)
    steps: list[dict] = [{"write": [tune, early]}, *({"beat": b} for b in beats),
                         *({"beat": b} for b in beats[:-1]), {"beat_with_write": [beats[-1], tune, late]},
                         *({"beat": b} for b in beats), {"read": [tune, late]}, {"write": [tune, 0]},
                         {"idle": 2}, {"read": [error, 0]}]
    expected: list[list] = [[edge, expected_acc(layer, edge, t)] for t in (early, early, late)]
    stray = [CODE, 0, 0, 0, 1, 0]  # no `first` while no channel is open
    steps += [{"beat": stray}, {"idle": 2}, {"read": [error, bit["frame"]]}]
    expected.append([0, None])
    if layer.cols < 2 ** index_width(layer.cols):  # the field can carry the first index past the end
        steps += [*({"beat": b} for b in _channel(layer, layer.cols)), {"idle": 2},
                  {"read": [error, bit["frame"] | bit["channel"]]},
                  {"write": [error, bit["channel"]]}, {"read": [error, bit["frame"]]}]
        expected.append([layer.cols, None])
    steps += [{"beat_with_write": [stray, error, bit["frame"]]}, {"idle": 2}, {"read": [error, bit["frame"]]},
              {"write": [error, (1 << len(ERROR_BITS)) - 1]}, {"read": [error, 0]},
              *({"beat": b} for b in _channel(layer, 0))]
    expected += [[0, None], [0, expected_acc(layer, 0, 0)]]
    return {"fields": layer_stream_fields(layer, top=False), "inputs": PERIPHERY_IN, "outputs": ["channel", "acc"],
            "steps": steps, "expected": expected, "idle_prob": 0.0, "stall_prob": 0.0, "seed": 0}
