"""Compiled stream testbench: a layer top in Verilator, fed binary beats through a pipe.

For regressions too large for a Python-per-beat testbench (cocotb): every beat of thousands
of images. A generated C++ harness drives the Verilated layer top one beat per cycle
(``o__ready`` held high, no idle cycles: the cocotb testbenches cover stalls and idles),
writes every output payload to a file, and at the end reads the sticky ``error`` register.

Stimulus on the harness's stdin, little-endian 32-bit words:

- ``1, n`` then ``n`` payload words (``uint32``, or ``uint64`` pairs when the input
  payload is wider than 32 bits): beats;
- ``2, addr, data``: a register write (one cycle, between beats);
- ``3``: end (drain, read ``error``, print one ``stats`` line, exit).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import queue
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from ..errors import SimulationError, ToolNotFound
from ..rtl.simulators import check_simulator
from .runner import cache_root, keep_only, verilator_make_flags

BEATS, WRITE, END = 1, 2, 3
DRAIN_CYCLES = 8
"""Idle cycles after the last beat (after a MAC engine is ready again): the periphery and its
tail are two registers deep."""
BUSY_LIMIT = 1 << 28
"""Most cycles the harness waits at the end for a layer top to take input again (a digital
layer's MAC engine finishing its last frame)."""
ERROR_ADDRESS = 0x2
"""Word address of the periphery's sticky ``error`` register (:mod:`bmcnn_hw.rtl.periphery`)."""

_HARNESS = r"""// bmcnn-hw stream harness for {top} (generated; see bmcnn_hw/cosim/streamsim.py)
#include "V{top}.h"
#include "verilated.h"
#include <cstdint>
#include <cstdio>
#include <vector>

typedef {in_t} in_t;
typedef {out_t} out_t;
static V{top}* dut;
static FILE* out;
static unsigned long long cycles = 0, beats = 0, outputs = 0;

static void tick() {{
  dut->clk = 0; dut->eval();
  if (dut->o___05Fvalid) {{ out_t w = (out_t) dut->o___05Fpayload; fwrite(&w, sizeof w, 1, out); outputs++; }}
  dut->clk = 1; dut->eval(); cycles++;
}}

static void beat(in_t payload) {{
  dut->i___05Fpayload = payload; dut->i___05Fvalid = 1;
  for (;;) {{
    dut->clk = 0; dut->eval();
    bool take = dut->i___05Fready;
    if (dut->o___05Fvalid) {{ out_t w = (out_t) dut->o___05Fpayload; fwrite(&w, sizeof w, 1, out); outputs++; }}
    dut->clk = 1; dut->eval(); cycles++;
    if (take) break;
  }}
  dut->i___05Fvalid = 0; beats++;
}}

static bool word(uint32_t* w) {{ return fread(w, 4, 1, stdin) == 1; }}

int main(int argc, char** argv) {{
  if (argc < 2) {{ fprintf(stderr, "usage: %s OUTPUTS_FILE\n", argv[0]); return 2; }}
  VerilatedContext ctx; ctx.commandArgs(argc, argv);
  dut = new V{top}{{&ctx}};
  out = fopen(argv[1], "wb");
  if (!out) {{ perror(argv[1]); return 2; }}
  static char inbuf[1 << 20]; setvbuf(stdin, inbuf, _IOFBF, sizeof inbuf);
  static char outbuf[1 << 20]; setvbuf(out, outbuf, _IOFBF, sizeof outbuf);
  dut->o___05Fready = 1; dut->i___05Fvalid = 0; dut->bus___05Fwe = 0; dut->bus___05Faddr = 0;
  dut->rst = 1; tick(); tick(); dut->rst = 0;
  std::vector<in_t> buf(1 << 16);
  uint32_t tag, n, addr, data;
  while (word(&tag)) {{
    if (tag == {beats_tag}) {{
      if (!word(&n)) break;
      while (n) {{
        size_t k = n < buf.size() ? n : buf.size();
        if (fread(buf.data(), sizeof(in_t), k, stdin) != k) {{
          fprintf(stderr, "stimulus ends inside a beat block\n"); return 3;
        }}
        for (size_t j = 0; j < k; j++) beat(buf[j]);
        n -= k;
      }}
    }} else if (tag == {write_tag}) {{
      if (!word(&addr) || !word(&data)) break;
      dut->bus___05Faddr = addr; dut->bus___05Fwdata = data; dut->bus___05Fwe = 1; tick(); dut->bus___05Fwe = 0;
    }} else if (tag == {end_tag}) {{
      for (unsigned long long k = 0; k < {busy_limit}ULL && !dut->i___05Fready; k++) tick();  // a MAC engine computing
      for (int k = 0; k < {drain}; k++) tick();
      dut->bus___05Faddr = {error_address}; tick(); tick();
      fflush(out); fclose(out);
      printf("stats beats %llu cycles %llu outputs %llu error %u\n", beats, cycles, outputs,
             (unsigned) dut->bus___05Frdata);
      delete dut;
      return 0;
    }} else {{ fprintf(stderr, "unknown stimulus tag %u\n", tag); return 3; }}
  }}
  fprintf(stderr, "stimulus ended without the end tag\n");
  return 3;
}}
"""


def _word_type(bits: int, what: str) -> str:
    if bits <= 32:
        return "uint32_t"
    if bits <= 64:
        return "uint64_t"
    raise SimulationError(f"{what} payload of {bits} bits: the stream harness takes at most 64")


def harness_source(top: str, in_bits: int, out_bits: int) -> str:
    """C++ harness for layer top ``top`` whose input/output payloads have ``in_bits``/``out_bits``."""
    return _HARNESS.format(top=top, in_t=_word_type(in_bits, "input"), out_t=_word_type(out_bits, "output"),
                           beats_tag=BEATS, write_tag=WRITE, end_tag=END, drain=DRAIN_CYCLES, busy_limit=BUSY_LIMIT,
                           error_address=ERROR_ADDRESS)


def default_harness_cache() -> Path:
    """``<cache_root>/stream-harness`` (:func:`~bmcnn_hw.cosim.runner.cache_root`)."""
    return cache_root() / "stream-harness"


@functools.cache
def _verilator_version() -> str:
    """``verilator --version`` (part of the cache key; asked once per process)."""
    done = subprocess.run(["verilator", "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def build_harness(verilog: Path, top: str, in_bits: int, out_bits: int, cache: Path | None = None) -> Path:
    """Verilate ``top`` with the harness, cached under ``cache`` (default
    :func:`default_harness_cache`) by the SHA-256 of the Verilog, the harness and Verilator's
    version: a second run of the same RTL reuses the binary.

    Raises:
        ToolNotFound: Verilator missing.
        SimulationError: the build failed (names its log).
    """
    check_simulator("verilator")
    source = harness_source(top, in_bits, out_bits)
    key = Path(verilog).read_bytes() + source.encode() + _verilator_version().encode()
    build = (cache or default_harness_cache()) / f"{top}-{hashlib.sha256(key).hexdigest()[:16]}"
    binary = build / "obj_dir" / f"V{top}"
    if binary.is_file():
        return binary
    staging = build.with_name(f".{build.name}.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (staging / "harness.cpp").write_text(source)
    log = staging / "build.log"
    args = ["verilator", "--cc", "--exe", "--build", "-O3", "--x-assign", "fast", "--x-initial", "fast",
            "-Wno-fatal", "-Wno-lint", "-Wno-style", "--top-module", top, "-CFLAGS", "-O2", "-j", "2",
            str(Path(verilog).resolve()), "harness.cpp"]
    env = {**os.environ, **verilator_make_flags()}
    with open(log, "w") as handle:
        done = subprocess.run(args, cwd=staging, stdout=handle, stderr=subprocess.STDOUT, env=env, check=False)
    if done.returncode or not (staging / "obj_dir" / f"V{top}").is_file():
        raise SimulationError(f"{top}: Verilator build of the stream harness failed; see {log}")
    keep_only(staging, [f"obj_dir/V{top}", "build.log", "harness.cpp"])
    try:
        staging.rename(build)
    except OSError:  # another process built the same harness meanwhile: use theirs
        shutil.rmtree(staging, ignore_errors=True)
    return binary


@dataclass(frozen=True)
class StreamResult:
    """What one harness run reports."""

    outputs: np.ndarray
    """Every output payload word, in order (uint32 or uint64)."""
    beats: int
    cycles: int
    error: int
    """The ``error`` register at the end (0: no protocol error)."""
    seconds: float


class StreamRun:
    """One running harness: beats and register writes go in (from a feeder thread, so the
    caller computes the next batch while the simulator runs), outputs come back at the end."""

    def __init__(self, binary: Path, in_bits: int, out_bits: int, out_path: Path):
        if not Path(binary).is_file():
            raise ToolNotFound(f"{binary}: stream harness missing")
        self.in_type = np.uint32 if in_bits <= 32 else np.uint64
        self.out_type = np.uint32 if out_bits <= 32 else np.uint64
        self.out_path = Path(out_path)
        self.started = time.perf_counter()
        self.process = subprocess.Popen([str(binary), str(self.out_path)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self._failure: BaseException | None = None
        self._feeder = threading.Thread(target=self._feed, daemon=True)
        self._feeder.start()

    def _feed(self) -> None:
        """Write queued chunks to the harness; after a failed write keep draining the queue, so
        the caller never blocks on a full one (finish() reports the harness's stderr)."""
        stdin: IO[bytes] | None = self.process.stdin
        assert stdin is not None
        while (chunk := self._queue.get()) is not None:
            if self._failure is None:
                try:
                    stdin.write(chunk)
                except OSError as exc:  # the harness died
                    self._failure = exc
        with contextlib.suppress(OSError):
            stdin.close()

    def write_registers(self, writes: list[tuple[int, int]]) -> None:
        """Register writes (word address, value), applied in order before the next beats."""
        words = [w for addr, value in writes for w in (WRITE, int(addr), int(value) & 0xFFFFFFFF)]
        if words:
            self._queue.put(np.asarray(words, dtype="<u4").tobytes())

    def send(self, payloads: np.ndarray) -> None:
        """Beats, one packed input payload each, in hardware order."""
        if len(payloads):
            header = np.asarray([BEATS, len(payloads)], dtype="<u4").tobytes()
            words = np.ascontiguousarray(payloads, dtype=np.dtype(self.in_type).newbyteorder("<"))
            self._queue.put(header + words.tobytes())

    def finish(self) -> StreamResult:
        """End the stimulus, wait for the harness, and read its outputs (the file is removed).

        Raises:
            SimulationError: the harness failed (its stderr is quoted).
        """
        self._queue.put(np.asarray([END], dtype="<u4").tobytes())
        self._queue.put(None)
        self._feeder.join()
        self.process.stdin = None  # the feeder closed it
        stdout, stderr = self.process.communicate()
        seconds = time.perf_counter() - self.started
        stats = next((line.split() for line in stdout.decode().splitlines() if line.startswith("stats")), None)
        if self.process.returncode or stats is None or self._failure is not None:
            detail = stderr.decode().strip().splitlines()[-1:] or [f"exit code {self.process.returncode}"]
            raise SimulationError(f"{self.out_path.parent}: stream harness failed: {detail[0]}")
        values = dict(zip(stats[1::2], (int(v) for v in stats[2::2]), strict=True))
        outputs = np.fromfile(self.out_path, dtype=np.dtype(self.out_type).newbyteorder("<"))
        self.out_path.unlink(missing_ok=True)
        if len(outputs) != values["outputs"]:
            raise SimulationError(f"{self.out_path}: {len(outputs)} outputs on file, the harness counted "
                                  f"{values['outputs']}")
        return StreamResult(outputs, values["beats"], values["cycles"], values["error"], seconds)
