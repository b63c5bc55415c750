"""Shape inference over an MXNet symbol, and a MultiBoxPrior node's anchors (odshared.model.anchors).

The ONNX exporter needs the feature-map sizes to turn MultiBoxPrior into constants, and the converter checks
the class head's width against ``num_classes``; both come from here, without MXNet.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from odshared.model.anchors import anchors_per_cell, multibox_prior
from odshared.model.mxnet_symbol import (
    Node,
    Symbol,
    SymbolError,
    UnsupportedOperatorError,
    parse_bool,
    parse_ints,
    parse_tuple,
)

Shape = tuple[int, ...]

SAME_SHAPE_OPS = {
    "_copy",
    "Activation",
    "LeakyReLU",
    "BatchNorm",
    "Dropout",
    "SoftmaxActivation",
    "L2Normalization",
    "identity",
    "_contrib_SyncBatchNorm",
    "relu",
    "sigmoid",
}
BROADCAST_OPS = {
    "elemwise_add",
    "_Plus",
    "_plus",
    "broadcast_add",
    "broadcast_plus",
    "elemwise_mul",
    "_Mul",
    "_mul",
    "broadcast_mul",
}


def _window(size: int, kernel: int, stride: int, pad: int, dilate: int = 1, ceil: bool = False) -> int:
    span = dilate * (kernel - 1) + 1
    extent = size + 2 * pad - span
    if extent < 0:
        raise SymbolError(f"a {kernel}x{kernel} window does not fit a feature map of size {size}")
    return (math.ceil(extent / stride) if ceil else extent // stride) + 1


def prior_anchors_per_cell(node: Node) -> int:
    return anchors_per_cell(parse_tuple(node.attrs.get("sizes"), (1.0,)), parse_tuple(node.attrs.get("ratios"), (1.0,)))


def reshape_target(in_shape: Shape, spec: tuple[int, ...], name: str) -> Shape:
    """MXNet Reshape with 0 (copy) and -1 (infer); the other special codes are rejected."""
    out: list[int] = []
    for i, value in enumerate(spec):
        if value == 0:
            out.append(in_shape[i])
        elif value == -1 or value > 0:
            out.append(value)
        else:
            raise SymbolError(f"node {name}: Reshape code {value} is not supported (only 0 and -1)")
    if out.count(-1) > 1:
        raise SymbolError(f"node {name}: Reshape has more than one -1")
    total = int(np.prod(in_shape))
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1]))
        out[out.index(-1)] = total // known
    if int(np.prod(out)) != total:
        raise SymbolError(f"node {name}: cannot reshape {in_shape} to {tuple(spec)}")
    return tuple(out)


def infer_shapes(symbol: Symbol, data_shape: Shape, param_shapes: Mapping[str, Shape]) -> list[Shape]:
    """The first output's shape of every node."""
    shapes: list[Shape] = []
    for node in symbol.nodes:
        ins = [shapes[ref[0]] for ref in node.inputs]
        try:
            shapes.append(_infer(node, ins, data_shape, param_shapes))
        except (IndexError, ValueError, ZeroDivisionError) as exc:
            raise SymbolError(f"node {node.name} ({node.op}): cannot infer its shape from {ins}: {exc}") from exc
    return shapes


def _infer(node: Node, ins: list[Shape], data_shape: Shape, params: Mapping[str, Shape]) -> Shape:
    op, a = node.op, node.attrs
    if op == "null":
        if node.name == "data":
            return tuple(data_shape)
        if node.name in params:
            return tuple(params[node.name])
        if "__shape__" in a:
            return parse_ints(a["__shape__"])
        raise SymbolError(f"variable {node.name!r} has no value in the params file")
    if op in SAME_SHAPE_OPS:
        return ins[0]
    if op in BROADCAST_OPS:
        return tuple(np.broadcast_shapes(ins[0], ins[1]))
    if op == "Convolution":
        kernel = parse_ints(a.get("kernel"))
        stride = parse_ints(a.get("stride"), (1,) * len(kernel)) or (1,) * len(kernel)
        pad = parse_ints(a.get("pad"), (0,) * len(kernel)) or (0,) * len(kernel)
        dilate = parse_ints(a.get("dilate"), (1,) * len(kernel)) or (1,) * len(kernel)
        spatial = tuple(_window(ins[0][2 + i], kernel[i], stride[i], pad[i], dilate[i]) for i in range(len(kernel)))
        return (ins[0][0], int(a["num_filter"]), *spatial)
    if op == "Pooling":
        if parse_bool(a.get("global_pool")):
            return (*ins[0][:2], *(1,) * (len(ins[0]) - 2))
        kernel = parse_ints(a.get("kernel"))
        stride = parse_ints(a.get("stride"), (1,) * len(kernel)) or (1,) * len(kernel)
        pad = parse_ints(a.get("pad"), (0,) * len(kernel)) or (0,) * len(kernel)
        convention = a.get("pooling_convention", "valid")
        if convention not in ("valid", "full"):
            raise SymbolError(f"pooling_convention {convention!r} is not supported")
        spatial = tuple(
            _window(ins[0][2 + i], kernel[i], stride[i], pad[i], ceil=convention == "full") for i in range(len(kernel))
        )
        return (*ins[0][:2], *spatial)
    if op == "Flatten":
        return (ins[0][0], int(np.prod(ins[0][1:])))
    if op == "transpose":
        axes = parse_ints(a.get("axes")) or tuple(reversed(range(len(ins[0]))))
        return tuple(ins[0][i] for i in axes)
    if op == "Concat":
        dim = int(a.get("dim", 1))
        out = list(ins[0])
        out[dim] = sum(s[dim] for s in ins)
        return tuple(out)
    if op == "Reshape":
        return reshape_target(ins[0], parse_ints(a.get("shape")), node.name)
    if op == "_contrib_MultiBoxPrior":
        return (1, ins[0][2] * ins[0][3] * prior_anchors_per_cell(node), 4)
    if op == "_contrib_MultiBoxDetection":
        return (ins[0][0], ins[0][2], 6)
    raise UnsupportedOperatorError(f"operator {op!r} (node {node.name!r}) is not supported")


def prior_anchors(node: Node, height: int, width: int) -> np.ndarray:
    """A MultiBoxPrior node's anchors on a height x width feature map."""
    attrs = node.attrs
    return multibox_prior(
        parse_tuple(attrs.get("sizes"), (1.0,)),
        parse_tuple(attrs.get("ratios"), (1.0,)),
        height,
        width,
        parse_tuple(attrs.get("steps"), (-1.0, -1.0)),
        parse_tuple(attrs.get("offsets"), (0.5, 0.5)),
        parse_bool(attrs.get("clip"), False),
    )
