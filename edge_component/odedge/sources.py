"""Frame sources: cameras, streams, video files, image folders and the request mode, behind one interface.

Live sources (cameras, rtsp/http streams) reconnect with exponential backoff when they fail, forever under
Greengrass or up to ``max_retries`` attempts when run by hand; files and folders end (or loop), and a file that
cannot be opened fails at once. Frames that cannot be decoded are skipped and counted.
"""

from __future__ import annotations

import json
import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .messages import iso
from .telemetry import Counters, log_event

logger = logging.getLogger(__name__)
# how a message-fed source subscribes: (topic, callback(topic, payload))
Subscribe = Callable[[str, Callable[[str, bytes], None]], None]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass
class Frame:
    image: np.ndarray
    index: int
    captured: float  # time.monotonic() when read
    timestamp: float  # time.time() when read; a video file's: its start plus its position (VideoSource)
    source: str
    reply_to: str | None = None  # request mode: where the answer goes


class EndOfStream(Exception):
    """A finite source has no more frames."""


class SourceError(ValueError):
    """The source cannot give frames: a missing or undecodable file, or a live source past its retries."""


class FrameSource:
    live = False
    replies = False  # every frame is a request that gets an answer (published even when empty)

    def __init__(self, name: str, counters: Counters) -> None:
        self.name = name
        self.counters = counters
        self.index = 0
        self.warnings: list[str] = []  # a result still usable but not whole (a file cut short), said in the summary
        self.clock: dict[str, str] | None = None  # a file's own clock: its first frame's time and where it came from

    def read(self) -> Frame | None:
        """The next frame; None when nothing is available right now; raises EndOfStream when done."""
        raise NotImplementedError

    def listen(self, subscribe: Subscribe, topic: str) -> None:
        """Sources fed by messages subscribe to ``topic`` here; the others need nothing."""

    def fps(self) -> float:
        return 0.0

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class VideoSource(FrameSource):
    """A camera index, an rtsp/http URL or a video file, through OpenCV."""

    def __init__(
        self,
        spec: str,
        counters: Counters,
        loop: bool = False,
        backoff_max: float = 30.0,
        opener: Callable[[int | str], object] | None = None,
        max_retries: int = 0,
        start_time: float | None = None,
    ) -> None:
        super().__init__(spec, counters)
        self.target: int | str = int(spec) if spec.isdigit() else spec
        self.live = isinstance(self.target, int) or spec.startswith(("rtsp://", "http://", "https://"))
        self.loop = loop
        self.backoff_max = backoff_max
        self.capture: Any = None  # cv2.VideoCapture, or what the test's opener returns
        self.retry_at = 0.0
        self.backoff = 0.5
        self._opener = opener
        self.max_retries, self.failures = max_retries, 0  # 0: retry forever (Greengrass restarts nothing)
        if not self.live and not Path(spec).exists():
            raise SourceError(f"video source {spec}: no such file")
        if not self._open():
            if not self.live:
                raise SourceError(f"video source {spec}: OpenCV cannot open it (corrupt or an unsupported codec)")
            self._schedule_retry("cannot open")
        self.declared_frames = 0 if self.live or self.capture is None else self._frame_count()
        self.clock_start, origin = (start_time, "start_time") if start_time is not None else self._default_start()
        if not self.live:  # said in the run's result: a guessed start is never taken for the footage's real time
            self.clock = {"start": iso(self.clock_start), "from": origin}
            log_event(logger, "source.clock", source=self.name, start=self.clock["start"], origin=origin)

    def _frame_count(self) -> int:
        import cv2

        return max(0, int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0))

    def _default_start(self) -> tuple[float, str]:
        """A file read once without ``start_time`` starts at its modification time less its duration: a recording
        is most often last written when it ends, and a second run over the same footage gets the same times (the
        run's start would put each run in other hours). A looped file stands in for a camera: the run's start."""
        now = time.time()
        if self.live or self.loop:
            return now, "the run's start"
        fps = self.fps()
        duration = self.declared_frames / fps if fps > 0 else 0.0
        return Path(self.name).stat().st_mtime - duration, f"the file's modification time less its {duration:.1f} s"

    def _timestamp(self) -> float:
        """A camera's frame is now; a file's is its start plus its position (its own clock, not the reading's)."""
        fps = self.fps()
        return time.time() if self.live or fps <= 0 else self.clock_start + self.index / fps

    def _check_complete(self) -> None:
        """A file whose header promises more frames than it gives is cut short or damaged: the result stands for
        the part read, and says so (containers' counts are approximate: 2 frames or 2% are let pass)."""
        declared, read = self.declared_frames, self.index
        if declared and declared - read > max(2, 0.02 * declared):
            warning = f"{self.name}: read {read} of {declared} frames: the file is cut short or damaged"
            self.warnings.append(warning)
            log_event(
                logger, "source.incomplete", level=logging.WARNING, source=self.name, read=read, declared=declared
            )

    def _open(self) -> bool:
        import cv2

        self.capture = self._opener(self.target) if self._opener else cv2.VideoCapture(self.target)
        if self.capture.isOpened():
            self.backoff, self.failures = 0.5, 0
            return True
        self.capture.release()
        self.capture = None
        return False

    def fps(self) -> float:
        import cv2

        return float(self.capture.get(cv2.CAP_PROP_FPS) or 0.0) if self.capture is not None else 0.0

    def read(self) -> Frame | None:
        if self.capture is None:
            if time.monotonic() < self.retry_at:
                time.sleep(min(0.05, self.retry_at - time.monotonic()))
                return None
            self.counters.add("reconnects")
            if not self._open():
                self._schedule_retry("reconnect failed")
                return None
            log_event(logger, "source.reconnected", source=self.name)
        ok, image = self.capture.read()
        if not ok or image is None:
            if self.live:
                self.capture.release()
                self.capture = None
                self._schedule_retry("stream ended or camera unplugged")
                return None
            if self.loop and self.index > 0:
                self.capture.release()
                self._open()
                return None
            self._check_complete()
            raise EndOfStream(self.name)
        frame = Frame(image, self.index, time.monotonic(), self._timestamp(), self.name)
        self.index += 1
        self.counters.set("source_connected", 1)  # frames flow (health's SourceConnected; 0 from an outage on)
        return frame

    def _schedule_retry(self, why: str) -> None:
        self.counters.set("source_connected", 0)
        self.failures += 1
        if self.max_retries and self.failures > self.max_retries:
            raise SourceError(f"source {self.name}: unavailable after {self.max_retries} retries ({why})")
        if self.failures == 1:  # once per outage; the retries that follow are counted, not logged
            self.counters.add("source_outages")
        log_event(
            logger,
            "source.unavailable",
            level=logging.WARNING if self.failures == 1 else logging.DEBUG,
            source=self.name,
            reason=why,
            attempt=self.failures,
            retry_in_s=round(self.backoff, 2),
        )
        self.retry_at = time.monotonic() + self.backoff
        self.backoff = min(self.backoff * 2, self.backoff_max)

    def close(self) -> None:
        if self.capture is not None:
            self.capture.release()


class FolderSource(FrameSource):
    """Every image in a folder, in name order; unreadable files are skipped and counted."""

    def __init__(self, folder: str, counters: Counters, loop: bool = False) -> None:
        super().__init__(folder, counters)
        self.paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise SourceError(f"image folder {folder}: no images")
        self.loop = loop
        self.position = 0

    def read(self) -> Frame | None:
        import cv2

        if self.position >= len(self.paths):
            if not self.loop:
                raise EndOfStream(self.name)
            self.position = 0
        path = self.paths[self.position]
        self.position += 1
        image = cv2.imread(str(path))
        if image is None:
            self.counters.add("corrupt_frames")
            log_event(logger, "source.corrupt_frame", level=logging.WARNING, path=str(path))
            return None
        frame = Frame(image, self.index, time.monotonic(), time.time(), str(path))
        self.index += 1
        return frame


class RequestSource(FrameSource):
    """The original project's request mode: a message names an image file on the device; one answer each."""

    live = True
    replies = True

    def __init__(self, counters: Counters) -> None:
        super().__init__("request", counters)
        self.requests: queue.Queue[tuple[str, str | None]] = queue.Queue(maxsize=100)

    def listen(self, subscribe: Subscribe, topic: str) -> None:
        subscribe(topic, self._on_message)

    def _on_message(self, topic: str, payload: bytes) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            message = {}
        if not isinstance(message, dict):
            message = {}
        self.submit(message, message.get("reply_to"))

    def submit(self, payload: dict[str, Any], reply_to: str | None = None) -> None:
        path = payload.get("image") or payload.get("path")
        if not isinstance(path, str):
            self.counters.add("bad_requests")
            log_event(logger, "request.invalid", level=logging.WARNING, payload=str(payload)[:200])
            return
        try:
            self.requests.put_nowait((path, reply_to))
        except queue.Full:
            self.counters.add("frames_dropped")

    def read(self) -> Frame | None:
        import cv2

        try:
            path, reply_to = self.requests.get(timeout=0.1)
        except queue.Empty:
            return None
        image = cv2.imread(path)
        if image is None:
            self.counters.add("corrupt_frames")
            log_event(logger, "request.unreadable_image", level=logging.WARNING, path=path)
            return None
        frame = Frame(image, self.index, time.monotonic(), time.time(), path, reply_to)
        self.index += 1
        return frame


def open_source(
    spec: str, counters: Counters, loop: bool = False, max_retries: int = 0, start_time: float | None = None
) -> FrameSource:
    if spec == "request":
        return RequestSource(counters)
    if Path(spec).is_dir():
        return FolderSource(spec, counters, loop)
    return VideoSource(spec, counters, loop, max_retries=max_retries, start_time=start_time)
