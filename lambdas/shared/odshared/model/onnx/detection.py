"""MultiBoxDetection with ONNX operators (batch 1), matching MXNet 1.9.1's CPU kernel.

MXNet: per anchor, the best foreground class; anchors scoring below ``threshold`` are dropped; the rest are
sorted by score, the first ``nms_topk`` kept, and greedy NMS (same class only unless force_suppress) marks
suppressed rows with class -1. Rows past the candidates are all -1. The anchors are constants, so their
widths and centres are folded here with numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from odshared.model.mxnet_symbol import DetectionSettings, Node, SymbolError

from .builder import GraphBuilder

f32, i64 = np.float32, np.int64


@dataclass
class _Candidates:
    """The top-k anchors by score: their scores, boxes, classes and whether they pass the threshold."""

    scores: str
    boxes: str
    classes: str
    valid: str
    keep: int


def detection(
    b: GraphBuilder, node: Node, inputs: list[str], in_shapes: list[tuple[int, ...]], settings: DetectionSettings
) -> str:
    name = node.name
    cls_prob, loc_pred, anchor_name = inputs
    if anchor_name not in b.consts:
        raise SymbolError(f"node {name}: anchors must come from MultiBoxPrior layers")
    anchors = b.consts[anchor_name].reshape(-1, 4).astype(f32)
    _, num_classes_bg, num_anchors = in_shapes[0]
    boxes = _decode(b, name, loc_pred, anchors, settings)
    score, best = _best_class(b, name, cls_prob, num_classes_bg, num_anchors)
    cand = _top_candidates(b, name, boxes, score, best, settings, num_anchors)
    selected = _nms(b, name, cand, settings, num_classes_bg - 1)
    return _rows(b, name, cand, selected, num_anchors)


def _decode(b: GraphBuilder, name: str, loc_pred: str, anchors: np.ndarray, settings: DetectionSettings) -> str:
    """Corner boxes from the location offsets: centre += offset * variance * anchor size; size *= exp(...)."""
    aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    ax, ay = (anchors[:, 0] + anchors[:, 2]) / f32(2), (anchors[:, 1] + anchors[:, 3]) / f32(2)
    v = [f32(x) for x in settings.variances]
    loc = b.add("Reshape", [loc_pred, b.ints(f"{name}_loc_shape", [len(anchors), 4])], f"{name}_loc")
    loc_xy = b.slice(loc, 0, 2, 1, f"{name}_loc_xy")
    loc_wh = b.slice(loc, 2, 4, 1, f"{name}_loc_wh")
    scale_xy = np.stack([v[0] * aw, v[1] * ah], axis=1).astype(f32)
    center = b.add(
        "Add",
        [
            b.add("Mul", [loc_xy, b.const(f"{name}_scale_xy", scale_xy)], f"{name}_dxy"),
            b.const(f"{name}_anchor_xy", np.stack([ax, ay], 1).astype(f32)),
        ],
        f"{name}_center",
    )
    wh_scale = b.const(f"{name}_var_wh", np.array([v[2], v[3]], f32))
    grow = b.add("Exp", [b.add("Mul", [loc_wh, wh_scale], f"{name}_lwh")], f"{name}_grow")
    half_anchor = b.const(f"{name}_half_anchor", (np.stack([aw, ah], 1) / f32(2)).astype(f32))
    half = b.add("Mul", [grow, half_anchor], f"{name}_half")
    corners = [b.add("Sub", [center, half], f"{name}_min"), b.add("Add", [center, half], f"{name}_max")]
    boxes = b.add("Concat", corners, f"{name}_boxes", axis=1)
    if settings.clip:
        bounds = [b.const(f"{name}_zero", np.array(0, f32)), b.const(f"{name}_one", np.array(1, f32))]
        boxes = b.add("Clip", [boxes, *bounds], f"{name}_clipped")
    return boxes


def _best_class(b: GraphBuilder, name: str, cls_prob: str, num_classes_bg: int, num_anchors: int) -> tuple[str, str]:
    """Per anchor, the best foreground class (as float, like MXNet's rows) and its score."""
    probs = b.add("Reshape", [cls_prob, b.ints(f"{name}_prob_shape", [num_classes_bg, num_anchors])], f"{name}_probs")
    fg = b.slice(probs, 1, num_classes_bg, 0, f"{name}_fg")
    score = b.add("ReduceMax", [fg], f"{name}_score", axes=[0], keepdims=0)
    best = b.add("Cast", [b.add("ArgMax", [fg], f"{name}_argmax", axis=0, keepdims=0)], f"{name}_cls", to=1)
    return score, best


def _top_candidates(
    b: GraphBuilder, name: str, boxes: str, score: str, best: str, settings: DetectionSettings, num_anchors: int
) -> _Candidates:
    """Anchors below the threshold rank last (score -1); the first nms_topk by score go on to NMS."""
    threshold = np.array(settings.threshold, f32)
    valid = b.add("GreaterOrEqual", [score, b.const(f"{name}_thr", threshold)], f"{name}_valid")
    ranked = b.add("Where", [valid, score, b.const(f"{name}_minus_one", np.array(-1, f32))], f"{name}_ranked")
    keep = num_anchors if settings.nms_topk <= 0 else min(settings.nms_topk, num_anchors)
    top_scores, top_index = f"{name}_top_scores", f"{name}_top_index"
    b.add(
        "TopK",
        [ranked, b.ints(f"{name}_k", [keep])],
        f"{name}_topk",
        outputs=[top_scores, top_index],
        axis=0,
        largest=1,
        sorted=1,
    )
    return _Candidates(
        scores=top_scores,
        boxes=b.add("Gather", [boxes, top_index], f"{name}_cand_boxes", axis=0),
        classes=b.add("Gather", [best, top_index], f"{name}_cand_cls", axis=0),
        valid=b.add("GreaterOrEqual", [top_scores, b.const(f"{name}_thr2", threshold)], f"{name}_cand_valid"),
        keep=keep,
    )


def _nms(b: GraphBuilder, name: str, cand: _Candidates, settings: DetectionSettings, num_classes: int) -> str:
    """NonMaxSuppression's selected indices: one "class" when force_suppress, else each candidate scores only in
    its own class."""
    if settings.force_suppress:
        nms_scores = b.unsqueeze(cand.scores, [0, 1], f"{name}_nms_scores")
    else:
        class_ids = b.const(f"{name}_class_ids", np.arange(num_classes, dtype=f32).reshape(-1, 1))
        same = b.add("Equal", [b.unsqueeze(cand.classes, [0], f"{name}_cls_row"), class_ids], f"{name}_same")
        score_row = b.unsqueeze(cand.scores, [0], f"{name}_score_row")
        minus_one = b.const(f"{name}_minus_one", np.array(-1, f32))
        per_class = b.add("Where", [same, score_row, minus_one], f"{name}_per_class")
        nms_scores = b.unsqueeze(per_class, [0], f"{name}_nms_scores")
    # ONNX keeps scores strictly above score_threshold; MXNet keeps those >= threshold
    below = np.nextafter(f32(settings.threshold), f32(-1))
    return b.add(
        "NonMaxSuppression",
        [
            b.unsqueeze(cand.boxes, [0], f"{name}_nms_boxes"),
            nms_scores,
            b.ints(f"{name}_max_out", [cand.keep]),
            b.const(f"{name}_iou", np.array([settings.nms_threshold], f32)),
            b.const(f"{name}_score_thr", np.array([below], f32)),
        ],
        f"{name}_nms",
        center_point_box=0,
    )


def _rows(b: GraphBuilder, name: str, cand: _Candidates, selected: str, num_anchors: int) -> str:
    """MultiBoxDetection's (1, anchors, 6) rows: suppressed candidates get class -1, invalid ones all -1."""
    minus_one = b.const(f"{name}_minus_one", np.array(-1, f32))
    chosen = b.add("Gather", [selected, b.const(f"{name}_col2", np.array(2, i64))], f"{name}_chosen", axis=1)
    ones = b.add(
        "Expand",
        [b.const(f"{name}_one_f", np.array([1], f32)), b.add("Shape", [chosen], f"{name}_n_chosen")],
        f"{name}_ones",
    )
    zeros = b.const(f"{name}_zeros", np.zeros(cand.keep, f32))
    kept = b.add("ScatterElements", [zeros, chosen, ones], f"{name}_kept", axis=0)
    kept_bool = b.add("Cast", [kept], f"{name}_kept_bool", to=9)
    out_cls = b.add("Where", [kept_bool, cand.classes, minus_one], f"{name}_out_cls")
    columns = [
        b.unsqueeze(out_cls, [1], f"{name}_cls_col"),
        b.unsqueeze(cand.scores, [1], f"{name}_score_col"),
        cand.boxes,
    ]
    rows = b.add("Concat", columns, f"{name}_rows", axis=1)
    rows = b.add("Where", [b.unsqueeze(cand.valid, [1], f"{name}_valid_col"), rows, minus_one], f"{name}_rows_valid")
    if cand.keep < num_anchors:
        pads = b.ints(f"{name}_pads", [0, 0, num_anchors - cand.keep, 0])
        rows = b.add("Pad", [rows, pads, minus_one], f"{name}_padded", mode="constant")
    return b.unsqueeze(rows, [0], name)
