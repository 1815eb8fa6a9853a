"""Layer periphery: accumulator, tuning registers and threshold unit of one crossbar layer.

One input beat (``i``, :func:`~bmcnn_hw.rtl.streams.beat_layout`) carries one ADC code of
one output channel. A channel's beats arrive in sequence (bit planes x row tiles), the first
flagged ``first`` and the last ``last`` (a windowed ADC's code is first restored from its low
bits and its column's window). On the last beat the sum (bipolar:
``(sum + offset) >> 1``), plus the channel's tuning correction, is compared with the
channel's threshold: ``act = (acc >= theta) XOR flip``. The output layer instead gives the
integer score ``acc * S + B``. Thresholds, flips and tuning corrections are registers (reset
values from the CompiledModel) on a :class:`~bmcnn_hw.rtl.regs.RegisterBus`, described once
in :func:`periphery_registers`; the sticky ``error`` register flags beats that break the
protocol (see :data:`ERROR_BITS`). A layer read out by sense amplifiers (``sense``) instead
takes one beat per read carrying every channel's comparator decision (one lane per channel),
gives ``act = decision XOR flip`` for all of them in the same clock, and drives the comparators'
references ``theta - tune_offset`` on its ``cmp_ref`` port. The stream rule is
:func:`~bmcnn_hw.rtl.streams.stage_handshake`; the interface spec is in ``rtl/README.md``.
"""

from __future__ import annotations

from typing import Literal

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..artefact import CompiledLayer
from ..errors import ConfigError
from .clock_gate import add_gated_domain
from .regs import DATA_WIDTH, RegisterBus, RegisterMap, RegisterSpec
from .streams import (
    beat_layout,
    result_layout,
    sense_beat_layout,
    sense_result_layout,
    stage_handshake,
    stream_signature,
)

ERROR_BITS = {
    "channel": (0, "a beat's channel is >= the number of channels"),
    "plane": (1, "a beat's bit plane is >= the number of planes"),
    "frame": (2, "beat framing: `first` while a channel is open, or a beat without `first` for a "
                 "channel that is not open"),
    "group": (3, "the pool/argmax saw `last` after the wrong number of items (a pool window or an "
                 "image's classes)"),
    "input": (4, "the MAC engine saw `last` after the wrong number of input elements (digital layers only)"),
}
"""Bits of the sticky ``error`` register: name -> (bit, what sets it)."""


def error_bits(input_errors: bool) -> dict[str, tuple[int, str]]:
    """The :data:`ERROR_BITS` of a periphery (bit ``input`` only behind a MAC engine)."""
    return {name: bit for name, bit in ERROR_BITS.items() if input_errors or name != "input"}


def periphery_code_bits(layer: CompiledLayer) -> int:
    """Width of a beat's code: the ADC's, a digital layer's whole dot product (acc_width), or a
    sense layer's one-bit comparator decision (per lane)."""
    if layer.sense:
        return 1
    return layer.acc_width if layer.digital else layer.adc_bits


def periphery_planes(layer: CompiledLayer) -> int:
    """Bit planes of a layer's beats: the input bits of a crossbar layer, 1 behind a MAC engine."""
    return 1 if layer.digital else layer.input_bits

ID_VALUE = 0xB3C0_0002
"""Constant of the read-only ``id`` register: bmcnn-hw periphery, interface version 2 (stream
ports and the error register)."""
SENSE_ID_VALUE = 0xB3C0_0003
"""The ``id`` of a sense read-out periphery: interface version 3, one word beat per read (version
2 sense peripheries took one beat per decision)."""


def _signed_width(values) -> int:
    return max(int(v).bit_length() for v in list(values) + [1]) + 1


def output_score_width(acc_width: int, score_scale) -> int:
    """Bits of the output layer's score ``tuned_acc * S + B`` (tuned_acc has acc_width + 1 bits)."""
    return acc_width + 1 + _signed_width(score_scale) + 1


SENSE_UNFRAMED = ("never set by a sense read-out periphery: its beats carry every channel at once, with no "
                  "channel, plane or framing fields")
"""Added to the description of the error bits a sense periphery's word beats cannot set."""


def periphery_registers(name: str, channels: int, acc_width: int, thetas=None, flips=None,
                        input_errors: bool = False, group_note: str | None = None,
                        sense: bool = False, hardwired: bool = False) -> RegisterMap:
    """Register map of a periphery: id, channels, error, theta[], flip[] (hidden layers), tune_offset[]
    (``input_errors``: the error register has the ``input`` bit of a MAC engine's periphery;
    ``group_note``: where this layer's ``group`` bit can fire, added to its description;
    ``sense``: a sense read-out periphery, whose beats cannot break the channel framing;
    ``hardwired``: theta and flip are read-only constants, this layer's values)."""
    bits = error_bits(input_errors)
    if group_note:
        bits["group"] = (bits["group"][0], f"{bits['group'][1]}; {group_note}")
    if sense:
        bits.update({bit: (bits[bit][0], f"{bits[bit][1]}; {SENSE_UNFRAMED}") for bit in ("channel", "plane", "frame")})
    stride = max(256, 1 << (channels - 1).bit_length())
    ident = SENSE_ID_VALUE if sense else ID_VALUE
    regs = [
        RegisterSpec("id", 0x0, 32, "ro", (ident,),
                     f"constant 0x{ident:08X}: bmcnn-hw layer periphery, interface version {ident & 0xFFFF}"),
        RegisterSpec("channels", 0x1, 16, "ro", (channels,), "number of output channels of the layer"),
        RegisterSpec("error", 0x2, len(bits), "w1c", (0,),
                     "protocol errors, one sticky bit each: "
                     + "; ".join(f"bit {bit} ({name}): {why}" for name, (bit, why) in bits.items())),
    ]
    if thetas is not None:
        access: Literal["ro", "rw"] = "ro" if hardwired else "rw"
        fixed = " (hard-wired: the compiled network's, in logic; tune_offset moves it)" if hardwired else ""
        regs.append(RegisterSpec("theta", stride, acc_width, access, tuple(int(t) for t in thetas),
                                 "per-channel threshold: act = (acc + tune_offset >= theta) XOR flip" + fixed,
                                 signed=True, count=channels))
        regs.append(RegisterSpec("flip", 2 * stride, 1, access, tuple(int(f) for f in flips),
                                 "per-channel flip of the activation (folded negative BN scale)"
                                 + (" (hard-wired)" if hardwired else ""), count=channels))
    regs.append(RegisterSpec("tune_offset", 3 * stride, acc_width, "rw", (0,) * channels,
                             "per-channel tuning correction added to the accumulator before the threshold "
                             "(and before the score affine of the output layer)", signed=True, count=channels))
    return RegisterMap(name, tuple(regs))


def layer_registers(layer: CompiledLayer) -> RegisterMap:
    """The register map of a CompiledLayer's periphery (reset values from the layer)."""
    hidden = not layer.is_output
    return periphery_registers(f"periphery_{layer.name}", layer.cols, layer.acc_width,
                               layer.theta if hidden else None, layer.flip if hidden else None,
                               input_errors=layer.digital, group_note=group_bit_note(layer), sense=layer.sense,
                               hardwired=layer.hardwired_thresholds)


def group_bit_note(layer: CompiledLayer) -> str:
    """Where a layer's ``group`` error bit can fire: only a layer top with a pool or argmax sets it."""
    if layer.is_output or layer.pool > 1:
        tail = "argmax" if layer.is_output else f"{layer.pool}x{layer.pool} pool"
        return (f"set only in layer_{layer.name}.v (by its {tail}); the standalone periphery_{layer.name}.v "
                "has no pool or argmax and reads 0 here")
    return "never set in this layer (no pool or argmax follows its periphery): reads 0 in every module"


class LayerPeriphery(wiring.Component):
    """Accumulator + tuning registers + threshold (or score) of one layer, with streams and a register bus.

    Args:
        channels: output channels (weight columns) of the layer.
        adc_bits: width of a signed ADC code.
        planes: bit planes of the layer input (1 for binary inputs).
        acc_width: accumulator width; must hold ``acc_bound`` (checked).
        thetas: per-channel threshold; ``None`` for the output layer.
        flips: per-channel flip of the comparison; ``None`` for the output layer.
        acc_bound: largest |accumulator| the layer can produce.
        offsets: bipolar correction per channel; the sum becomes ``(sum + offset) >> 1``.
        code_lows: per channel, the low end of its windowed ADC (``compile --adc-range columns``):
            codes arrive as their ``adc_bits`` low bits ``v`` and the periphery restores
            ``low + ((v - low) mod 2**adc_bits)``, the one code of the window with those bits.
        score_scale: integer score scale per class of the output layer.
        score_bias: integer score bias per class of the output layer.
        name: component name used in the register map.
        group_errors: add the ``group_error`` input (a pool or argmax follows).
        input_errors: add the ``input_error`` input (a MAC engine feeds the periphery).
        clock_gating: clock-gate the read-write registers (theta, flip, tune_offset; open on reset
            or a bus write) and the result registers (open when a channel closes), and isolate
            the closing arithmetic from the beats before the last
            (:mod:`~bmcnn_hw.rtl.clock_gate`). Same behaviour, same timing at the ports.
        sense: the layer is read out by sense amplifiers: one beat per read carries every
            channel's comparator decision (bit ``c`` of ``code``,
            :func:`~bmcnn_hw.rtl.streams.sense_beat_layout`), and one result gives all the
            activations ``act = code XOR flip`` (``acc`` carries the decisions,
            :func:`~bmcnn_hw.rtl.streams.sense_result_layout`); no accumulator, adder or
            threshold comparator, and no per-channel multiplexer. The same registers set the
            comparators' references, driven on the ``cmp_ref`` port:
            ``cmp_ref[c] = theta[c] - tune_offset[c]`` per channel.
        hardwired_thresholds: ``theta`` and ``flip`` are read-only registers holding ``thetas`` and
            ``flips`` as constants in the logic (no flip-flops, write decode or bus multiplexer for
            them; their per-channel multiplexer becomes a constant table); ``tune_offset`` stays
            read-write. Same ports and timing; writes to theta or flip are ignored.

    Ports:
        i: stream of ADC codes (:func:`~bmcnn_hw.rtl.streams.beat_layout`), or of a sense layer's
            decision words.
        o: stream of results: channel, acc (signed acc_width + 1, tuned), act, last (the beat's
            ``group_last``), score (output layer only) (:func:`~bmcnn_hw.rtl.streams.result_layout`);
            a sense layer's decision and activation words.
        bus: register bus (:class:`~bmcnn_hw.rtl.regs.RegisterBus`).
        group_error (only with ``group_errors``): strobe from the pool/argmax behind this
            periphery; sets error bit ``group``.
        input_error (only with ``input_errors``): strobe from the MAC engine in front; sets error
            bit ``input``.
    """

    def __init__(self, *, channels: int, adc_bits: int, planes: int, acc_width: int,
                 thetas=None, flips=None, acc_bound: int | None = None, offsets=None, code_lows=None,
                 score_scale=None, score_bias=None, name: str = "periphery", group_errors: bool = False,
                 input_errors: bool = False, clock_gating: bool = False, sense: bool = False,
                 hardwired_thresholds: bool = False):
        for label, value in (("channels", channels), ("adc_bits", adc_bits), ("planes", planes),
                             ("acc_width", acc_width)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{label} must be a positive integer, not {value!r}")
        if acc_width > DATA_WIDTH:
            raise ConfigError(f"acc_width {acc_width} exceeds the {DATA_WIDTH}-bit register bus")
        lo, hi = -(2 ** (acc_width - 1)), 2 ** (acc_width - 1) - 1
        needed = acc_bound if acc_bound is not None else 2 ** (adc_bits - 1) * (2 ** planes - 1)
        if needed > hi:
            raise ConfigError(f"acc_width {acc_width} cannot hold the accumulator bound {needed}")
        if thetas is not None:
            thetas, flips = [int(t) for t in thetas], [int(f) for f in flips]
            if len(thetas) != channels or len(flips) != channels:
                raise ConfigError(f"need {channels} thresholds and flips, got {len(thetas)} and {len(flips)}")
            bad = [t for t in thetas if not lo <= t <= hi]
            if bad:
                raise ConfigError(f"threshold {bad[0]} out of range [{lo}, {hi}] of a {acc_width}-bit accumulator")
            if any(f not in (0, 1) for f in flips):
                raise ConfigError("flips must be 0 or 1")
        if offsets is not None:
            offsets = [int(o) for o in offsets]
            if len(offsets) != channels or any(not lo <= o <= hi for o in offsets):
                raise ConfigError(f"need {channels} offsets within [{lo}, {hi}]")
        if code_lows is not None:
            code_lows = [int(v) for v in code_lows]
            if len(code_lows) != channels or any(not lo <= v <= hi for v in code_lows):
                raise ConfigError(f"need {channels} code lows within [{lo}, {hi}]")
        self.scores = None
        if score_scale is not None:
            self.scores = ([int(s) for s in score_scale], [int(b) for b in score_bias])
            if len(self.scores[0]) != channels or len(self.scores[1]) != channels:
                raise ConfigError(f"need {channels} score scales and biases")
        self.channels, self.adc_bits, self.planes, self.acc_width = channels, adc_bits, planes, acc_width
        self.thetas, self.flips, self.offsets, self.code_lows = thetas, flips, offsets, code_lows
        self.clock_gating, self.sense = bool(clock_gating), bool(sense)
        if self.sense and (thetas is None or planes != 1 or adc_bits != 1 or offsets is not None
                           or code_lows is not None):
            raise ConfigError("a sense periphery takes one 1-bit decision per output of a hidden layer (one plane, "
                              "no bipolar offsets or ADC windows)")
        self.registers = periphery_registers(name, channels, acc_width, thetas, flips, input_errors, sense=self.sense,
                                             hardwired=bool(hardwired_thresholds))
        self.error_bits = error_bits(input_errors)
        score_width = None
        if self.scores is not None:
            self.score_width = score_width = output_score_width(acc_width, self.scores[0])
        if self.sense:
            beats, results = sense_beat_layout(channels), sense_result_layout(channels)
        else:  # a windowed code is unsigned
            beats = beat_layout(adc_bits, planes, channels, windowed=code_lows is not None)
            results = result_layout(channels, acc_width, score_width)
        members = {"i": In(stream_signature(beats)), "o": Out(stream_signature(results)),
                   "bus": In(RegisterBus(self.registers.addr_width))}
        if group_errors:
            members["group_error"] = In(1)
        if input_errors:
            members["input_error"] = In(1)
        if self.sense:
            members["cmp_ref"] = Out(data.ArrayLayout(signed(acc_width + 1), channels))
        super().__init__(members)

    def _register_file(self, m: Module, sets: dict) -> dict:
        """Register storage, bus writes (one decoder per register) and registered bus reads.

        ``sets`` maps a ``w1c`` register to the bits hardware sets this cycle (a set wins
        over a clear in the same cycle). Read-write registers live in ``sync``, or with
        ``clock_gating`` in its gated copy ``cfg`` (:func:`~bmcnn_hw.rtl.clock_gate.add_gated_domain`).
        """
        storage, read_value, bus = {}, Signal(DATA_WIDTH), self.bus
        config_domain = "cfg" if self.clock_gating else "sync"
        m.d.comb += read_value.eq(0)
        for reg in self.registers.registers:
            shape = signed(reg.width) if reg.signed else unsigned(reg.width)
            cells = [Const(int(v), shape) if reg.access == "ro" else Signal(shape, init=int(v), name=f"{reg.name}_{k}")
                     for k, v in enumerate(reg.reset)]
            storage[reg.name] = cells
            data = bus.wdata[: reg.width]
            for k, cell in enumerate(cells):
                write = bus.we & (bus.addr == reg.offset + k)
                if reg.access == "rw":
                    with m.If(write):
                        m.d[config_domain] += cell.eq(data.as_signed() if reg.signed else data)
                elif reg.access == "w1c":
                    m.d.sync += cell.eq((cell & ~Mux(write, data, 0)) | sets[reg.name])
            # Arrays sit at a power-of-two aligned base, so the low address bits index them.
            index_bits = max(1, (reg.count - 1).bit_length())
            in_range = bus.addr < reg.offset + reg.count
            if reg.offset:
                in_range &= bus.addr >= reg.offset
            with m.If(in_range):
                cell = Array(cells)[bus.addr[:index_bits]] if reg.count > 1 else cells[0]
                m.d.comb += read_value.eq(cell.as_signed() if reg.signed else cell)
        m.d.sync += bus.rdata.eq(read_value)
        if self.clock_gating:  # any write opens it: no address decode on the half-cycle enable path
            add_gated_domain(m, "cfg", bus.we)
        return storage

    def _protocol_errors(self, m: Module, accept) -> Signal:
        """The error bits a beat (or the tail's strobe) sets this cycle, in :data:`ERROR_BITS` order."""
        errors = Signal(len(self.error_bits))
        order = sorted(self.error_bits, key=lambda n: self.error_bits[n][0])
        flags = {"group": getattr(self, "group_error", 0), "input": getattr(self, "input_error", 0)}
        if not self.sense:  # a sense beat has no channel, plane or framing to get wrong
            flags.update(self._framing_errors(m, accept))
        m.d.comb += errors.eq(Cat(*(flags.get(name, 0) for name in order)))
        return errors

    def _framing_errors(self, m: Module, accept) -> dict:
        """The ``channel``, ``plane`` and ``frame`` strobes of an ADC-code beat."""
        beat = self.i.payload
        open_, open_channel = Signal(), Signal.like(beat.channel)
        with m.If(accept):
            m.d.sync += [open_.eq(~beat.last), open_channel.eq(beat.channel)]
        framing = beat.first & open_ | ~beat.first & (~open_ | (beat.channel != open_channel))
        return {"channel": accept & (beat.channel >= self.channels), "plane": accept & (beat.plane >= self.planes),
                "frame": accept & framing}

    def _result_domain(self, m: Module, closes) -> str:
        """The result registers' domain: ``sync``, or with clock gating one open only in the cycles
        ``closes`` (a beat closes an output)."""
        if not self.clock_gating:
            return "sync"
        add_gated_domain(m, "res", closes)
        return "res"

    def _elaborate_sense(self, m: Module, accept, regs: dict) -> Module:
        """Sense read-out: the comparators' references out; every ``act = decision XOR flip`` of a
        read in one clock (the flips side by side: no multiplexer)."""
        beat, result_out = self.i.payload, self.o.payload
        for k in range(self.channels):
            m.d.comb += self.cmp_ref[k].eq(regs["theta"][k] - regs["tune_offset"][k])
        results = self._result_domain(m, accept)
        with m.If(accept):
            m.d.sync += self.o.valid.eq(1)
            m.d[results] += [result_out.acc.eq(beat.code), result_out.act.eq(beat.code ^ Cat(*regs["flip"])),
                             result_out.last.eq(beat.group_last)]
        return m

    def elaborate(self, platform):
        """Build the register file, the accumulator and the output register."""
        m = Module()
        beat, result_out = self.i.payload, self.o.payload
        accept = stage_handshake(m, self.i, self.o)
        regs = self._register_file(m, {"error": self._protocol_errors(m, accept)})
        if self.sense:
            return self._elaborate_sense(m, accept, regs)
        width = self.acc_width
        acc, total, result = Signal(signed(width)), Signal(signed(width)), Signal(signed(width))
        tuned = Signal(signed(width + 1))
        code = Signal(signed(width))
        if self.code_lows is None:
            m.d.comb += code.eq(beat.code)
        else:  # the window's one code with these low bits (code 0 stays 0: an idle read toggles nothing)
            low = Array(Const(v, signed(width)) for v in self.code_lows)[beat.channel]
            into = Signal(self.adc_bits)
            m.d.comb += [into.eq(beat.code - low), code.eq(low + into)]
        m.d.comb += total.eq(Mux(beat.first, 0, acc) + (code << beat.plane))
        # Clock gating also isolates the closing arithmetic: it sees the sum only on a channel's
        # last beat, so the tuning adder, comparator and score multiplier hold still between.
        closing = Mux(beat.last, total, 0) if self.clock_gating else total
        if self.offsets is None:
            m.d.comb += result.eq(closing)
        else:
            offset = Array(Const(o, signed(width)) for o in self.offsets)[beat.channel]
            m.d.comb += result.eq((closing + offset) >> 1)
        m.d.comb += tuned.eq(result + Array(regs["tune_offset"])[beat.channel])
        act = Signal()
        if self.thetas is not None:
            theta, flip = Array(regs["theta"])[beat.channel], Array(regs["flip"])[beat.channel]
            m.d.comb += act.eq((tuned >= theta) ^ flip)
        results = self._result_domain(m, accept & beat.last)  # gated: they change only when a channel closes
        with m.If(accept):
            m.d.sync += acc.eq(total)
            with m.If(beat.last):
                m.d.sync += self.o.valid.eq(1)
                m.d[results] += [result_out.channel.eq(beat.channel), result_out.acc.eq(tuned),
                                 result_out.act.eq(act), result_out.last.eq(beat.group_last)]
                if self.scores is not None:
                    scale = Array(Const(s, signed(_signed_width(self.scores[0]))) for s in self.scores[0])
                    bias = Array(Const(b, signed(_signed_width(self.scores[1]))) for b in self.scores[1])
                    m.d[results] += result_out.score.eq(tuned * scale[beat.channel] + bias[beat.channel])
        return m


def tune_offset_writes(layer: CompiledLayer, offsets) -> list[tuple[int, int]]:
    """Register writes (word address, value) that load a layer's tuning corrections into
    ``tune_offset`` (zero corrections are the reset value and are skipped)."""
    base = layer_registers(layer)["tune_offset"].offset
    return [(base + k, int(v)) for k, v in enumerate(offsets) if v]


def bipolar_offsets(layer: CompiledLayer) -> list[int]:
    """Per-channel constant of the bipolar correction: column sum x (2**input_bits - 1)."""
    return (layer.weight.sum(axis=0, dtype="int64") * (2 ** layer.input_bits - 1)).tolist()


def periphery_for_layer(layer: CompiledLayer, group_errors: bool = False, input_errors: bool = False) -> LayerPeriphery:
    """The periphery of a CompiledLayer (``group_errors``: for a layer top with a pool or argmax;
    ``input_errors``: behind a digital layer's MAC engine; clock-gated configuration registers
    when the layer says so)."""
    return LayerPeriphery(channels=layer.cols, adc_bits=periphery_code_bits(layer), planes=periphery_planes(layer),
                          acc_width=layer.acc_width, thetas=None if layer.is_output else layer.theta,
                          flips=None if layer.is_output else layer.flip, acc_bound=layer.acc_bound,
                          offsets=bipolar_offsets(layer) if layer.bipolar else None,
                          code_lows=layer.adc_low.tolist() if layer.adc_window else None,
                          score_scale=layer.score_scale if layer.is_output else None,
                          score_bias=layer.score_bias if layer.is_output else None,
                          name=f"periphery_{layer.name}", group_errors=group_errors, input_errors=input_errors,
                          clock_gating=layer.clock_gating, sense=layer.sense,
                          hardwired_thresholds=layer.hardwired_thresholds)
