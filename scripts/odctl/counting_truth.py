"""What a counter should report on a generated video: the crossings of its objects' true identities and boxes
(``<video>.boxes.jsonl``), by the device's own line geometry and counting rule (odedge.counting)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from odedge.counting import Counter, Line
from odedge.postprocess import Detection

from .synth_video import read_boxes


def true_totals(boxes_file: str | Path, lines: tuple[Line, ...]) -> dict[str, dict[str, dict[str, int]]]:
    """Per line, the in/out totals per class that the true tracks make."""
    counter = Counter(lines, ())
    for index, record in sorted(read_boxes(boxes_file).items()):
        tracked = [_detection(box) for box in record["boxes"]]
        counter.observe(tracked, (record["width"], record["height"]), float(index))
    summary: dict[str, Any] = counter.summary()
    return summary["lines"]


def _detection(box: dict[str, Any]) -> Detection:
    x, y = box["left"], box["top"]
    corners = (x, y, x + box["width"], y + box["height"])
    return Detection(box["class"], box["class_id"], 1.0, corners, track_id=box["track_id"])
