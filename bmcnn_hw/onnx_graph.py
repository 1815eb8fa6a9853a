"""Reading a (Q)ONNX graph of a binarized network: load, clean up, walk it into layers, execute it.

The graph is cleaned up with ``qonnx`` (shape inference, unique names ``<OpType>_<i>``; a copy
with every constant sub-graph folded, so weight quantizers become plain initializers) and
walked from its input as a chain:

    [Quant] -> ( Conv | Gemm | MatMul  ->  elementwise ops  ->  activation  -> [MaxPool] [Flatten] )*
            -> Conv | Gemm | MatMul  ->  elementwise ops  ->  output

Elementwise ops are ``BatchNormalization`` and ``Add``/``Sub``/``Mul``/``Div`` by constants
(a Conv bias is split off into an ``Add``); activations are ``BipolarQuant``, ``Sign``, 1-bit
``Quant`` and ``MultiThreshold``. Node names in messages are those of the cleaned-up graph.
The folding into bmcnn-hw's integer thresholds is :mod:`bmcnn_hw.onnx_import`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, DataError, ToolNotFound

LINEAR_OPS = ("Conv", "Gemm", "MatMul")
ELEMENTWISE_OPS = ("BatchNormalization", "Add", "Sub", "Mul", "Div")
ACTIVATION_OPS = ("BipolarQuant", "Sign", "Quant", "MultiThreshold")
PASS_OPS = ("Identity", "Dropout")
OPSET_RANGE = (9, 23)
"""Default-domain opsets whose semantics of the ops above the importer relies on."""


@dataclass
class LayerNodes:
    """One layer of the source graph: its linear node, weights and the nodes after it."""

    linear: Any
    weight: np.ndarray[Any, Any]
    """float weights, (out, in, k, k) for Conv, (out, in) for Gemm/MatMul."""
    chain: list[Any] = field(default_factory=list)
    """Elementwise nodes between the linear node and the activation (or the output)."""
    activation: Any = None
    pool: int = 1
    kind: str = "fc"


@dataclass
class GraphPlan:
    """The walked graph: input quantizer (or None), layers, the model wrappers."""

    model: Any
    """Cleaned-up ModelWrapper, weight quantizers kept (the source graph as executed)."""
    folded: Any
    """Cleaned-up ModelWrapper with constant sub-graphs folded (weights as initializers)."""
    input_quant: Any
    input_shape: tuple[int, ...]
    layers: list[LayerNodes]


def require_qonnx() -> None:
    """Raise ToolNotFound unless qonnx, onnx and onnxruntime can be imported."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import qonnx  # noqa: F401
    except ImportError as exc:
        raise ToolNotFound(f"importing ONNX needs the onnx extra ({exc.name} is missing): "
                           "pip install -e '.[onnx]'") from None


def node_label(node: Any) -> str:
    """``'Conv_0' (Conv)``: how messages name a node."""
    return f"node {node.name!r} ({node.op_type})"


def load_graph(path: Path) -> Any:
    """The cleaned-up ``ModelWrapper`` of ONNX file ``path`` (weight quantizers kept).

    Raises:
        DataError: the file is missing or not an ONNX model.
        ConfigError: an opset the importer does not know, or a graph not of one input and one output.
    """
    require_qonnx()
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: not found")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError and others  # noqa: BLE001
        raise DataError(f"{path}: not an ONNX model ({type(exc).__name__})") from None
    if not proto.graph.node:
        raise DataError(f"{path}: not an ONNX model (no graph nodes)")
    for name in external_data_files(proto):
        if not (path.parent / name).is_file():
            raise DataError(f"{path}: its weights are in the external data file {name!r}, which is missing "
                            "(keep it beside the .onnx file)")
    from onnx.external_data_helper import load_external_data_for_model

    try:
        load_external_data_for_model(proto, str(path.parent))
    except (OSError, ValueError) as exc:  # a truncated file: onnx reads fewer bytes than a tensor's length
        raise DataError(f"{path}: its external data ({', '.join(external_data_files(proto))}) cannot be read "
                        f"({type(exc).__name__}: {first_line(exc)})") from None
    _check_size_of_external_tensors(proto, path)
    _check_opset(proto, path)
    if len(proto.graph.input) - len(proto.graph.initializer) > 1 or len(proto.graph.output) != 1:
        raise ConfigError(f"{path}: the graph must have one data input and one output (class scores)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return cleanup_model(ModelWrapper(proto), extract_conv_bias=True)
        except Exception as exc:  # qonnx/onnx shape inference raise many types  # noqa: BLE001
            raise ConfigError(f"{path}: qonnx cannot clean up the graph ({type(exc).__name__}: "
                              f"{first_line(exc)})") from None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message ('' for none): tools' errors can run to pages."""
    text = str(exc)
    return text.splitlines()[0] if text else ""


def _check_size_of_external_tensors(proto: Any, path: Path) -> None:
    """Every initializer holds as many values as its shape says (a short external file gives fewer)."""
    from onnx import numpy_helper

    for tensor in proto.graph.initializer:
        try:
            numpy_helper.to_array(tensor)
        except ValueError:
            raise DataError(f"{path}: initializer {tensor.name!r} does not hold the values its shape "
                            f"{list(tensor.dims)} needs (truncated external data?)") from None


def external_data_files(proto: Any) -> list[str]:
    """The external data files (relative paths) an ONNX model's initializers point to."""
    from onnx import TensorProto

    files: set[str] = set()
    for tensor in proto.graph.initializer:
        if tensor.data_location == TensorProto.EXTERNAL:
            files.update(entry.value for entry in tensor.external_data if entry.key == "location")
    return sorted(files)


def source_hashes(path: Path) -> dict[str, str]:
    """SHA-256 of an ONNX file and of each external data file it points to."""
    import onnx

    from .io_utils import sha256_file

    path = Path(path)
    hashes = {path.name: sha256_file(path)}
    for name in external_data_files(onnx.load(str(path), load_external_data=False)):
        hashes[name] = sha256_file(path.parent / name)
    return hashes


def _check_opset(proto: Any, path: Path) -> None:
    for entry in proto.opset_import:
        if entry.domain in ("", "ai.onnx") and not OPSET_RANGE[0] <= entry.version <= OPSET_RANGE[1]:
            raise ConfigError(f"{path}: ONNX opset {entry.version} is not supported "
                              f"(the importer knows opsets {OPSET_RANGE[0]} to {OPSET_RANGE[1]})")


def fold_constants(model: Any) -> Any:
    """A copy of ``model`` with every constant sub-graph (weight quantizers included) folded."""
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.infer_shapes import InferShapes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.transform(FoldConstants(exclude_op_types=[])).transform(InferShapes())


def walk_graph(model: Any, path: Path) -> GraphPlan:
    """Split the graph into layers (see the module doc).

    Raises:
        ConfigError: naming the node, its op type and why it cannot be mapped.
    """
    folded = fold_constants(model)
    graph_input = folded.graph.input[0].name
    input_shape = tuple(folded.get_tensor_shape(graph_input) or ())
    tensor = graph_input
    node = _only_consumer(folded, tensor)
    input_quant = None
    if node is not None and node.op_type == "Quant":
        input_quant, tensor = node, node.output[0]
    layers: list[LayerNodes] = []
    output = folded.graph.output[0].name
    while tensor != output:
        layer, tensor = _walk_layer(folded, tensor, output, path)
        layers.append(layer)
    if not layers:
        raise ConfigError(f"{path}: the graph has no Conv, Gemm or MatMul layer")
    if layers[-1].activation is not None:
        raise ConfigError(f"{path}: {node_label(layers[-1].activation)} ends the graph; the last layer must give "
                          "class scores (a Gemm or MatMul without an activation)")
    return GraphPlan(model, folded, input_quant, input_shape, layers)


def _consumers(model: Any, tensor: str) -> list[Any]:
    return [n for n in model.graph.node if tensor in n.input]


def _only_consumer(model: Any, tensor: str) -> Any:
    consumers = _consumers(model, tensor)
    if len(consumers) > 1:
        names = ", ".join(node_label(n) for n in consumers)
        raise ConfigError(f"tensor {tensor!r} feeds {len(consumers)} nodes ({names}); the importer takes a chain")
    return consumers[0] if consumers else None


def _next(model: Any, tensor: str, output: str, path: Path) -> tuple[Any, str]:
    """The node consuming ``tensor`` (skipping pass-through ops); None at the graph output."""
    while True:
        if tensor == output:
            return None, tensor
        node = _only_consumer(model, tensor)
        if node is None:
            raise ConfigError(f"{path}: tensor {tensor!r} leads nowhere (it is not the graph output)")
        if node.op_type not in PASS_OPS:
            return node, tensor
        tensor = node.output[0]


def _walk_layer(model: Any, tensor: str, output: str, path: Path) -> tuple[LayerNodes, str]:
    node, tensor = _next(model, tensor, output, path)
    while node is not None and node.op_type in ("Flatten", "Reshape"):
        _check_flatten(model, node)
        node, tensor = _next(model, node.output[0], output, path)
    if node is None or node.op_type not in LINEAR_OPS:
        what = node_label(node) if node is not None else "the graph output"
        raise ConfigError(f"{path}: {what} where a layer (Conv, Gemm or MatMul) was expected"
                          + (f" after {tensor!r}" if node is not None else ""))
    layer = LayerNodes(node, linear_weight(model, node), kind="conv" if node.op_type == "Conv" else "fc")
    tensor = node.output[0]
    while True:
        node, tensor = _next(model, tensor, output, path)
        if node is None or node.op_type in ACTIVATION_OPS:
            break
        if node.op_type in ("MaxPool", "AveragePool"):
            raise ConfigError(f"{path}: {node_label(node)} pools before the activation; bmcnn-hw pools the binary "
                              "activations (put the pool after the activation quantizer)")
        if node.op_type not in ELEMENTWISE_OPS:
            raise ConfigError(f"{path}: {node_label(node)} after {node_label(layer.linear)} cannot be mapped "
                              f"(between a layer and its activation the importer takes {', '.join(ELEMENTWISE_OPS)})")
        _check_constant_operands(model, node)
        layer.chain.append(node)
        tensor = node.output[0]
    if node is None:
        return layer, tensor
    layer.activation = node
    node, tensor = _next(model, node.output[0], output, path)
    if node is not None and node.op_type == "MaxPool":
        layer.pool = _pool_size(model, node, layer)
        tensor = node.output[0]
    elif node is not None and node.op_type in ("AveragePool", "GlobalAveragePool", "GlobalMaxPool"):
        raise ConfigError(f"{path}: {node_label(node)}: only max pooling with kernel = stride is supported")
    return layer, tensor


def linear_weight(model: Any, node: Any) -> np.ndarray[Any, Any]:
    """The float weight of a Conv / Gemm / MatMul node, as (out, in, k, k) or (out, in).

    Raises:
        ConfigError: the weight is not a constant, or the node's attributes are not supported.
    """
    from qonnx.util.basic import get_by_name

    def attr(name: str, default: Any) -> Any:
        found = get_by_name(node.attribute, name)
        if found is None:
            return default
        return list(found.ints) if found.ints else (found.i if found.type == 2 else found.f)

    weight_name = node.input[1]
    weight = model.get_initializer(weight_name)
    if weight is None:
        raise ConfigError(f"{node_label(node)}: its weight {weight_name!r} is not a constant (a trained weight "
                          "behind a quantizer is expected)")
    weight = np.asarray(weight, dtype=np.float64)
    if node.op_type == "Conv":
        kernel = list(weight.shape[2:])
        checks = {"group": (attr("group", 1), 1), "strides": (attr("strides", [1, 1]), [1, 1]),
                  "dilations": (attr("dilations", [1, 1]), [1, 1]), "pads": (attr("pads", [0, 0, 0, 0]), [0] * 4)}
        for name, (value, wanted) in checks.items():
            if value != wanted:
                raise ConfigError(f"{node_label(node)}: {name} {value} is not supported (bmcnn-hw convolutions are "
                                  f"valid, stride 1, ungrouped: {name} {wanted})")
        if len(kernel) != 2 or kernel[0] != kernel[1]:
            raise ConfigError(f"{node_label(node)}: kernel {kernel} is not square")
        return weight
    if node.op_type == "Gemm":
        if attr("transA", 0) or attr("alpha", 1.0) != 1.0 or (len(node.input) > 2 and attr("beta", 1.0) != 1.0):
            raise ConfigError(f"{node_label(node)}: transA, alpha or beta other than 0, 1, 1 is not supported")
        return weight if attr("transB", 0) else weight.T
    if weight.ndim != 2:
        raise ConfigError(f"{node_label(node)}: a {weight.ndim}-d weight is not a fully connected layer")
    return weight.T


def linear_bias(model: Any, node: Any) -> np.ndarray[Any, Any] | None:
    """A Gemm's constant bias C per output (None when it has none)."""
    if node.op_type != "Gemm" or len(node.input) < 3 or not node.input[2]:
        return None
    bias = model.get_initializer(node.input[2])
    if bias is None:
        raise ConfigError(f"{node_label(node)}: its bias {node.input[2]!r} is not a constant")
    return np.asarray(bias, dtype=np.float64).reshape(-1)


def _check_constant_operands(model: Any, node: Any) -> None:
    for name in node.input[1:]:
        if name and model.get_initializer(name) is None:
            raise ConfigError(f"{node_label(node)}: operand {name!r} is not a constant (only constant scales, "
                              "offsets and batch-norm parameters can be folded)")


def _check_flatten(model: Any, node: Any) -> None:
    shape_in = model.get_tensor_shape(node.input[0]) or []
    shape_out = model.get_tensor_shape(node.output[0]) or []
    if len(shape_out) != 2 or int(np.prod(shape_in[1:])) != shape_out[1]:
        raise ConfigError(f"{node_label(node)}: reshapes {shape_in} to {shape_out}; only flattening "
                          "(N, C, H, W) -> (N, C*H*W) is supported")


def _pool_size(model: Any, node: Any, layer: LayerNodes) -> int:
    from qonnx.util.basic import get_by_name

    def ints(name: str) -> list[int]:
        found = get_by_name(node.attribute, name)
        return list(found.ints) if found is not None else []

    def value(name: str) -> int:
        found = get_by_name(node.attribute, name)
        return int(found.i) if found is not None else 0

    kernel, strides = ints("kernel_shape"), ints("strides") or [1, 1]
    pads, dilations = ints("pads") or [0, 0, 0, 0], ints("dilations") or [1, 1]
    if (len(kernel) != 2 or kernel[0] != kernel[1] or strides != kernel or any(pads) or dilations != [1, 1]
            or value("ceil_mode")):
        raise ConfigError(f"{node_label(node)}: only square max pooling with stride = kernel, no padding, "
                          f"dilation 1 and ceil_mode 0 is supported (got kernel {kernel}, strides {strides}, "
                          f"pads {pads})")
    if layer.kind != "conv":
        raise ConfigError(f"{node_label(node)}: pooling after a fully connected layer is not supported")
    return kernel[0]


def execute_source(model: Any, inputs: np.ndarray[Any, Any], batch: int = 500) -> np.ndarray[Any, Any]:
    """Outputs of the cleaned-up source graph for float ``inputs`` (N, C, H, W), executed by qonnx
    (custom quantizer ops in Python, standard ops by onnxruntime), ``batch`` images at a time."""
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes

    outputs: list[np.ndarray[Any, Any]] = []
    resized: dict[int, Any] = {}
    for start in range(0, len(inputs), batch):
        chunk = inputs[start:start + batch].astype(np.float32)
        if len(chunk) not in resized:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                resized[len(chunk)] = model.transform(ChangeBatchSize(len(chunk))).transform(InferShapes())
        sized = resized[len(chunk)]
        result = execute_onnx(sized, {sized.graph.input[0].name: chunk})
        outputs.append(np.asarray(result[sized.graph.output[0].name]))
    return np.concatenate(outputs)
