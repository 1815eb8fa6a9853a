"""`bmcnn-hw import MODEL.onnx`: Brevitas-exported QONNX and plain ONNX graphs become checkpoints
whose compiled golden model equals the source graph (executed by qonnx) on real MNIST."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bmcnn_hw.artefact import load_model
from bmcnn_hw.build import build
from bmcnn_hw.cli import main
from bmcnn_hw.config import HardwareConfig
from bmcnn_hw.errors import BmcnnError, ConfigError, DataError
from bmcnn_hw.golden.integer import run_integer
from bmcnn_hw.io_utils import sha256_file
from bmcnn_hw.onnx_graph import execute_source
from bmcnn_hw.onnx_import import import_onnx, load_graph, pixels_to_source_input
from tests.helpers import REPO, needs

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _example_module():
    spec = importlib.util.spec_from_file_location("brevitas_mnist", REPO / "examples" / "brevitas_mnist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _golden_equals_source(onnx_path: Path, ckpt: Path, build_dir: Path, images: np.ndarray) -> dict:
    """Compile the imported checkpoint; compare the golden model's scores and classes with the source graph."""
    _, report = import_onnx(onnx_path, ckpt)
    build(ckpt, build_dir, HardwareConfig())
    return _compare_built_with_source(onnx_path, build_dir, report, images)


def _compare_built_with_source(onnx_path: Path, build_dir: Path, report: dict, images: np.ndarray) -> dict:
    """The golden model of ``build_dir`` against the source graph on ``images``: classes and
    scores equal (counts), and the golden predictions."""
    model = load_model(build_dir)
    golden = run_integer(model, images)
    source = execute_source(load_graph(onnx_path), pixels_to_source_input(images, report["input_scale"]))
    scores = golden.scores.astype(np.float64) / 2 ** model.score_frac_bits * report["score_factor"]
    return {"classes": int((golden.predictions == source.argmax(axis=1)).sum()),
            "scores": int(np.all(scores == source, axis=1).sum()), "report": report,
            "predictions": golden.predictions}


@pytest.mark.slow
def test_brevitas_default_weight_scale_is_counted(mnist_train, mnist_test, tmp_path):
    """Brevitas's default binary weight scale 0.1 is not dyadic: the class scores are then the
    source's divided by the shared scale, and the classes are counted (all equal, measured)."""
    pytest.importorskip("brevitas")
    from brevitas.quant import SignedBinaryWeightPerTensorConst

    example = _example_module()
    import torch

    torch.manual_seed(1)
    model = example.build_bnn(channels=8, hidden=32, weight_quant=SignedBinaryWeightPerTensorConst)
    example.train_bnn(model, mnist_train.images, mnist_train.labels, steps=150, seed=1)
    example.export_bnn(model, tmp_path / "bnn01.onnx")
    result = _golden_equals_source(tmp_path / "bnn01.onnx", tmp_path / "ckpt", tmp_path / "build",
                                   mnist_test.images)
    assert result["report"]["score_factor"] == pytest.approx(0.2)
    assert result["classes"] >= 9_990, result["classes"]


# ---- plain ONNX graphs, built here node by node ----

def _plain_bnn(path: Path, *, rng_seed: int = 0, weight_op: str | None = "Sign", activation: str = "Sign",
               input_shape=(1, 1, 28, 28), opset: int = 17, conv_pads=(0, 0, 0, 0), pool: str = "MaxPool",
               pool_first: bool = False, zero_weight: bool = False, bias: bool = True) -> Path:
    """conv5x5x4 (Sign weights) -> BN -> Sign -> maxpool2 -> flatten -> Gemm 10 (+ bias), as ONNX."""
    rng = np.random.default_rng(rng_seed)
    conv_latent = rng.normal(size=(4, input_shape[1], 5, 5)).astype(np.float32)
    if zero_weight:
        conv_latent[0, 0, 0, 0] = 0.0
    fc_latent = rng.normal(size=(10, 4 * 12 * 12)).astype(np.float32)
    inits = [numpy_helper.from_array(conv_latent, "conv_w"), numpy_helper.from_array(fc_latent, "fc_w"),
             numpy_helper.from_array(rng.uniform(0.5, 2, 4).astype(np.float32), "gamma"),
             numpy_helper.from_array(rng.normal(0, 1, 4).astype(np.float32), "beta"),
             numpy_helper.from_array(rng.normal(0, 300, 4).astype(np.float32), "mean"),
             numpy_helper.from_array(rng.uniform(1e3, 1e4, 4).astype(np.float32), "var"),
             numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "flat"),
             numpy_helper.from_array(rng.normal(0, 4, 10).astype(np.float32), "fc_b")]
    nodes = []
    conv_w, fc_w = "conv_w", "fc_w"
    if weight_op:
        nodes += [helper.make_node(weight_op, [name], [f"{name}b"]) for name in ("conv_w", "fc_w")]
        conv_w, fc_w = "conv_wb", "fc_wb"
    nodes.append(helper.make_node("Conv", ["x", conv_w], ["acc0"], kernel_shape=[5, 5], pads=list(conv_pads)))
    pool_node = helper.make_node(pool, ["acc0" if pool_first else "act0"], ["pool0"], kernel_shape=[2, 2],
                                 strides=[2, 2])
    if pool_first:
        nodes.append(pool_node)
    nodes.append(helper.make_node("BatchNormalization", ["pool0" if pool_first else "acc0", "gamma", "beta", "mean",
                                                         "var"], ["bn0"]))
    if activation in ("Quant1", "Quant2"):
        inits += [numpy_helper.from_array(np.array(value, np.float32), name)
                  for name, value in (("q_scale", 0.5), ("q_zero", 0.0), ("q_bits", float(activation[-1])))]
        nodes.append(helper.make_node("Quant", ["bn0", "q_scale", "q_zero", "q_bits"], ["act0"],
                                      domain="qonnx.custom_op.general", signed=1, narrow=0, rounding_mode="ROUND"))
    elif activation == "MultiThreshold":  # one threshold at 0 per channel, out = 2 * count - 1 in {-1, +1}
        inits.append(numpy_helper.from_array(np.zeros((4, 1), np.float32), "thresholds"))
        nodes.append(helper.make_node("MultiThreshold", ["bn0", "thresholds"], ["act0"],
                                      domain="qonnx.custom_op.general", out_dtype="BIPOLAR", out_scale=2.0,
                                      out_bias=-1.0))
    else:
        nodes.append(helper.make_node(activation, ["bn0"], ["act0"]))
    if not pool_first:
        nodes.append(pool_node)
    flat_in = "act0" if pool_first else "pool0"
    nodes.append(helper.make_node("Reshape", [flat_in, "flat"], ["flat0"]))
    nodes.append(helper.make_node("Gemm", ["flat0", fc_w] + (["fc_b"] if bias else []), ["y"], transB=1))
    graph = helper.make_graph(nodes, "plain_bnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [input_shape[0], 10])], inits)
    opsets = [helper.make_opsetid("", opset), helper.make_opsetid("qonnx.custom_op.general", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("activation", ["Sign", "MultiThreshold", "Quant1"])
def test_plain_onnx_with_sign_weights_equals_source(mnist_test, tmp_path, activation):
    """Sign on weights, a float batch norm, each kind of activation, a Gemm bias: classes equal
    on 2,000 images; the bias makes the source's scores non-integer, compared within float32 rounding."""
    path = _plain_bnn(tmp_path / "plain.onnx", activation=activation)
    images = mnist_test.images[:2000]
    _, report = import_onnx(path, tmp_path / "ckpt", verify_images=images)
    check = report["verification"]
    assert check["classes_equal"] == 2000
    assert check["max_score_difference"] < 1e-3
    assert report["layers"][0]["activation"] == activation.rstrip("1")
    assert report["input_quantizer"] is None and report["input_scale"] == 2 ** -8


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"weight_op": None}, r"node 'Conv_0' \(Conv\): weights are not binary"),
    ({"zero_weight": True}, r"weights are not binary .*zero weights"),
    ({"input_shape": (1, 3, 28, 28)}, r"bmcnn-hw runs MNIST, \(N, 1, 28, 28\)"),
    ({"opset": 30}, r"opset 30 is not supported"),
    ({"activation": "Relu"}, r"node 'Relu_0' \(Relu\) after node 'Conv_0' \(Conv\) cannot be mapped"),
    ({"activation": "Quant2"}, r"node 'Quant_0' \(Quant\): the activation takes \d distinct values"),
    ({"pool": "AveragePool"}, r"node 'AveragePool_0' \(AveragePool\): only max pooling"),
    ({"pool_first": True}, r"node 'MaxPool_0' \(MaxPool\).*before the activation"),
    ({"conv_pads": (1, 1, 1, 1)}, r"node 'Conv_0' \(Conv\): pads \[1, 1, 1, 1\] is not supported"),
])
def test_unmappable_graphs_name_the_node(tmp_path, kwargs, message):
    path = _plain_bnn(tmp_path / "bad.onnx", **kwargs)
    with pytest.raises(ConfigError, match=message):
        import_onnx(path, tmp_path / "ckpt")
    assert not (tmp_path / "ckpt").exists()


def test_cli_refuses_bad_files_without_writing(tmp_path, capsys):
    (tmp_path / "junk.onnx").write_bytes(b"\x00not a protobuf at all" * 10)
    assert main(["import", str(tmp_path / "junk.onnx"), "-o", str(tmp_path / "ckpt")]) == 2
    assert "junk.onnx: not an ONNX model" in capsys.readouterr().err
    path = _plain_bnn(tmp_path / "plain.onnx")
    assert main(["import", str(path), "-o", str(tmp_path / "ckpt"), "--arch", "bmcnn-compact"]) == 2
    assert "--arch is for state_dict files" in capsys.readouterr().err
    assert not (tmp_path / "ckpt").exists()
    with pytest.raises(DataError, match="not found"):
        import_onnx(tmp_path / "missing.onnx", tmp_path / "ckpt")


def test_cli_import_verifies_and_refuses_to_overwrite(tmp_path, mnist_dir, capsys):
    path = _plain_bnn(tmp_path / "plain.onnx")
    args = ["import", str(path), "-o", str(tmp_path / "ckpt"), "--verify", "300", "--data-dir", str(mnist_dir)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "on 300 test images: classes equal on 300" in out
    metrics = json.loads((tmp_path / "ckpt" / "metrics.json").read_text())
    assert metrics["imported"]["verification"]["classes_equal"] == 300
    assert main(args) == 2
    assert "pass --force" in capsys.readouterr().err


def _readme_example() -> list[str]:
    text = (REPO / "docs" / "guide" / "models.md").read_text()
    block = re.search(r"<!-- example: byon -->\s*```sh\n(.*?)```", text, re.S)
    assert block, "docs/guide/models.md lost its 'Bring your own network' example block"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


@pytest.mark.slow
@pytest.mark.ngspice
@pytest.mark.verilator
@needs("ngspice")
@needs("verilator")
def test_readme_worked_example_runs(tmp_path, mnist_dir):
    """The documented (docs/guide/models.md) Brevitas -> QONNX -> bmcnn-hw example, command by command: the import
    agrees with the source on all 10,000 images and SPICE + RTL agree with golden."""
    pytest.importorskip("brevitas")
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "BMCNN_HW_DATA": str(mnist_dir)}
    outputs = []
    for command in _readme_example():
        argv = shlex.split(command)
        if argv[0] == "python":
            argv = [sys.executable, str(REPO / argv[1]), *argv[2:]]
        else:
            argv[0] = str(bin_dir / argv[0])
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{command}: {done.stderr[-2000:]}"
        outputs.append(done.stdout)
    joined = "\n".join(outputs)
    assert "on 10000 test images: classes equal on 10000, scores equal on 10000" in joined
    assert "mismatches: 0" in joined
    # The exactness proof on the example's own artefacts: the compiled golden model (not only the
    # imported torch model) = the source graph on all 10,000 images, scores included
    # (power-of-two scales keep the source's float32 sums exact).
    report = json.loads((tmp_path / "runs" / "bnn" / "metrics.json").read_text())["imported"]
    assert report["score_factor"] == 1.0
    assert [layer["op"] for layer in report["layers"]] == ["Conv", "Gemm", "Gemm"]
    from bmcnn_hw.data import load_mnist

    test = load_mnist(mnist_dir, "test")
    result = _compare_built_with_source(tmp_path / "runs" / "bnn.onnx", tmp_path / "runs" / "bnn-build", report,
                                        test.images)
    assert result["classes"] == 10_000 and result["scores"] == 10_000
    assert (result["predictions"] == test.labels).mean() > 0.9  # a real, trained network, not a degenerate one


def test_imported_thresholds_are_compiled_as_read_not_folded_back(mnist_test, tmp_path):
    """The thresholds read off the source graph travel in the checkpoint's thresholds.json and the
    compiler sets them (pass set_thresholds, no batch-norm round trip); the build equals the one
    folded from the torch model's batch norms, and golden still equals the source graph."""
    import json

    from bmcnn_hw.compile import compile_checkpoint
    from bmcnn_hw.train.checkpoint import load_checkpoint

    path = _plain_bnn(tmp_path / "plain.onnx")
    result = _golden_equals_source(path, tmp_path / "ckpt", tmp_path / "build", mnist_test.images[:500])
    assert result["classes"] == 500
    manifest = json.loads((tmp_path / "build" / "manifest.json").read_text())
    assert [p["name"] for p in manifest["provenance"]["passes"]] == ["to_crossbar", "set_thresholds", "tile"]
    assert manifest["provenance"]["thresholds_sha256"] == sha256_file(tmp_path / "ckpt" / "thresholds.json")
    carried = json.loads((tmp_path / "ckpt" / "thresholds.json").read_text())
    built = load_model(tmp_path / "build")
    folded = compile_checkpoint(load_checkpoint(tmp_path / "ckpt")[0], HardwareConfig())  # the BN round trip
    for a, b in zip(built.layers, folded.layers, strict=True):
        assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("theta", "flip", "score_scale",
                                                                            "score_bias")
                   if getattr(a, f) is not None), a.name
    assert carried["hidden"][0]["flip"] == built.layers[0].flip.tolist()


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t["hidden"][0]["theta"].__setitem__(1, t["hidden"][0]["theta"][1] + 1),
     r"ckpt/thresholds\.json: layer conv0 channel 1: threshold -?\d+ flip \d, but model\.pt's batch norm folds to "),
    (lambda t: t["score_bias"].__setitem__(0, t["score_bias"][0] + 1),
     r"ckpt/thresholds\.json: the score codes differ from model\.pt's"),
    (lambda t: t["hidden"][0].__setitem__("flip", [2, 0, 0, 0]), r"hidden\[0\]\.flip must hold 0 or 1"),
    (lambda t: t.pop("score_scale"), r"lacks 'score_scale'"),
])
def test_a_checkpoint_whose_thresholds_disagree_with_its_weights_is_refused(tmp_path, edit, message):
    """compile checks the carried thresholds against the torch model's batch norms: a planted
    difference in one channel (or a malformed file) is one error naming it, and no build is left."""
    _, _ = import_onnx(_plain_bnn(tmp_path / "plain.onnx"), tmp_path / "ckpt")
    path = tmp_path / "ckpt" / "thresholds.json"
    carried = json.loads(path.read_text())
    edit(carried)
    path.write_text(json.dumps(carried))
    with pytest.raises(BmcnnError, match=message):
        build(tmp_path / "ckpt", tmp_path / "build", HardwareConfig())
    assert not (tmp_path / "build").exists()


def test_saving_other_weights_removes_the_carried_thresholds(tmp_path):
    """thresholds.json belongs to the weights it was imported with: a checkpoint saved again into the
    directory (train --force, a state_dict import) drops it."""
    from bmcnn_hw.train.checkpoint import load_checkpoint, save_checkpoint

    import_onnx(_plain_bnn(tmp_path / "plain.onnx"), tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "thresholds.json").is_file()
    model, _ = load_checkpoint(tmp_path / "ckpt")
    save_checkpoint(tmp_path / "ckpt", model, {}, {"history": []}, plot=False)
    assert not (tmp_path / "ckpt" / "thresholds.json").exists()
