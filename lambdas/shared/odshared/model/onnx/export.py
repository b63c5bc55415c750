"""The driver: walk the deploy graph once, fold the anchors' plumbing, convert each node, write the model."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from odshared.model.graph_shapes import infer_shapes, reshape_target
from odshared.model.mxnet_symbol import Node, Symbol, SymbolError, UnsupportedOperatorError, parse_ints

from .builder import INPUT_NAME, GraphBuilder
from .operators import CONVERTERS

OPSET = 17
OUTPUT_NAME = "detections"
FOLDABLE = {"Flatten", "Concat", "Reshape", "transpose", "_copy", "identity", "Dropout"}
DOC = (
    "SSD object detector. Input 'data': (1,3,S,S) float RGB 0-255. Output "
    "'detections': (1,anchors,6) rows [class_id, score, xmin, ymin, xmax, ymax], "
    "normalised; class_id -1 marks suppressed or empty rows."
)


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

    data_shape = (1, 3, image_size, image_size)
    shapes = infer_shapes(symbol, data_shape, {name: tuple(value.shape) for name, value in params.items()})
    b = GraphBuilder(symbol, params, shapes)
    outputs = _convert_graph(b)
    head = symbol.heads[0][0]
    if symbol.nodes[head].op != "_contrib_MultiBoxDetection":
        raise SymbolError(f"{symbol.source}: the graph must end in MultiBoxDetection to export final detections")
    b.add("Identity", [outputs[head]], OUTPUT_NAME)
    graph_outputs = [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, list(shapes[head]))]
    for extra in extra_outputs:
        index = symbol.index(extra)
        exposed = b.add("Identity", [b.materialise(outputs[index])], f"{extra}_out")
        graph_outputs.append(helper.make_tensor_value_info(exposed, TensorProto.FLOAT, list(shapes[index])))
    graph = helper.make_graph(
        b.nodes,
        "ssd",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, list(data_shape))],
        graph_outputs,
        [numpy_helper.from_array(value, name) for name, value in b.initializers.items()],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="odshared.model.onnx", doc_string=DOC
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


def _convert_graph(b: GraphBuilder) -> dict[int, str]:
    """Each node's output name, in graph order."""
    symbol, outputs = b.symbol, dict[int, str]()
    for index, node in enumerate(symbol.nodes):
        inputs = [outputs[ref[0]] for ref in node.inputs]
        if any(ref[1] != 0 for ref in node.inputs if symbol.nodes[ref[0]].op != "null"):
            raise UnsupportedOperatorError(f"node {node.name} ({node.op}) reads a secondary output of its input")
        outputs[index] = _convert_node(b, node, inputs)
    return outputs


def _convert_node(b: GraphBuilder, node: Node, inputs: list[str]) -> str:
    if node.op == "null":
        if node.name == INPUT_NAME:
            return INPUT_NAME
        if node.name not in b.params:
            raise SymbolError(f"variable {node.name!r} has no value in the params file")
        return node.name  # added as an initializer by the operator that reads it
    folded = _fold(b, node, inputs)
    if folded is not None:
        return folded
    converter = CONVERTERS.get(node.op)
    if converter is None:
        raise UnsupportedOperatorError(
            f"operator {node.op!r} (node {node.name!r}) is not supported by the ONNX exporter"
        )
    if node.op != "_contrib_MultiBoxDetection":  # the detection block reads the anchors as numpy constants
        inputs = [b.materialise(name) for name in inputs]
    return converter(b, node, inputs, [b.shapes[ref[0]] for ref in node.inputs])


def _fold(b: GraphBuilder, node: Node, inputs: list[str]) -> str | None:
    """Evaluate shape plumbing on constants (the anchors' Flatten/Concat/Reshape) with numpy."""
    if node.op not in FOLDABLE or not all(name in b.consts for name in inputs):
        return None
    values = [b.consts[name] for name in inputs]
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
    b.consts[node.name] = result
    return node.name
