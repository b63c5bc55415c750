"""The loop's optional stages after post-processing: annotated snapshots (a bounded folder) and active-learning
captures uploaded to S3. Each is a ``FrameStage``: the loop hands every processed frame to each stage inside its
own guard, so a failing stage is counted and logged and never stops the loop or the other stages."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .drawing import draw_box
from .postprocess import Detection
from .telemetry import Counters, log_event

logger = logging.getLogger(__name__)
SNAPSHOT_COLOUR = (0, 255, 0)


@dataclass(frozen=True)
class FrameResult:
    """One processed frame: the image, its detections, and the best score of any anchor (kept or not)."""

    image: np.ndarray
    index: int
    detections: Sequence[Detection]
    best_score: float


class FrameStage(Protocol):
    name: str

    def observe(self, result: FrameResult) -> None: ...

    def close(self) -> None: ...


def annotate(image: np.ndarray, detections: Sequence[Detection]) -> np.ndarray:
    """A copy of ``image`` with each detection's box, class and score drawn (the snapshots' picture)."""
    canvas = image.copy()
    for det in detections:
        draw_box(canvas, det.box, SNAPSHOT_COLOUR, f"{det.label} {det.score:.2f}")
    return canvas


def _trim(folder: Path, max_bytes: float) -> None:
    """Delete the oldest files until the folder fits its budget."""
    files = sorted((p for p in folder.iterdir() if p.is_file()), key=lambda p: p.stat().st_mtime)
    total = sum(p.stat().st_size for p in files)
    while files and total > max_bytes:
        oldest = files.pop(0)
        total -= oldest.stat().st_size
        oldest.unlink(missing_ok=True)


class Snapshots:
    """Annotated frames with detections, at most one per interval, the oldest deleted past the size budget."""

    name = "snapshots"

    def __init__(self, folder: str, interval: float, max_mb: float) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.interval = interval
        self.max_bytes = max_mb * 2**20
        self.last = 0.0

    def observe(self, result: FrameResult) -> None:
        import cv2

        now = time.monotonic()
        if not result.detections or now - self.last < self.interval:
            return
        self.last = now
        path = self.folder / f"snapshot_{int(time.time() * 1000)}_{result.index:06d}.jpg"
        cv2.imwrite(str(path), annotate(result.image, result.detections))
        _trim(self.folder, self.max_bytes)

    def close(self) -> None:
        pass


class ActiveLearning:
    """Keeps frames the model is unsure about (best score inside the band, or motion with no detection)."""

    name = "active_learning"

    def __init__(
        self,
        folder: str,
        thing: str,
        low: float,
        high: float,
        interval: float,
        motion: bool,
        counters: Counters,
        bucket: str = "",
        prefix: str = "capture",
        max_mb: float = 200.0,
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.thing, self.low, self.high, self.interval, self.motion = thing, low, high, interval, motion
        self.counters = counters
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.max_bytes = max_mb * 2**20
        self.last = 0.0
        self.previous: np.ndarray | None = None
        self.stop = threading.Event()
        self.uploader = threading.Thread(target=self._upload_loop, daemon=True, name="uploader") if bucket else None
        if self.uploader:
            self.uploader.start()

    def _moving(self, image: np.ndarray) -> bool:
        import cv2

        small = cv2.cvtColor(cv2.resize(image, (64, 36)), cv2.COLOR_BGR2GRAY).astype(np.int16)
        moving = self.previous is not None and float(np.mean(np.abs(small - self.previous))) > 6.0
        self.previous = small
        return moving

    def observe(self, result: FrameResult) -> None:
        self.capture(result)

    def capture(self, result: FrameResult) -> bool:
        """Keep the frame if it is worth labeling; True when it was kept."""
        import cv2

        image, frame, detections = result.image, result.index, result.detections
        moving = self._moving(image) if self.motion else False
        uncertain = self.low <= result.best_score < self.high
        now = time.monotonic()
        if not (uncertain or (moving and not detections)) or now - self.last < self.interval:
            return False
        self.last = now
        stem = f"{self.thing}_{int(time.time() * 1000)}_{frame:06d}"
        cv2.imwrite(str(self.folder / f"{stem}.jpg"), image)
        (self.folder / f"{stem}.json").write_text(
            json.dumps(
                {
                    "frame": frame,
                    "best_score": result.best_score,
                    "reason": "uncertain" if uncertain else "motion",
                    "predictions": [d.to_dict() for d in detections],
                }
            )
        )
        self.counters.add("captured")
        _trim(self.folder, self.max_bytes)
        return True

    def _upload_loop(self) -> None:
        import boto3

        client = boto3.client("s3")  # the device's credentials: Greengrass's token exchange service
        while not self.stop.wait(5.0):
            for path in sorted(self.folder.glob("*.jpg")) + sorted(self.folder.glob("*.json")):
                key = f"{self.prefix}/{self.thing}/{path.name}"
                try:
                    client.upload_file(str(path), self.bucket, key)
                    path.unlink()
                    self.counters.add("uploaded")
                except Exception as exc:  # offline: keep the file for the next round
                    log_event(logger, "capture.upload_failed", level=logging.WARNING, path=str(path), error=str(exc))
                    break

    def close(self) -> None:
        self.stop.set()
