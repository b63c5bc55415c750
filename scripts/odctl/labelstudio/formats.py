"""Between Label Studio's JSON and Ground Truth's bounding-box format: the labeling config from the classes, a
manifest line as a task, the model's detections as predictions, and an annotation as an output-manifest image.

Label Studio keeps rectangles in percent of the image with their top-left corner; Ground Truth in pixels, also
top-left. Pixels are rounded to whole numbers, as Ground Truth writes them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import quoteattr

from odshared.data.groundtruth import HUMAN_CONFIDENCE, Box, LabeledImage

FROM_NAME, TO_NAME, IMAGE_KEY, SOURCE_KEY = "label", "image", "image", "source-ref"
EDGE_TOLERANCE = 0.01  # percent: the labeling UI's own rounding may put an edge a hair past the image


def label_config(classes: Sequence[str]) -> str:
    """A RectangleLabels labeling config; the labels keep the class order (class ids)."""
    labels = "\n".join(f"    <Label value={quoteattr(name)}/>" for name in classes)
    return (
        f'<View>\n  <Image name="{TO_NAME}" value="${IMAGE_KEY}"/>\n'
        f'  <RectangleLabels name="{FROM_NAME}" toName="{TO_NAME}">\n{labels}\n  </RectangleLabels>\n</View>'
    )


def config_classes(config: str) -> list[str]:
    """The labels of a project's RectangleLabels, in order."""
    try:
        root = ET.fromstring(config)
    except ET.ParseError:
        return []
    return [label.get("value", "") for tag in root.iter("RectangleLabels") for label in tag.iter("Label")]


def task(record: dict[str, Any], image_url: str) -> dict[str, Any]:
    """A manifest line as a task: its image for the labeling page, its source-ref and metadata kept as they were."""
    return {"data": {IMAGE_KEY: image_url, **record}}


def rectangle(
    label: str, left: float, top: float, width: float, height: float, size: tuple[int, int]
) -> dict[str, Any]:
    """One rectangle result, as the labeling UI writes it."""
    image_width, image_height = size
    return {
        "from_name": FROM_NAME,
        "to_name": TO_NAME,
        "type": "rectanglelabels",
        "original_width": image_width,
        "original_height": image_height,
        "image_rotation": 0,
        "value": {
            "x": 100.0 * left / image_width,
            "y": 100.0 * top / image_height,
            "width": 100.0 * width / image_width,
            "height": 100.0 * height / image_height,
            "rotation": 0,
            "rectanglelabels": [label],
        },
    }


def prediction(detections: Sequence[Any], size: tuple[int, int], model_version: str) -> dict[str, Any]:
    """The device runtime's detections (odedge Detection: label, score, pixel box x1,y1,x2,y2) as a prediction."""
    result = []
    for det in detections:
        x1, y1, x2, y2 = det.box
        item = rectangle(det.label, x1, y1, x2 - x1, y2 - y1, size)
        item["score"] = round(float(det.score), 4)
        result.append(item)
    score = min((r["score"] for r in result), default=0.0)
    return {"model_version": model_version, "score": score, "result": result}


@dataclass(frozen=True)
class Rejected:
    task: int
    reason: str


def latest_annotation(task_json: dict[str, Any]) -> dict[str, Any] | None:
    """The task's last submitted annotation; skipped and cancelled ones do not count."""
    kept = [a for a in task_json.get("annotations", []) if not a.get("was_cancelled")]
    return max(kept, key=lambda a: (a.get("updated_at") or "", a.get("id") or 0)) if kept else None


def labeled_image(
    task_json: dict[str, Any], annotation: dict[str, Any], classes: Sequence[str], size: tuple[int, int] | None
) -> LabeledImage | Rejected:
    """One annotated task as a Ground Truth image; ``size`` is the image's when the annotation has no boxes."""
    data = dict(task_json["data"])
    data.pop(IMAGE_KEY, None)
    source = data.pop(SOURCE_KEY, None)
    task_id = int(task_json["id"])
    if not source:
        return Rejected(task_id, f"the task has no {SOURCE_KEY!r} in its data (not pushed by odctl)")
    boxes = []
    rectangles = [r for r in annotation.get("result", []) if r.get("type") != "relation"]
    for result in rectangles:
        problem = _check(result, classes)
        if problem:
            return Rejected(task_id, problem)
        size = (int(result["original_width"]), int(result["original_height"]))
        value = result["value"]
        name = value["rectanglelabels"][0]
        left, top = round(value["x"] * size[0] / 100), round(value["y"] * size[1] / 100)
        width, height = round(value["width"] * size[0] / 100), round(value["height"] * size[1] / 100)
        boxes.append(Box(classes.index(name), left, top, width, height, HUMAN_CONFIDENCE, name))
    if size is None:
        return Rejected(task_id, "the annotation has no boxes and the image's size is unknown")
    created = str(annotation.get("created_at") or "").replace("Z", "")
    return LabeledImage(
        source, size[0], size[1], 3, tuple(boxes), extra=data, human_annotated="yes", creation_date=created
    )


def _check(result: dict[str, Any], classes: Sequence[str]) -> str | None:
    if result.get("type") != "rectanglelabels":
        return f"a {result.get('type')!r} result: only rectangles (RectangleLabels) become boxes"
    value = result.get("value", {})
    labels = value.get("rectanglelabels") or []
    if len(labels) != 1:
        return f"a rectangle with labels {labels}: exactly one label per box"
    if labels[0] not in classes:
        return f"label {labels[0]!r} is not one of the classes {list(classes)}"
    if abs(float(value.get("rotation") or 0)) > 1e-6:
        return f"a rectangle rotated by {value['rotation']} degrees: Ground Truth boxes are upright"
    x, y, w, h = (float(value.get(k, 0)) for k in ("x", "y", "width", "height"))
    if x < -EDGE_TOLERANCE or y < -EDGE_TOLERANCE or x + w > 100 + EDGE_TOLERANCE or y + h > 100 + EDGE_TOLERANCE:
        return f"a box outside the image (x={x:.2f}%, y={y:.2f}%, width={w:.2f}%, height={h:.2f}%)"
    if w <= 0 or h <= 0 or not result.get("original_width") or not result.get("original_height"):
        return "a box without a size, or without the image's size"
    return None
