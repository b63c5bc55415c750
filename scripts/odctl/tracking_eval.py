"""``odctl evaluate-tracking``: the device loop (tracking and counting on) over a generated video, scored against
the video's true identities and crossings.

MOT metrics (MOTA, IDF1, identity switches) come from py-motmetrics; boxes match at IoU >= 0.5 (its distances are
computed here, with the device tracker's IoU: motmetrics 1.4's own helper still calls a numpy 1 function). Count
errors compare the device's totals with the crossings the true tracks make under the same counting rule.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from odedge.app import run
from odedge.config import EdgeConfig
from odedge.counting import parse_lines
from odedge.tracking import iou_matrix
from odshared.core.errors import OdError
from odshared.core.log import log_event

from .counting_truth import true_totals
from .synth_video import boxes_path, read_boxes

logger = logging.getLogger(__name__)
MATCH_IOU = 0.5


def evaluate_tracking(
    video: str,
    model: str,
    lines: list[dict[str, Any]],
    boxes: str | None = None,
    threshold: float = 0.5,
    messages_out: str | None = None,
    precision: str = "int8",
) -> dict[str, Any]:
    """The report; ``messages_out`` keeps what the device published (JSON Lines) for pictures; ``precision`` as
    the device's (int8 where the package has it), so one package is measured at both."""
    truth_file = Path(boxes) if boxes else boxes_path(video)
    if not truth_file.exists():
        raise OdError(f"{truth_file}: no true boxes for {video} (a video from `odctl synth-video`, or pass --boxes)")
    with tempfile.TemporaryDirectory(prefix="evaluate-tracking-") as folder:
        out = Path(folder) / "messages.jsonl"
        config = EdgeConfig.from_mapping(
            {
                "model_dir": model,
                "source": video,
                "publisher": "jsonl",
                "jsonl": str(out),
                "publish_empty": True,
                "health_interval": 3600,
                "score_threshold": threshold,
                "lines": json.dumps(lines),
                "track": True,
                "precision": precision,
            }
        )
        run(config, install_signals=False)
        messages = [json.loads(line) for line in out.read_text().splitlines()]
        if messages_out:
            Path(messages_out).write_text(out.read_text())
    truth = read_boxes(truth_file)
    report = {"video": video, "frames": len(truth), **_mot(messages, truth)}
    health = [m["message"] for m in messages if m["topic"].endswith("/health")]
    report["runtime"] = health[-1].get("runtime") if health else None  # the backend and precision measured
    report["counts"] = _counts(messages, truth_file, config.lines)
    pairs = [c for line in report["counts"].values() for way in line.values() for c in way.values()]
    errors = [abs(c["counted"] - c["true"]) for c in pairs]
    report["count_pairs_exact"] = round(sum(e == 0 for e in errors) / len(errors), 3) if errors else 1.0
    report["count_max_error"] = max(errors, default=0)
    log_event(logger, "evaluate_tracking.done", **{k: v for k, v in report.items() if k != "counts"})
    return report


def _mot(messages: list[dict[str, Any]], truth: dict[int, dict[str, Any]]) -> dict[str, Any]:
    import motmetrics as mm

    found = {m["message"]["frame"]: m["message"]["detections"] for m in messages if m["topic"].endswith("/detections")}
    accumulator = mm.MOTAccumulator(auto_id=False)
    for frame, record in sorted(truth.items()):
        true = record["boxes"]
        tracked = [d for d in found.get(frame, []) if "track_id" in d]
        true_boxes = np.array([[b["left"], b["top"], b["left"] + b["width"], b["top"] + b["height"]] for b in true])
        seen_boxes = np.array([d["box"] for d in tracked], dtype=float).reshape(-1, 4)
        distance = 1.0 - iou_matrix(true_boxes.reshape(-1, 4).astype(float), seen_boxes)
        distance[distance > 1.0 - MATCH_IOU] = np.nan
        accumulator.update([b["track_id"] for b in true], [d["track_id"] for d in tracked], distance, frameid=frame)
    summary = mm.metrics.create().compute(accumulator, metrics=["mota", "idf1", "num_switches"], name="video")
    return {
        "mota": round(float(summary["mota"].iloc[0]), 4),
        "idf1": round(float(summary["idf1"].iloc[0]), 4),
        "id_switches": int(summary["num_switches"].iloc[0]),
    }


def _counts(messages: list[dict[str, Any]], truth_file: Path, lines_json: str) -> dict[str, Any]:
    health = [m["message"] for m in messages if m["topic"].endswith("/health")][-1]
    counted = health["counts"]["lines"]
    true = true_totals(truth_file, parse_lines(lines_json))
    classes = sorted({c for line in (*counted.values(), *true.values()) for way in line.values() for c in way})
    return {
        name: {
            way: {c: {"counted": counted[name][way].get(c, 0), "true": true[name][way].get(c, 0)} for c in classes}
            for way in ("in", "out")
        }
        for name in true
    }
