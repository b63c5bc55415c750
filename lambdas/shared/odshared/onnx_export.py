"""The SSD deploy graph as an ONNX model, built with numpy and onnx alone (no MXNet).

MXNet's own exporter stops at SoftmaxActivation, MultiBoxPrior and MultiBoxDetection (REFERENCE.md A10), so
this builder maps every operator itself: the CNN op by op, MultiBoxPrior folded into constant anchors, and
MultiBoxDetection rebuilt from ONNX operators (decode, best class, threshold, top-k, NonMaxSuppression), so any
ONNX runtime returns final detections in MultiBoxDetection's layout with no extra code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .mxnet_shapes import BROADCAST_OPS, infer_shapes, multibox_prior, reshape_target
from .mxnet_symbol import (
    DetectionSettings,
    Node,
    Symbol,
    SymbolError,
    UnsupportedOperatorError,
    parse_bool,
    parse_ints,
)

OPSET = 17
OUTPUT_NAME = "detections"
INPUT_NAME = "data"

ACTIVATIONS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softrelu": "Softplus", "softsign": "Softsign"}
ADD_OPS = {"elemwise_add", "_Plus", "_plus", "broadcast_add", "broadcast_plus"}
FOLDABLE = {"Flatten", "Concat", "Reshape", "transpose", "_copy", "identity", "Dropout"}


@dataclass
class _Builder:
    symbol: Symbol
    params: Mapping[str, np.ndarray]
    shapes: list[tuple[int, ...]]
    nodes: list[Any] = field(default_factory=list)
    initializers: dict[str, np.ndarray] = field(default_factory=dict)
    consts: dict[str, np.ndarray] = field(default_factory=dict)
    counter: int = 0

    def fresh(self, base: str) -> str:
        self.counter += 1
        return f"{base}__{self.counter}"

    def const(self, name: str, value: np.ndarray) -> str:
        unique = self.fresh(name) if name in self.initializers else name
        self.initializers[unique] = np.asarray(value)
        return unique

    def add(self, op: str, inputs: list[str], name: str, outputs: list[str] | None = None, **attrs: Any) -> str:
        from onnx import helper

        outputs = outputs or [name]
        self.nodes.append(helper.make_node(op, inputs, outputs, name=self.fresh(name), **attrs))
        return outputs[0]


def export_onnx(
    symbol: Symbol,
    params: Mapping[str, np.ndarray],
    image_size: int,
    classes: list[str],
    metadata: Mapping[str, Any] | None = None,
    extra_outputs: tuple[str, ...] = (),
) -> bytes:
    """Serialise the deploy graph as an ONNX model taking ``data`` (1, 3, S, S) float RGB 0-255.

    ``extra_outputs`` names internal nodes (e.g. ``cls_prob``) to expose after the detections, for debugging
    and for checking the CNN and the detection block separately.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    param_shapes = {name: tuple(value.shape) for name, value in params.items()}
    data_shape = (1, 3, image_size, image_size)
    shapes = infer_shapes(symbol, data_shape, param_shapes)
    builder = _Builder(symbol, params, shapes)
    outputs: dict[int, str] = {}
    for index, node in enumerate(symbol.nodes):
        inputs = [outputs[ref[0]] for ref in node.inputs]
        if any(ref[1] != 0 for ref in node.inputs if symbol.nodes[ref[0]].op != "null"):
            raise UnsupportedOperatorError(f"node {node.name} ({node.op}) reads a secondary output of its input")
        outputs[index] = _convert_node(builder, index, node, inputs)
    final = outputs[symbol.heads[0][0]]
    if symbol.nodes[symbol.heads[0][0]].op != "_contrib_MultiBoxDetection":
        raise SymbolError(f"{symbol.source}: the graph must end in MultiBoxDetection to export final detections")
    builder.add("Identity", [final], OUTPUT_NAME)
    out_shape = shapes[symbol.heads[0][0]]
    graph_outputs = [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, list(out_shape))]
    for extra in extra_outputs:
        index = symbol.index(extra)
        graph_outputs.append(
            helper.make_tensor_value_info(
                builder.add("Identity", [_materialise(builder, outputs[index])], f"{extra}_out"),
                TensorProto.FLOAT,
                list(shapes[index]),
            )
        )
    graph = helper.make_graph(
        builder.nodes,
        "ssd",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, list(data_shape))],
        graph_outputs,
        [numpy_helper.from_array(value, name) for name, value in builder.initializers.items()],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="odshared.onnx_export",
        doc_string=(
            "SSD object detector. Input 'data': (1,3,S,S) float RGB 0-255. Output "
            "'detections': (1,anchors,6) rows [class_id, score, xmin, ymin, xmax, ymax], "
            "normalised; class_id -1 marks suppressed or empty rows."
        ),
    )
    model.ir_version = 8
    meta = {
        "classes": json.dumps(classes),
        "input_size": str(image_size),
        "input_layout": "NCHW RGB 0-255",
        "mean": "[0, 0, 0]",
        "scale": "[1, 1, 1]",
        **{k: str(v) for k, v in (metadata or {}).items()},
    }
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _fold(builder: _Builder, index: int, node: Node, inputs: list[str]) -> str | None:
    """Evaluate shape plumbing on constants (the anchors' Flatten/Concat/Reshape) with numpy."""
    if node.op not in FOLDABLE or not all(name in builder.consts for name in inputs):
        return None
    values = [builder.consts[name] for name in inputs]
    if node.op == "Flatten":
        result = values[0].reshape(values[0].shape[0], -1)
    elif node.op == "Concat":
        result = np.concatenate(values, axis=int(node.attrs.get("dim", 1)))
    elif node.op == "Reshape":
        result = values[0].reshape(reshape_target(values[0].shape, parse_ints(node.attrs.get("shape")), node.name))
    elif node.op == "transpose":
        result = np.transpose(values[0], parse_ints(node.attrs.get("axes")) or None)
    else:
        result = values[0]
    name = node.name
    builder.consts[name] = result
    return name


def _materialise(builder: _Builder, name: str) -> str:
    """A folded constant used by a real operator becomes an initializer."""
    if name in builder.consts and name not in builder.initializers:
        builder.initializers[name] = builder.consts[name].astype(np.float32)
    return name


def _convert_node(builder: _Builder, index: int, node: Node, inputs: list[str]) -> str:
    op, attrs, name = node.op, node.attrs, node.name
    if op == "null":
        if name == INPUT_NAME:
            return INPUT_NAME
        if name not in builder.params:
            raise SymbolError(f"variable {name!r} has no value in the params file")
        return name  # added as an initializer by the operator that reads it
    folded = _fold(builder, index, node, inputs)
    if folded is not None:
        return folded
    if op != "_contrib_MultiBoxDetection":  # the detection block reads the anchors as numpy constants
        inputs = [_materialise(builder, n) for n in inputs]
    in_shapes = [builder.shapes[ref[0]] for ref in node.inputs]
    param = builder.params.get

    def weight(position: int, transform=None) -> str:
        var = builder.symbol.nodes[node.inputs[position][0]].name
        value = np.asarray(param(var), dtype=np.float32)
        return builder.const(var, transform(value) if transform else value)

    if op in ("_copy", "identity", "Dropout"):
        return builder.add("Identity", inputs[:1], name)
    if op == "Convolution":
        kernel = parse_ints(attrs.get("kernel"))
        rank = len(kernel)
        stride = parse_ints(attrs.get("stride")) or (1,) * rank
        pad = parse_ints(attrs.get("pad")) or (0,) * rank
        dilate = parse_ints(attrs.get("dilate")) or (1,) * rank
        args = [inputs[0], weight(1)]
        if not parse_bool(attrs.get("no_bias"), False):
            args.append(weight(2))
        return builder.add(
            "Conv",
            args,
            name,
            kernel_shape=list(kernel),
            strides=list(stride),
            pads=list(pad) * 2,
            dilations=list(dilate),
            group=int(attrs.get("num_group", 1)),
        )
    if op == "BatchNorm":
        if int(attrs.get("axis", 1)) != 1:
            raise UnsupportedOperatorError(f"node {name}: BatchNorm over axis {attrs['axis']} is not supported")
        fix_gamma = parse_bool(attrs.get("fix_gamma"), True)  # MXNet's default: gamma is treated as 1
        gamma = weight(1, (lambda g: np.ones_like(g)) if fix_gamma else None)
        return builder.add(
            "BatchNormalization",
            [inputs[0], gamma, weight(2), weight(3), weight(4)],
            name,
            epsilon=float(attrs.get("eps", 1e-3)),
        )
    if op == "Activation":
        act = attrs.get("act_type", "relu")
        if act not in ACTIVATIONS:
            raise UnsupportedOperatorError(f"node {name}: Activation act_type {act!r} is not supported")
        return builder.add(ACTIVATIONS[act], inputs[:1], name)
    if op == "LeakyReLU" and attrs.get("act_type", "leaky") == "leaky":
        return builder.add("LeakyRelu", inputs[:1], name, alpha=float(attrs.get("slope", 0.25)))
    if op == "Pooling":
        pool = attrs.get("pool_type", "max")
        if pool not in ("max", "avg"):
            raise UnsupportedOperatorError(f"node {name}: pool_type {pool!r} is not supported")
        if parse_bool(attrs.get("global_pool")):
            return builder.add("GlobalMaxPool" if pool == "max" else "GlobalAveragePool", inputs[:1], name)
        kernel = parse_ints(attrs.get("kernel"))
        rank = len(kernel)
        extra = {} if pool == "max" else {"count_include_pad": int(parse_bool(attrs.get("count_include_pad"), True))}
        return builder.add(
            "MaxPool" if pool == "max" else "AveragePool",
            inputs[:1],
            name,
            kernel_shape=list(kernel),
            strides=list(parse_ints(attrs.get("stride")) or (1,) * rank),
            pads=list(parse_ints(attrs.get("pad")) or (0,) * rank) * 2,
            ceil_mode=int(attrs.get("pooling_convention", "valid") == "full"),
            **extra,
        )
    if op in BROADCAST_OPS:
        args = [_param_or_value(builder, node, i, inputs[i]) for i in range(2)]
        return builder.add("Add" if op in ADD_OPS else "Mul", args, name)
    if op == "Flatten":
        return builder.add("Flatten", inputs[:1], name, axis=1)
    if op == "transpose":
        axes = parse_ints(attrs.get("axes")) or tuple(reversed(range(len(in_shapes[0]))))
        return builder.add("Transpose", inputs[:1], name, perm=list(axes))
    if op == "Concat":
        return builder.add("Concat", inputs, name, axis=int(attrs.get("dim", 1)))
    if op == "Reshape":
        target = reshape_target(in_shapes[0], parse_ints(attrs.get("shape")), name)
        return builder.add("Reshape", [inputs[0], builder.const(f"{name}_shape", np.array(target, np.int64))], name)
    if op == "SoftmaxActivation":
        mode = attrs.get("mode", "instance")
        if mode == "channel" or len(in_shapes[0]) == 2:
            return builder.add("Softmax", inputs[:1], name, axis=1)
        flat = builder.add("Flatten", inputs[:1], f"{name}_flat", axis=1)
        soft = builder.add("Softmax", [flat], f"{name}_soft", axis=1)
        shape = builder.const(f"{name}_shape", np.array(in_shapes[0], np.int64))
        return builder.add("Reshape", [soft, shape], name)
    if op == "L2Normalization":
        mode = attrs.get("mode", "instance")
        rank = len(in_shapes[0])
        axes = {"channel": [1], "instance": list(range(1, rank)), "spatial": list(range(2, rank))}.get(mode)
        if axes is None:
            raise UnsupportedOperatorError(f"node {name}: L2Normalization mode {mode!r} is not supported")
        square = builder.add("ReduceSumSquare", inputs[:1], f"{name}_sumsq", axes=axes, keepdims=1)
        eps = builder.const(f"{name}_eps", np.array(float(attrs.get("eps", 1e-10)), np.float32))
        norm = builder.add("Sqrt", [builder.add("Add", [square, eps], f"{name}_plus_eps")], f"{name}_norm")
        return builder.add("Div", [inputs[0], norm], name)
    if op == "_contrib_MultiBoxPrior":
        feature = in_shapes[0]
        builder.consts[name] = multibox_prior(node, feature[2], feature[3])
        return name
    if op == "_contrib_MultiBoxDetection":
        settings = DetectionSettings.from_attrs(attrs)
        return _detection(builder, node, inputs, in_shapes, settings)
    raise UnsupportedOperatorError(f"operator {op!r} (node {name!r}) is not supported by the ONNX exporter")


def _param_or_value(builder: _Builder, node: Node, position: int, value: str) -> str:
    source = builder.symbol.nodes[node.inputs[position][0]]
    if source.op == "null" and source.name != INPUT_NAME:
        return builder.const(source.name, np.asarray(builder.params[source.name], np.float32))
    return value


def _detection(
    builder: _Builder, node: Node, inputs: list[str], in_shapes: list[tuple[int, ...]], settings: DetectionSettings
) -> str:
    """MultiBoxDetection with ONNX operators (batch 1), matching MXNet 1.9.1's CPU kernel.

    MXNet: per anchor, the best foreground class; anchors scoring below ``threshold`` are dropped; the rest
    are sorted by score, the first ``nms_topk`` kept, and greedy NMS (same class only unless force_suppress)
    marks suppressed rows with class -1. Rows past the candidates are all -1.
    """
    name = node.name
    cls_prob, loc_pred, anchor_name = inputs
    if anchor_name not in builder.consts:
        raise SymbolError(f"node {name}: anchors must come from MultiBoxPrior layers")
    anchors = builder.consts[anchor_name].reshape(-1, 4).astype(np.float32)
    _, num_classes_bg, num_anchors = in_shapes[0]
    num_classes = num_classes_bg - 1
    f32, i64 = np.float32, np.int64
    c = builder.const
    # --- decode: anchors are constants, so their widths and centres are folded here
    aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    ax, ay = (anchors[:, 0] + anchors[:, 2]) / f32(2), (anchors[:, 1] + anchors[:, 3]) / f32(2)
    v = [f32(x) for x in settings.variances]
    loc = builder.add("Reshape", [loc_pred, c(f"{name}_loc_shape", np.array([num_anchors, 4], i64))], f"{name}_loc")
    loc_xy = builder.add(
        "Slice",
        [
            loc,
            c(f"{name}_s0", np.array([0], i64)),
            c(f"{name}_e2", np.array([2], i64)),
            c(f"{name}_ax1", np.array([1], i64)),
        ],
        f"{name}_loc_xy",
    )
    loc_wh = builder.add(
        "Slice",
        [
            loc,
            c(f"{name}_s2", np.array([2], i64)),
            c(f"{name}_e4", np.array([4], i64)),
            c(f"{name}_ax1b", np.array([1], i64)),
        ],
        f"{name}_loc_wh",
    )
    scale_xy = np.stack([v[0] * aw, v[1] * ah], axis=1).astype(f32)
    center = builder.add(
        "Add",
        [
            builder.add("Mul", [loc_xy, c(f"{name}_scale_xy", scale_xy)], f"{name}_dxy"),
            c(f"{name}_anchor_xy", np.stack([ax, ay], 1).astype(f32)),
        ],
        f"{name}_center",
    )
    grow = builder.add(
        "Exp",
        [builder.add("Mul", [loc_wh, c(f"{name}_var_wh", np.array([v[2], v[3]], f32))], f"{name}_lwh")],
        f"{name}_grow",
    )
    half = builder.add(
        "Mul", [grow, c(f"{name}_half_anchor", (np.stack([aw, ah], 1) / f32(2)).astype(f32))], f"{name}_half"
    )
    boxes = builder.add(
        "Concat",
        [builder.add("Sub", [center, half], f"{name}_min"), builder.add("Add", [center, half], f"{name}_max")],
        f"{name}_boxes",
        axis=1,
    )
    if settings.clip:
        boxes = builder.add(
            "Clip", [boxes, c(f"{name}_zero", np.array(0, f32)), c(f"{name}_one", np.array(1, f32))], f"{name}_clipped"
        )
    # --- best foreground class and its score per anchor
    probs = builder.add(
        "Reshape", [cls_prob, c(f"{name}_prob_shape", np.array([num_classes_bg, num_anchors], i64))], f"{name}_probs"
    )
    fg = builder.add(
        "Slice",
        [
            probs,
            c(f"{name}_s1", np.array([1], i64)),
            c(f"{name}_ec", np.array([num_classes_bg], i64)),
            c(f"{name}_ax0", np.array([0], i64)),
        ],
        f"{name}_fg",
    )
    score = builder.add("ReduceMax", [fg], f"{name}_score", axes=[0], keepdims=0)
    best = builder.add("Cast", [builder.add("ArgMax", [fg], f"{name}_argmax", axis=0, keepdims=0)], f"{name}_cls", to=1)
    valid = builder.add("GreaterOrEqual", [score, c(f"{name}_thr", np.array(settings.threshold, f32))], f"{name}_valid")
    minus_one = c(f"{name}_minus_one", np.array(-1, f32))
    ranked = builder.add("Where", [valid, score, minus_one], f"{name}_ranked")
    keep = num_anchors if settings.nms_topk <= 0 else min(settings.nms_topk, num_anchors)
    top_scores, top_index = f"{name}_top_scores", f"{name}_top_index"
    builder.add(
        "TopK",
        [ranked, c(f"{name}_k", np.array([keep], i64))],
        f"{name}_topk",
        outputs=[top_scores, top_index],
        axis=0,
        largest=1,
        sorted=1,
    )
    cand_boxes = builder.add("Gather", [boxes, top_index], f"{name}_cand_boxes", axis=0)
    cand_cls = builder.add("Gather", [best, top_index], f"{name}_cand_cls", axis=0)
    cand_valid = builder.add(
        "GreaterOrEqual", [top_scores, c(f"{name}_thr2", np.array(settings.threshold, f32))], f"{name}_cand_valid"
    )
    # --- NMS: one "class" when force_suppress, else each candidate scores only in its own class
    if settings.force_suppress:
        nms_scores = builder.add(
            "Unsqueeze", [top_scores, c(f"{name}_ax01", np.array([0, 1], i64))], f"{name}_nms_scores"
        )
    else:
        class_ids = c(f"{name}_class_ids", np.arange(num_classes, dtype=f32).reshape(-1, 1))
        same = builder.add(
            "Equal",
            [builder.add("Unsqueeze", [cand_cls, c(f"{name}_ax0b", np.array([0], i64))], f"{name}_cls_row"), class_ids],
            f"{name}_same",
        )
        per_class = builder.add(
            "Where",
            [
                same,
                builder.add("Unsqueeze", [top_scores, c(f"{name}_ax0c", np.array([0], i64))], f"{name}_score_row"),
                minus_one,
            ],
            f"{name}_per_class",
        )
        nms_scores = builder.add("Unsqueeze", [per_class, c(f"{name}_ax0d", np.array([0], i64))], f"{name}_nms_scores")
    # ONNX keeps scores strictly above score_threshold; MXNet keeps those >= threshold
    below = np.nextafter(f32(settings.threshold), f32(-1))
    selected = builder.add(
        "NonMaxSuppression",
        [
            builder.add("Unsqueeze", [cand_boxes, c(f"{name}_ax0e", np.array([0], i64))], f"{name}_nms_boxes"),
            nms_scores,
            c(f"{name}_max_out", np.array([keep], i64)),
            c(f"{name}_iou", np.array([settings.nms_threshold], f32)),
            c(f"{name}_score_thr", np.array([below], f32)),
        ],
        f"{name}_nms",
        center_point_box=0,
    )
    chosen = builder.add("Gather", [selected, c(f"{name}_col2", np.array(2, i64))], f"{name}_chosen", axis=1)
    kept = builder.add(
        "ScatterElements",
        [
            c(f"{name}_zeros", np.zeros(keep, f32)),
            chosen,
            builder.add(
                "Expand",
                [c(f"{name}_one_f", np.array([1], f32)), builder.add("Shape", [chosen], f"{name}_n_chosen")],
                f"{name}_ones",
            ),
        ],
        f"{name}_kept",
        axis=0,
    )
    kept_bool = builder.add("Cast", [kept], f"{name}_kept_bool", to=9)
    out_cls = builder.add("Where", [kept_bool, cand_cls, minus_one], f"{name}_out_cls")
    rows = builder.add(
        "Concat",
        [
            builder.add("Unsqueeze", [out_cls, c(f"{name}_ax1c", np.array([1], i64))], f"{name}_cls_col"),
            builder.add("Unsqueeze", [top_scores, c(f"{name}_ax1d", np.array([1], i64))], f"{name}_score_col"),
            cand_boxes,
        ],
        f"{name}_rows",
        axis=1,
    )
    rows = builder.add(
        "Where",
        [
            builder.add("Unsqueeze", [cand_valid, c(f"{name}_ax1e", np.array([1], i64))], f"{name}_valid_col"),
            rows,
            minus_one,
        ],
        f"{name}_rows_valid",
    )
    if keep < num_anchors:
        rows = builder.add(
            "Pad",
            [rows, c(f"{name}_pads", np.array([0, 0, num_anchors - keep, 0], i64)), minus_one],
            f"{name}_padded",
            mode="constant",
        )
    return builder.add("Unsqueeze", [rows, c(f"{name}_ax0f", np.array([0], i64))], name)
