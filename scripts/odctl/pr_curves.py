"""Precision/recall curves of an evaluation report, drawn for ``odctl evaluate``."""

from __future__ import annotations

from typing import Any

import numpy as np


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
