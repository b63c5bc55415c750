"""Detection quality: VOC-style average precision per class and its mean.

Variant: PASCAL VOC 2010-2012 "all points" AP — the area under the precision/recall curve after making
precision monotonically decreasing — at one IoU threshold (0.5 by default). A detection is a true positive when
it overlaps a not-yet-matched ground-truth box of its class by at least the threshold; detections are taken
in descending score order over the whole set. Classes without ground truth have no AP and are left out of
the mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class ImageResult:
    """Ground truth and detections of one image; boxes as (xmin, ymin, xmax, ymax) in one coordinate system."""

    gt_boxes: np.ndarray  # (G, 4)
    gt_classes: np.ndarray  # (G,)
    det_boxes: np.ndarray  # (D, 4)
    det_classes: np.ndarray  # (D,)
    det_scores: np.ndarray  # (D,)


@dataclass
class ClassCurve:
    ap: float | None
    precision: list[float] = field(default_factory=list)
    recall: list[float] = field(default_factory=list)
    ground_truth: int = 0
    detections: int = 0


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    if len(boxes) == 0:
        return np.zeros(0)
    ix0, iy0 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    ix1, iy1 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC 2010+ AP: precision made monotone from the right, integrated over the recall steps."""
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    for i in range(len(p) - 2, -1, -1):
        p[i] = max(p[i], p[i + 1])
    steps = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def class_curve(results: Sequence[ImageResult], class_id: int, iou_threshold: float) -> ClassCurve:
    scored = []
    total_gt = 0
    for index, result in enumerate(results):
        total_gt += int(np.sum(result.gt_classes == class_id))
        for box, score in zip(
            result.det_boxes[result.det_classes == class_id],
            result.det_scores[result.det_classes == class_id],
            strict=True,
        ):
            scored.append((float(score), index, box))
    if total_gt == 0:
        return ClassCurve(None, ground_truth=0, detections=len(scored))
    scored.sort(key=lambda item: -item[0])
    matched = [np.zeros(int(np.sum(r.gt_classes == class_id)), bool) for r in results]
    tp = np.zeros(len(scored))
    for rank, (_, index, box) in enumerate(scored):
        gt = results[index].gt_boxes[results[index].gt_classes == class_id]
        overlaps = iou(box, gt)
        if len(overlaps):
            best = int(np.argmax(overlaps))
            if overlaps[best] >= iou_threshold and not matched[index][best]:
                matched[index][best] = True
                tp[rank] = 1
    cum_tp = np.cumsum(tp)
    recall = cum_tp / total_gt
    precision = cum_tp / np.arange(1, len(scored) + 1) if scored else np.zeros(0)
    return ClassCurve(
        average_precision(recall, precision),
        precision.round(5).tolist(),
        recall.round(5).tolist(),
        total_gt,
        len(scored),
    )


def mean_average_precision(
    results: Sequence[ImageResult], classes: Sequence[str], iou_threshold: float = 0.5
) -> dict[str, Any]:
    curves = {name: class_curve(results, i, iou_threshold) for i, name in enumerate(classes)}
    aps = [c.ap for c in curves.values() if c.ap is not None]
    return {
        "metric": "VOC2010+ all-point AP",
        "iou": iou_threshold,
        "mAP": float(np.mean(aps)) if aps else 0.0,
        "per_class": {
            name: {"ap": c.ap, "ground_truth": c.ground_truth, "detections": c.detections} for name, c in curves.items()
        },
        "curves": {name: {"precision": c.precision, "recall": c.recall} for name, c in curves.items()},
    }


def render_pr_png(report: dict[str, Any], width: int = 520, height: int = 400) -> bytes:
    """Precision/recall curves, one per class, drawn with OpenCV."""
    import cv2

    from odshared.data.contact_sheet import encode_png

    from .synth_video import class_colour

    image = np.full((height, width, 3), 255, np.uint8)
    x0, y0, x1, y1 = 50, 30, width - 20, height - 50
    cv2.rectangle(image, (x0, y0), (x1, y1), (0, 0, 0), 1)
    for tick in range(0, 11, 2):
        tx = int(x0 + (x1 - x0) * tick / 10)
        ty = int(y1 - (y1 - y0) * tick / 10)
        cv2.putText(image, f"{tick / 10:.1f}", (tx - 10, y1 + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
        cv2.putText(image, f"{tick / 10:.1f}", (x0 - 35, ty + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    cv2.putText(image, "recall", ((x0 + x1) // 2 - 20, height - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    cv2.putText(
        image,
        f"precision / recall @ IoU {report['iou']}  mAP {report['mAP']:.3f}",
        (x0, 20),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.5,
        (0, 0, 0),
        1,
    )
    for row, (name, curve) in enumerate(report["curves"].items()):
        colour = class_colour(name)
        points = [
            (int(x0 + (x1 - x0) * r), int(y1 - (y1 - y0) * p))
            for r, p in zip(curve["recall"], curve["precision"], strict=True)
        ]
        if len(points) > 1:
            cv2.polylines(image, [np.array(points, np.int32)], False, colour, 2, cv2.LINE_AA)
        ap = report["per_class"][name]["ap"]
        label = f"{name}: AP {ap:.3f}" if ap is not None else f"{name}: no ground truth"
        cv2.putText(image, label, (x0 + 10, y1 - 12 - 18 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1)
    return encode_png(image)
