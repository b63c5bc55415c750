"""Disputed crossings as Label Studio tasks: each evidence frame an image to label, the device's boxes pre-labelled.

A crossing the ledger got wrong is often a detector's miss or mislabel: the evidence frames around it are the frames
the model most needs. So each listed crossing's evidence item becomes tasks, one per frame, with the boxes the device
drew there (``evidence.json``: label, score, box in the saved image's pixels) as the prediction, in the labeling
project's own task format (odctl.labelstudio.formats, the same as ``odctl label`` pre-labels), so the frames join a
training set through the existing labeling path. The task's data keeps the crossing (event_id, thing, line, class,
direction, correction) so a labeler sees why the frame is there.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from odctl.labelstudio.formats import IMAGE_KEY, rectangle
from odctl.labelstudio.projects import image_url
from odshared.core.errors import InputDataError
from odshared.core.log import log_event

logger = logging.getLogger(__name__)

METADATA = "evidence.json"  # odedge.evidence.METADATA
KEPT = ("event_id", "thing", "line", "class", "direction", "timestamp", "correction", "corrected_class")


def _size(meta: dict[str, Any]) -> tuple[int, int]:
    """The saved images' size: the crop's where the item was cropped, else the item's own."""
    crop = meta.get("crop")
    if crop:
        return crop[2] - crop[0], crop[3] - crop[1]
    width, height = meta["size"]
    return int(width), int(height)


def _frame_task(row: dict[str, Any], folder: Path, meta: dict[str, Any], frame: dict[str, Any], root: str) -> dict:
    size = _size(meta)
    result = []
    for box in frame.get("boxes", []):
        x1, y1, x2, y2 = box["box"]
        item = rectangle(box["label"], x1, y1, x2 - x1, y2 - y1, size)
        item["score"] = float(box["score"])
        result.append(item)
    prediction = {
        "model_version": "device",
        "score": min((r["score"] for r in result), default=0.0),
        "result": result,
    }
    data = {IMAGE_KEY: image_url(str(folder / frame["file"]), root), "frame_role": frame["role"]}
    return {"data": data | {k: row.get(k) for k in KEPT}, "predictions": [prediction]}


def evidence_tasks(rows: Sequence[dict[str, Any]], files_root: str) -> list[dict[str, Any]]:
    """One task per evidence frame of every row with an evidence folder; a folder without a readable
    ``evidence.json`` is refused, naming it (its frames cannot be pre-labelled)."""
    tasks = []
    for row in rows:
        if not row.get("evidence"):
            continue
        folder = Path(row["evidence"])
        try:
            meta = json.loads((folder / METADATA).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputDataError(
                f"{folder / METADATA}: not the device's evidence metadata ({exc}); --evidence"
            ) from None
        tasks += [_frame_task(row, folder, meta, frame, files_root) for frame in meta.get("frames", [])]
    return tasks


def write_tasks(tasks: list[dict[str, Any]], out: Path) -> str:
    """The task file Label Studio imports (a JSON list), written whole: a temporary name, then renamed."""
    if not out.parent.is_dir():
        raise InputDataError(f"--label-studio {out}: no such folder {out.parent}")
    partial = out.with_name(f".{out.name}.partial")
    partial.write_text(json.dumps(tasks, indent=1))
    partial.replace(out)
    log_event(logger, "review.label_studio", tasks=len(tasks), path=str(out))
    return str(out)
