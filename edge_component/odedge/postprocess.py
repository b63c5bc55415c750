"""MultiBoxDetection rows -> detections in source-frame pixels, filtered by score and class."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .preprocess import FrameMeta


@dataclass(frozen=True)
class Detection:
    label: str
    class_id: int
    score: float
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels of the source frame
    track_id: int | None = None  # set by the tracker once the object's track is confirmed

    def to_dict(self) -> dict[str, Any]:
        found = {"label": self.label, "class_id": self.class_id, "score": round(self.score, 4), "box": list(self.box)}
        return found if self.track_id is None else {**found, "track_id": self.track_id}


def detections(
    rows: np.ndarray, meta: FrameMeta, classes: Sequence[str], threshold: float, wanted: frozenset[str] | None = None
) -> list[Detection]:
    """``rows`` is (anchors, 6) [class_id, score, xmin, ymin, xmax, ymax] normalised; -1 rows are skipped."""
    keep = (rows[:, 0] >= 0) & (rows[:, 1] >= threshold)
    selected = rows[keep]
    selected = selected[np.argsort(-selected[:, 1], kind="stable")]
    scale = np.array([meta.width, meta.height, meta.width, meta.height], np.float32)
    out = []
    for row in selected:
        class_id = int(row[0])
        label = classes[class_id] if class_id < len(classes) else f"class_{class_id}"
        if wanted is not None and label not in wanted:
            continue
        x1, y1, x2, y2 = np.clip(np.rint(row[2:6] * scale), 0, scale).astype(int).tolist()
        out.append(Detection(label, class_id, float(row[1]), (x1, y1, x2, y2)))
    return out
