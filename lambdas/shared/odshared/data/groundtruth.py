"""Ground Truth bounding-box output lines: parsed into typed records, validated, and written back.

The format (REFERENCE.md C6) is also what SageMaker's Object Detection algorithm reads from an augmented
manifest, so the training manifests are written in it too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from odshared.core.errors import LineError

SOURCE_REF = "source-ref"
DEFAULT_LABEL_ATTRIBUTE = "bb"
# a box a person drew or accepted (Label Studio annotations; label-local's known boxes): no consolidation doubt
HUMAN_CONFIDENCE = 1.0


@dataclass(frozen=True)
class Box:
    """A box in pixels (origin top-left) with the class name it resolves to, once known."""

    class_id: int
    left: float
    top: float
    width: float
    height: float
    confidence: float | None = None
    class_name: str | None = None

    def mirrored(self, image_width: float) -> Box:
        """The same box in a horizontally flipped image."""
        return replace(self, left=image_width - self.left - self.width)


@dataclass(frozen=True)
class LabeledImage:
    """One image with its boxes, as a labeling job returned it."""

    source_ref: str
    width: int
    height: int
    depth: int
    boxes: tuple[Box, ...]
    class_map: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    job_name: str | None = None
    human_annotated: str | None = None
    creation_date: str | None = None


def _number(value: Any, name: str, index: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise LineError(f"annotation {index}: {name} must be a number, got {value!r}")
    return float(value)


def parse_output_line(obj: dict[str, Any], label_attribute: str = DEFAULT_LABEL_ATTRIBUTE) -> LabeledImage:
    """Validate one output-manifest object; raises LineError naming the offending key."""
    ref = obj.get(SOURCE_REF)
    if not isinstance(ref, str) or not ref:
        raise LineError(f"missing {SOURCE_REF!r}")
    if label_attribute not in obj:
        meta = obj.get(f"{label_attribute}-metadata")
        why = (
            f" (metadata says: {meta.get('failure-reason')})"
            if isinstance(meta, dict) and meta.get("failure-reason")
            else ""
        )
        raise LineError(f"missing label attribute {label_attribute!r}{why}")
    label = obj[label_attribute]
    if not isinstance(label, dict):
        raise LineError(f"{label_attribute!r} must be an object")
    sizes = label.get("image_size")
    if not isinstance(sizes, list) or not sizes or not isinstance(sizes[0], dict):
        raise LineError(f"{label_attribute}.image_size must be a list holding one object")
    size = sizes[0]
    try:
        width, height = int(size["width"]), int(size["height"])
        depth = int(size.get("depth", 3))
    except (KeyError, TypeError, ValueError) as exc:
        raise LineError(f"{label_attribute}.image_size[0] needs integer width and height") from exc
    if width <= 0 or height <= 0:
        raise LineError(f"{label_attribute}.image_size[0] has a non-positive size {width}x{height}")
    annotations = label.get("annotations")
    if not isinstance(annotations, list):
        raise LineError(f"{label_attribute}.annotations must be a list")
    meta = obj.get(f"{label_attribute}-metadata") or {}
    if not isinstance(meta, dict):
        raise LineError(f"{label_attribute}-metadata must be an object")
    objects = meta.get("objects") or []
    class_map = {str(k): str(v) for k, v in (meta.get("class-map") or {}).items()}
    boxes = []
    for index, ann in enumerate(annotations):
        if not isinstance(ann, dict):
            raise LineError(f"annotation {index} must be an object")
        try:
            class_id = int(ann["class_id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise LineError(f"annotation {index}: class_id must be an integer") from exc
        left, top = _number(ann.get("left"), "left", index), _number(ann.get("top"), "top", index)
        w, h = _number(ann.get("width"), "width", index), _number(ann.get("height"), "height", index)
        if w <= 0 or h <= 0:
            raise LineError(f"annotation {index}: zero-size box ({w:g}x{h:g})")
        if left < 0 or top < 0 or left + w > width or top + h > height:
            raise LineError(
                f"annotation {index}: box [{left:g}, {top:g}, {left + w:g}, {top + h:g}] "
                f"is outside the {width}x{height} image"
            )
        confidence = None
        if index < len(objects) and isinstance(objects[index], dict) and "confidence" in objects[index]:
            confidence = float(objects[index]["confidence"])
        boxes.append(Box(class_id, left, top, w, h, confidence, class_map.get(str(class_id))))
    extra = {k: v for k, v in obj.items() if k not in (SOURCE_REF, label_attribute, f"{label_attribute}-metadata")}
    return LabeledImage(
        source_ref=ref,
        width=width,
        height=height,
        depth=depth,
        boxes=tuple(boxes),
        class_map=class_map,
        extra=extra,
        job_name=meta.get("job-name"),
        human_annotated=meta.get("human-annotated"),
        creation_date=meta.get("creation-date"),
    )


def _number_out(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(float(value), 3)


def to_output_line(
    image: LabeledImage, label_attribute: str = DEFAULT_LABEL_ATTRIBUTE, job_name: str | None = None
) -> dict[str, Any]:
    """Serialise in Ground Truth's output layout; class ids and class-map are taken from the boxes."""
    annotations = [
        {
            "class_id": box.class_id,
            "left": _number_out(box.left),
            "top": _number_out(box.top),
            "width": _number_out(box.width),
            "height": _number_out(box.height),
        }
        for box in image.boxes
    ]
    class_map = {str(box.class_id): box.class_name for box in image.boxes if box.class_name is not None}
    if not image.boxes:
        class_map = {}
    metadata = {
        "objects": [{"confidence": box.confidence if box.confidence is not None else 1.0} for box in image.boxes],
        "class-map": dict(sorted(class_map.items(), key=lambda kv: int(kv[0]))),
        "type": "groundtruth/object-detection",
        "human-annotated": image.human_annotated or "yes",
        "creation-date": image.creation_date or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f"),
        "job-name": job_name or image.job_name or "labeling-job/local",
    }
    return {
        SOURCE_REF: image.source_ref,
        **image.extra,
        label_attribute: {
            "image_size": [{"width": image.width, "height": image.height, "depth": image.depth}],
            "annotations": annotations,
        },
        f"{label_attribute}-metadata": metadata,
    }
