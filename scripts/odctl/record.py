"""Recording a camera (or a file/URL standing in for one) into an mp4 named after what it shows."""

from __future__ import annotations

import logging
import select
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odshared.core.errors import InputDataError
from odshared.core.log import log_event
from odshared.data.video_io import open_capture

from .progress import bar
from .video_io import source_arg

logger = logging.getLogger(__name__)


@dataclass
class RecordSummary:
    video: str
    frames: int
    seconds: float
    stopped_by: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _q_pressed() -> bool:
    """True when the operator typed q (Enter) on an interactive terminal; headless OpenCV has no window."""
    if not sys.stdin or not sys.stdin.isatty():
        return False
    ready, _, _ = select.select([sys.stdin], [], [], 0)
    return bool(ready) and sys.stdin.readline().strip().lower() == "q"


def record(
    camera: str,
    name: str,
    out: str = ".",
    seconds: float | None = None,
    fps: float | None = None,
    overwrite: bool = False,
) -> RecordSummary:
    """``seconds`` is video time: wall-clock for a live camera, frames / frame rate for a file (read as fast as
    it decodes)."""
    import cv2

    video = Path(out) / f"{name}.mp4"
    if video.exists() and not overwrite:
        raise InputDataError(f"{video}: a recording of that name exists; pick another --name or pass --overwrite")
    source = source_arg(camera)
    capture = open_capture(source)
    live = isinstance(source, int) or str(source).startswith(("rtsp://", "http://", "https://"))
    rate = fps or capture.get(cv2.CAP_PROP_FPS) or 30.0
    if rate > 120 or rate <= 0:
        rate = 30.0
    Path(out).mkdir(parents=True, exist_ok=True)
    partial = video.with_name(video.name + ".part.mp4")
    writer = None
    frames, stopped_by, start = 0, "end of stream", time.monotonic()
    try:
        with bar(None, f"record {name}", "frame") as pb:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                if writer is None:
                    h, w = frame.shape[:2]
                    writer = cv2.VideoWriter(str(partial), cv2.VideoWriter.fourcc(*"mp4v"), rate, (w, h))
                writer.write(frame)
                frames += 1
                pb.update()
                elapsed = time.monotonic() - start if live else frames / rate
                if seconds is not None and elapsed >= seconds:
                    stopped_by = "--seconds"
                    break
                if _q_pressed():
                    stopped_by = "q"
                    break
    except KeyboardInterrupt:
        stopped_by = "Ctrl-C"
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    if frames == 0:
        partial.unlink(missing_ok=True)
        raise InputDataError(f"{camera}: no frame was captured")
    partial.replace(video)
    duration = time.monotonic() - start if live else frames / rate
    summary = RecordSummary(str(video), frames, round(duration, 2), stopped_by)
    log_event(logger, "record.done", **summary.to_dict())
    return summary
