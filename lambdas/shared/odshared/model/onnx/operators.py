"""One converter per MXNet operator of the SSD graphs: MXNet node -> ONNX nodes (``CONVERTERS``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from odshared.model.graph_shapes import BROADCAST_OPS, prior_anchors, reshape_target
from odshared.model.mxnet_symbol import DetectionSettings, Node, UnsupportedOperatorError, parse_bool, parse_ints

from .builder import GraphBuilder
from .detection import detection

Converter = Callable[[GraphBuilder, Node, list[str], list[tuple[int, ...]]], str]
ACTIVATIONS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softrelu": "Softplus", "softsign": "Softsign"}
ADD_OPS = {"elemwise_add", "_Plus", "_plus", "broadcast_add", "broadcast_plus"}


def _window(attrs: dict[str, str], rank: int) -> dict[str, Any]:
    return {
        "strides": list(parse_ints(attrs.get("stride")) or (1,) * rank),
        "pads": list(parse_ints(attrs.get("pad")) or (0,) * rank) * 2,
    }


def _identity(b: GraphBuilder, node: Node, inputs: list[str], _: list) -> str:
    return b.add("Identity", inputs[:1], node.name)


def _convolution(b: GraphBuilder, node: Node, inputs: list[str], _: list) -> str:
    attrs = node.attrs
    kernel = parse_ints(attrs.get("kernel"))
    args = [inputs[0], b.weight(node, 1)]
    if not parse_bool(attrs.get("no_bias"), False):
        args.append(b.weight(node, 2))
    return b.add(
        "Conv",
        args,
        node.name,
        kernel_shape=list(kernel),
        dilations=list(parse_ints(attrs.get("dilate")) or (1,) * len(kernel)),
        group=int(attrs.get("num_group", 1)),
        **_window(attrs, len(kernel)),
    )


def _batch_norm(b: GraphBuilder, node: Node, inputs: list[str], _: list) -> str:
    attrs = node.attrs
    if int(attrs.get("axis", 1)) != 1:
        raise UnsupportedOperatorError(f"node {node.name}: BatchNorm over axis {attrs['axis']} is not supported")
    fix_gamma = parse_bool(attrs.get("fix_gamma"), True)  # MXNet's default: gamma is treated as 1
    gamma = b.weight(node, 1, np.ones_like if fix_gamma else None)
    stats = [b.weight(node, i) for i in (2, 3, 4)]
    return b.add("BatchNormalization", [inputs[0], gamma, *stats], node.name, epsilon=float(attrs.get("eps", 1e-3)))


def _activation(b: GraphBuilder, node: Node, inputs: list[str], _: list) -> str:
    act = node.attrs.get("act_type", "relu")
    if act not in ACTIVATIONS:
        raise UnsupportedOperatorError(f"node {node.name}: Activation act_type {act!r} is not supported")
    return b.add(ACTIVATIONS[act], inputs[:1], node.name)


def _leaky_relu(b: GraphBuilder, node: Node, inputs: list[str], _: list) -> str:
    if node.attrs.get("act_type", "leaky") != "leaky":
        raise UnsupportedOperatorError(
            f"operator 'LeakyReLU' (node {node.name!r}) is not supported by the ONNX exporter"
        )
    return b.add("LeakyRelu", inputs[:1], node.name, alpha=float(node.attrs.get("slope", 0.25)))


def _pooling(b: GraphBuilder, node: Node, inputs: list[str], _: list) -> str:
    attrs, name = node.attrs, node.name
    pool = attrs.get("pool_type", "max")
    if pool not in ("max", "avg"):
        raise UnsupportedOperatorError(f"node {name}: pool_type {pool!r} is not supported")
    if parse_bool(attrs.get("global_pool")):
        return b.add("GlobalMaxPool" if pool == "max" else "GlobalAveragePool", inputs[:1], name)
    kernel = parse_ints(attrs.get("kernel"))
    extra: dict[str, Any] = (
        {} if pool == "max" else {"count_include_pad": int(parse_bool(attrs.get("count_include_pad"), True))}
    )
    return b.add(
        "MaxPool" if pool == "max" else "AveragePool",
        inputs[:1],
        name,
        kernel_shape=list(kernel),
        ceil_mode=int(attrs.get("pooling_convention", "valid") == "full"),
        **_window(attrs, len(kernel)),
        **extra,
    )


def _broadcast(b: GraphBuilder, node: Node, inputs: list[str], _: list) -> str:
    args = [b.param_or_value(node, i, inputs[i]) for i in range(2)]
    return b.add("Add" if node.op in ADD_OPS else "Mul", args, node.name)


def _flatten(b: GraphBuilder, node: Node, inputs: list[str], _: list) -> str:
    return b.add("Flatten", inputs[:1], node.name, axis=1)


def _transpose(b: GraphBuilder, node: Node, inputs: list[str], in_shapes: list) -> str:
    axes = parse_ints(node.attrs.get("axes")) or tuple(reversed(range(len(in_shapes[0]))))
    return b.add("Transpose", inputs[:1], node.name, perm=list(axes))


def _concat(b: GraphBuilder, node: Node, inputs: list[str], _: list) -> str:
    return b.add("Concat", inputs, node.name, axis=int(node.attrs.get("dim", 1)))


def _reshape(b: GraphBuilder, node: Node, inputs: list[str], in_shapes: list) -> str:
    target = reshape_target(in_shapes[0], parse_ints(node.attrs.get("shape")), node.name)
    return b.add("Reshape", [inputs[0], b.ints(f"{node.name}_shape", list(target))], node.name)


def _softmax(b: GraphBuilder, node: Node, inputs: list[str], in_shapes: list) -> str:
    name = node.name
    if node.attrs.get("mode", "instance") == "channel" or len(in_shapes[0]) == 2:
        return b.add("Softmax", inputs[:1], name, axis=1)
    flat = b.add("Flatten", inputs[:1], f"{name}_flat", axis=1)
    soft = b.add("Softmax", [flat], f"{name}_soft", axis=1)
    return b.add("Reshape", [soft, b.ints(f"{name}_shape", list(in_shapes[0]))], name)


def _l2_normalization(b: GraphBuilder, node: Node, inputs: list[str], in_shapes: list) -> str:
    name, mode, rank = node.name, node.attrs.get("mode", "instance"), len(in_shapes[0])
    axes = {"channel": [1], "instance": list(range(1, rank)), "spatial": list(range(2, rank))}.get(mode)
    if axes is None:
        raise UnsupportedOperatorError(f"node {name}: L2Normalization mode {mode!r} is not supported")
    square = b.add("ReduceSumSquare", inputs[:1], f"{name}_sumsq", axes=axes, keepdims=1)
    eps = b.const(f"{name}_eps", np.array(float(node.attrs.get("eps", 1e-10)), np.float32))
    norm = b.add("Sqrt", [b.add("Add", [square, eps], f"{name}_plus_eps")], f"{name}_norm")
    return b.add("Div", [inputs[0], norm], name)


def _multibox_prior(b: GraphBuilder, node: Node, _: list[str], in_shapes: list) -> str:
    """Anchors depend only on the feature map's size: a numpy constant the detection block folds in."""
    b.consts[node.name] = prior_anchors(node, in_shapes[0][2], in_shapes[0][3])
    return node.name


def _multibox_detection(b: GraphBuilder, node: Node, inputs: list[str], in_shapes: list) -> str:
    return detection(b, node, inputs, in_shapes, DetectionSettings.from_attrs(node.attrs))


CONVERTERS: dict[str, Converter] = {
    "_copy": _identity,
    "identity": _identity,
    "Dropout": _identity,
    "Convolution": _convolution,
    "BatchNorm": _batch_norm,
    "Activation": _activation,
    "LeakyReLU": _leaky_relu,
    "Pooling": _pooling,
    **{op: _broadcast for op in BROADCAST_OPS},
    "Flatten": _flatten,
    "transpose": _transpose,
    "Concat": _concat,
    "Reshape": _reshape,
    "SoftmaxActivation": _softmax,
    "L2Normalization": _l2_normalization,
    "_contrib_MultiBoxPrior": _multibox_prior,
    "_contrib_MultiBoxDetection": _multibox_detection,
}
