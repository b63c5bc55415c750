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

from odshared.data.groundtruth import LabeledImage


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


def normalized_boxes(item: LabeledImage) -> np.ndarray:
    """(K, 4) xmin, ymin, xmax, ymax as fractions of the image: what SSD labels and detections use."""
    return np.array(
        [
            [
                b.left / item.width,
                b.top / item.height,
                (b.left + b.width) / item.width,
                (b.top + b.height) / item.height,
            ]
            for b in item.boxes
        ],
        np.float32,
    ).reshape(-1, 4)
