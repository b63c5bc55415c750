"""Optional sinks: annotated snapshots (bounded folder) and active-learning captures uploaded to S3."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .postprocess import Detection
from .telemetry import Counters, log_event

logger = logging.getLogger(__name__)


def annotate(image: np.ndarray, detections: Sequence[Detection]) -> np.ndarray:
    import cv2

    canvas = image.copy()
    for det in detections:
        x1, y1, x2, y2 = det.box
        cv2.rectangle(canvas, (x1, y1), (x2, y2), (0, 255, 0), 2)
        cv2.putText(
            canvas,
            f"{det.label} {det.score:.2f}",
            (x1 + 2, max(12, y1 - 4)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (0, 255, 0),
            1,
            cv2.LINE_AA,
        )
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
    def __init__(self, folder: str, interval: float, max_mb: float) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.interval = interval
        self.max_bytes = max_mb * 2**20
        self.last = 0.0

    def __call__(self, image: np.ndarray, frame: int, detections: Sequence[Detection]) -> None:
        import cv2

        now = time.monotonic()
        if not detections or now - self.last < self.interval:
            return
        self.last = now
        cv2.imwrite(
            str(self.folder / f"snapshot_{int(time.time() * 1000)}_{frame:06d}.jpg"), annotate(image, detections)
        )
        _trim(self.folder, self.max_bytes)


class ActiveLearning:
    """Keeps frames the model is unsure about (best score inside the band, or motion with no detection)."""

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

    def __call__(self, image: np.ndarray, frame: int, detections: Sequence[Detection], all_scores: float) -> bool:
        import cv2

        moving = self._moving(image) if self.motion else False
        uncertain = self.low <= all_scores < self.high
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
                    "best_score": all_scores,
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
