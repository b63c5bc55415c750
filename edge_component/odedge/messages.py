"""Detection, counts and health messages, kept under AWS IoT Core's 128 KB payload limit; and the counts messages'
way into the outbox (``CountsOutbox``)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from .outbox import Entry, Outbox
from .postprocess import Detection

logger = logging.getLogger(__name__)
IOT_CORE_LIMIT = 128 * 1024


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def detection_message(
    thing: str,
    source: str,
    frame: int,
    timestamp: float,
    model: str,
    detections: Sequence[Detection],
    latency_ms: dict[str, float],
    size: tuple[int, int] = (0, 0),
    limit: int = IOT_CORE_LIMIT,
) -> bytes:
    """edge_component/schemas/detection.schema.json; when too large, the lowest-scoring detections are dropped and
    counted. ``size`` is the frame's (width, height): the boxes are pixels of that frame."""
    ordered = sorted(detections, key=lambda d: -d.score)
    message: dict[str, Any] = {
        "thing": thing,
        "source": source,
        "frame": frame,
        "timestamp": iso(timestamp),
        "model": model,
        "width": size[0],
        "height": size[1],
        "detections": [d.to_dict() for d in ordered],
        "latency_ms": {k: round(v, 2) for k, v in latency_ms.items()},
    }
    payload = json.dumps(message, separators=(",", ":")).encode()
    if len(payload) <= limit:
        return payload
    # binary search for how many detections fit, then say how many were left out
    low, high = 0, len(ordered)
    while low < high:
        middle = (low + high + 1) // 2
        message["detections"] = [d.to_dict() for d in ordered[:middle]]
        message["truncated"] = len(ordered) - middle
        if len(json.dumps(message, separators=(",", ":")).encode()) <= limit:
            low = middle
        else:
            high = middle - 1
    message["detections"] = [d.to_dict() for d in ordered[:low]]
    message["truncated"] = len(ordered) - low
    return json.dumps(message, separators=(",", ":")).encode()


def counts_message(thing: str, event: dict[str, Any]) -> bytes:
    """edge_component/schemas/counts.schema.json: one line crossing, as it happens, with its ``event_id`` (the same
    on every delivery of it), the device's ``seq`` and the line's totals after it."""
    return json.dumps(
        {
            "thing": thing,
            "type": "crossing",
            "event_id": event["event_id"],
            "seq": event["seq"],
            "timestamp": iso(event["time"]),
            "line": event["line"],
            "class": event["class"],
            "direction": event["direction"],
            "track_id": event["track_id"],
            "totals": event["totals"],
            **({"camera": event["camera"]} if event.get("camera") else {}),  # counted while the camera was not OK
        },
        separators=(",", ":"),
    ).encode()


class CountsOutbox:
    """The outbox as the counter writes to it: each crossing as its counts message, put into the ``Outbox`` as an
    entry with the counter's state after it (sent from there in order: odedge.publishers.OutboxSender), and a copy to
    the best-effort sinks that only record (a JSON Lines file beside the broker)."""

    def __init__(self, outbox: Outbox, thing: str, topic: str, copies: Sequence[Any] = ()) -> None:
        self.outbox, self.thing, self.topic, self.copies = outbox, thing, topic, tuple(copies)

    @property
    def recovered_state(self) -> dict[str, Any] | None:
        """The counter's state after the newest entry a previous run kept (a cut before the totals' file)."""
        return self.outbox.recovered_state

    @property
    def highest_seq(self) -> int:
        """The highest seq among the entries found at start, readable or not: never given again."""
        return self.outbox.highest_seq

    def put(self, event: dict[str, Any], state: dict[str, Any]) -> None:
        """The crossing ``event`` into the outbox, with the counter's ``state`` after it, then its copies."""
        payload = counts_message(self.thing, event)
        self.outbox.put(Entry(event["seq"], self.topic, payload), state)
        for copy in self.copies:
            try:  # a copy only records: it never costs the crossing its outbox entry, nor the frame its detections
                copy.publish(self.topic, payload)
            except Exception:
                logger.exception("counts.copy_failed")

    def status(self) -> dict[str, Any]:
        """What health says about the outbox (``counts.outbox``)."""
        return self.outbox.status()


def health_message(
    thing: str,
    model: str,
    counters: dict[str, float],
    fps: float,
    latency: dict[str, dict[str, float]],
    uptime: float,
    counts: dict[str, Any] | None = None,
    runtime: dict[str, str] | None = None,
    detections_per_frame: float = 0.0,
    model_warning: str = "",
    model_component: str = "",
    timestamp: float | None = None,
    camera: dict[str, Any] | None = None,
    evidence: dict[str, Any] | None = None,
) -> bytes:
    """edge_component/schemas/health.schema.json: the counters ride at the top level; ``counts`` (lines' totals,
    zones' occupancy) when counting is on; ``runtime``: the backend and precision running, and why not the asked;
    ``model_warning`` when the model is too weak to count (odedge.quality); ``model_component``: the model
    component's version running (under Greengrass), the evidence a canary needs that a report is of the new model.
    ``timestamp``: the source's clock (a video file's own, so health sits among its crossings); None: now.
    ``camera``: the camera's health (odedge.camera_health), with ``camera_fault`` 1 while it is not OK (a metric
    to alarm on that reads 0, all well, where a device does not say). ``evidence``: the evidence folder's items and
    bytes against its budget, what was removed, dropped and uploaded (odedge.evidence), when evidence is on."""
    return json.dumps(
        {
            **({"counts": counts} if counts is not None else {}),
            **({"runtime": runtime} if runtime is not None else {}),
            **({"model_warning": model_warning} if model_warning else {}),
            **({"model_component": model_component} if model_component else {}),
            **({"camera": camera, "camera_fault": 0 if camera.get("ok") else 1} if camera is not None else {}),
            **({"evidence": evidence} if evidence is not None else {}),
            "thing": thing,
            "type": "health",
            "timestamp": iso(time.time() if timestamp is None else timestamp),
            "model": model,
            "fps": fps,
            "detections_per_frame": detections_per_frame,
            "uptime_s": round(uptime, 1),
            "latency_ms": latency,
            **{k: int(v) if float(v).is_integer() else v for k, v in sorted(counters.items())},
        },
        separators=(",", ":"),
    ).encode()
