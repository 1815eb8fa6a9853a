"""The stream harness driver without a simulator: a harness that dies is reported, never waited on."""

from __future__ import annotations

import numpy as np
import pytest

from bmcnn_hw.cosim.streamsim import StreamRun
from bmcnn_hw.errors import SimulationError, ToolNotFound


def test_a_harness_that_dies_is_one_error_and_no_hang(tmp_path):
    fake = tmp_path / "harness"
    fake.write_text("#!/bin/sh\necho 'model exploded' >&2\nexit 3\n")
    fake.chmod(0o755)
    run = StreamRun(fake, 17, 6, tmp_path / "out.bin")
    for _ in range(20):  # far more than the pipe and the queue hold
        run.send(np.zeros(1 << 16, dtype=np.uint32))
    with pytest.raises(SimulationError, match="stream harness failed: model exploded"):
        run.finish()


def test_a_missing_harness_is_named(tmp_path):
    with pytest.raises(ToolNotFound, match="stream harness missing"):
        StreamRun(tmp_path / "nothing", 17, 6, tmp_path / "out.bin")
