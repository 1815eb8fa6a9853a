"""Layer periphery: accumulator, tuning registers and threshold unit of one crossbar layer.

One input beat carries one ADC code of one output channel. A channel's beats arrive in
sequence (bit planes x row tiles), the first flagged ``in_first`` and the last ``in_last``.
On the last beat the sum (bipolar: ``(sum + offset) >> 1``), plus the channel's tuning
correction, is compared with the channel's threshold: ``act = (acc >= theta) XOR flip``.
The output layer instead gives the integer score ``acc * S + B``. Thresholds, flips and
tuning corrections are registers (reset values from the CompiledModel) on a small bus,
described once in :func:`periphery_registers`.

Streams use valid/ready: a beat moves when ``in_valid & in_ready``, a result when
``out_valid & out_ready``; the input stalls while a result waits (``in_ready = ~out_valid
| out_ready``).
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..errors import ConfigError
from .regs import DATA_WIDTH, RegisterMap, RegisterSpec

ID_VALUE = 0xB3C0_0001
"""Constant of the read-only ``id`` register (bmcnn-hw periphery, version 1)."""


def _index_width(count: int) -> int:
    return max(1, (count - 1).bit_length())


def _signed_width(values) -> int:
    return max(int(v).bit_length() for v in list(values) + [1]) + 1


def periphery_registers(name: str, channels: int, acc_width: int, thetas=None, flips=None) -> RegisterMap:
    """Register map of a periphery: id, channels, theta[], flip[] (hidden layers), tune_offset[]."""
    stride = max(256, 1 << (channels - 1).bit_length())
    regs = [
        RegisterSpec("id", 0x0, 32, "ro", (ID_VALUE,), "constant 0xB3C00001: bmcnn-hw layer periphery, version 1"),
        RegisterSpec("channels", 0x1, 16, "ro", (channels,), "number of output channels of the layer"),
    ]
    if thetas is not None:
        regs.append(RegisterSpec("theta", stride, acc_width, "rw", tuple(int(t) for t in thetas),
                                 "per-channel threshold: act = (acc + tune_offset >= theta) XOR flip",
                                 signed=True, count=channels))
        regs.append(RegisterSpec("flip", 2 * stride, 1, "rw", tuple(int(f) for f in flips),
                                 "per-channel flip of the activation (folded negative BN scale)", count=channels))
    regs.append(RegisterSpec("tune_offset", 3 * stride, acc_width, "rw", (0,) * channels,
                             "per-channel tuning correction added to the accumulator before the threshold "
                             "(and before the score affine of the output layer)", signed=True, count=channels))
    return RegisterMap(name, tuple(regs))


def layer_registers(layer) -> RegisterMap:
    """The register map of a CompiledLayer's periphery (reset values from the layer)."""
    hidden = not layer.is_output
    return periphery_registers(f"periphery_{layer.name}", layer.cols, layer.acc_width,
                               layer.theta if hidden else None, layer.flip if hidden else None)


class LayerPeriphery(wiring.Component):
    """Accumulator + tuning registers + threshold (or score) of one layer, with streams and a register bus.

    Args:
        channels: output channels (weight columns) of the layer.
        adc_bits: width of a signed ADC code.
        planes: bit planes of the layer input (1 for binary inputs).
        acc_width: accumulator width; must hold ``acc_bound`` (checked).
        thetas, flips: per-channel threshold and flip; ``None`` for the output layer.
        acc_bound: largest |accumulator| the layer can produce.
        offsets: bipolar correction per channel; the sum becomes ``(sum + offset) >> 1``.
        score_scale, score_bias: integer score affine of the output layer.
        name: component name used in the register map.

    Ports:
        in_valid, in_ready, in_code (signed adc_bits), in_plane, in_channel, in_first, in_last:
            input stream of ADC codes.
        out_valid, out_ready, out_channel, out_acc (signed acc_width + 1, tuned), out_act,
            out_score (output layer only): result stream.
        reg_addr, reg_wdata, reg_we, reg_rdata: register bus (see :mod:`bmcnn_hw.rtl.regs`).
    """

    def __init__(self, *, channels: int, adc_bits: int, planes: int, acc_width: int,
                 thetas=None, flips=None, acc_bound: int | None = None, offsets=None,
                 score_scale=None, score_bias=None, name: str = "periphery"):
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
        self.scores = None
        if score_scale is not None:
            self.scores = ([int(s) for s in score_scale], [int(b) for b in score_bias])
            if len(self.scores[0]) != channels or len(self.scores[1]) != channels:
                raise ConfigError(f"need {channels} score scales and biases")
        self.channels, self.adc_bits, self.planes, self.acc_width = channels, adc_bits, planes, acc_width
        self.thetas, self.flips, self.offsets = thetas, flips, offsets
        self.registers = periphery_registers(name, channels, acc_width, thetas, flips)
        members = {
            "in_valid": In(1), "in_ready": Out(1),
            "in_code": In(signed(adc_bits)),
            "in_plane": In(unsigned(_index_width(planes))),
            "in_channel": In(unsigned(_index_width(channels))),
            "in_first": In(1), "in_last": In(1),
            "out_valid": Out(1), "out_ready": In(1),
            "out_channel": Out(unsigned(_index_width(channels))),
            "out_acc": Out(signed(acc_width + 1)),
            "out_act": Out(1),
            "reg_addr": In(unsigned(self.registers.addr_width)),
            "reg_wdata": In(DATA_WIDTH), "reg_we": In(1),
            "reg_rdata": Out(DATA_WIDTH),
        }
        if self.scores is not None:
            self.score_width = acc_width + 1 + _signed_width(self.scores[0]) + 1
            members["out_score"] = Out(signed(self.score_width))
        super().__init__(members)

    def _register_file(self, m: Module) -> dict:
        """Register storage, bus writes (one decoder per register) and registered bus reads."""
        storage, read_value = {}, Signal(DATA_WIDTH)
        m.d.comb += read_value.eq(0)
        for reg in self.registers.registers:
            shape = signed(reg.width) if reg.signed else unsigned(reg.width)
            cells = [Signal(shape, init=int(v), name=f"{reg.name}_{k}") if reg.access == "rw"
                     else Const(int(v), shape) for k, v in enumerate(reg.reset)]
            storage[reg.name] = cells
            data = self.reg_wdata[: reg.width]
            for k, cell in enumerate(cells):
                if reg.access == "rw":
                    with m.If(self.reg_we & (self.reg_addr == reg.offset + k)):
                        m.d.sync += cell.eq(data.as_signed() if reg.signed else data)
            # Arrays sit at a power-of-two aligned base, so the low address bits index them.
            index_bits = max(1, (reg.count - 1).bit_length())
            in_range = self.reg_addr < reg.offset + reg.count
            if reg.offset:
                in_range &= self.reg_addr >= reg.offset
            with m.If(in_range):
                cell = Array(cells)[self.reg_addr[:index_bits]] if reg.count > 1 else cells[0]
                m.d.comb += read_value.eq(cell.as_signed() if reg.signed else cell)
        m.d.sync += self.reg_rdata.eq(read_value)
        return storage

    def elaborate(self, platform):
        """Build the register file, the accumulator and the output register."""
        m = Module()
        regs = self._register_file(m)
        width = self.acc_width
        acc, total, result = Signal(signed(width)), Signal(signed(width)), Signal(signed(width))
        tuned = Signal(signed(width + 1))
        code = Signal(signed(width))
        m.d.comb += [
            code.eq(self.in_code),
            total.eq(Mux(self.in_first, 0, acc) + (code << self.in_plane)),
        ]
        if self.offsets is None:
            m.d.comb += result.eq(total)
        else:
            offset = Array(Const(o, signed(width)) for o in self.offsets)[self.in_channel]
            m.d.comb += result.eq((total + offset) >> 1)
        m.d.comb += tuned.eq(result + Array(regs["tune_offset"])[self.in_channel])
        act = Signal()
        if self.thetas is not None:
            theta, flip = Array(regs["theta"])[self.in_channel], Array(regs["flip"])[self.in_channel]
            m.d.comb += act.eq((tuned >= theta) ^ flip)
        accept = Signal()
        m.d.comb += [self.in_ready.eq(~self.out_valid | self.out_ready), accept.eq(self.in_valid & self.in_ready)]
        with m.If(self.out_ready):
            m.d.sync += self.out_valid.eq(0)
        with m.If(accept):
            m.d.sync += acc.eq(total)
            with m.If(self.in_last):
                m.d.sync += [self.out_valid.eq(1), self.out_channel.eq(self.in_channel),
                             self.out_acc.eq(tuned), self.out_act.eq(act)]
                if self.scores is not None:
                    scale = Array(Const(s, signed(_signed_width(self.scores[0]))) for s in self.scores[0])
                    bias = Array(Const(b, signed(_signed_width(self.scores[1]))) for b in self.scores[1])
                    m.d.sync += self.out_score.eq(tuned * scale[self.in_channel] + bias[self.in_channel])
        return m


def bipolar_offsets(layer) -> list[int]:
    """Per-channel constant of the bipolar correction: column sum x (2**input_bits - 1)."""
    return (layer.weight.sum(axis=0, dtype="int64") * (2 ** layer.input_bits - 1)).tolist()


def periphery_for_layer(layer) -> LayerPeriphery:
    """The periphery of a CompiledLayer."""
    return LayerPeriphery(channels=layer.cols, adc_bits=layer.adc_bits, planes=layer.input_bits,
                          acc_width=layer.acc_width, thetas=None if layer.is_output else layer.theta,
                          flips=None if layer.is_output else layer.flip, acc_bound=layer.acc_bound,
                          offsets=bipolar_offsets(layer) if layer.bipolar else None,
                          score_scale=layer.score_scale if layer.is_output else None,
                          score_bias=layer.score_bias if layer.is_output else None,
                          name=f"periphery_{layer.name}")
