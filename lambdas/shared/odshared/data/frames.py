"""Frame extraction: a video becomes ``<video-stem>_<frame:06d>.jpg`` files, locally or in S3.

Resumable (frames already present are not encoded or uploaded again), uploads in parallel with retries,
and a contact-sheet preview with timestamps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from threading import BoundedSemaphore
from typing import Any

import numpy as np

from odshared.core import storage
from odshared.core.errors import InputDataError, OdError, StorageError
from odshared.core.log import log_event
from odshared.data.contact_sheet import encode_png, evenly, grid
from odshared.data.video_io import local_video, open_capture

logger = logging.getLogger(__name__)


@dataclass
class ExtractSummary:
    video: str
    out: str
    frames_in_video: int
    selected: int
    written: int
    skipped_existing: int
    preview: str | None
    frames: list[str] = field(default_factory=list)  # the selected frames' URIs, in frame order

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "frames"}


def frame_name(stem: str, index: int) -> str:
    return f"{stem}_{index:06d}.jpg"


def selector(every: int | None, fps: float | None, video_fps: float) -> Callable[[int], bool]:
    """A predicate on the frame index: every Nth frame, or about ``fps`` frames per second of video."""
    if every is not None and fps is not None:
        raise OdError("give --every or --fps, not both")
    if fps is not None:
        if fps <= 0:
            raise OdError(f"--fps must be positive, got {fps}")
        rate = video_fps if video_fps > 0 else 30.0
        return lambda i: int(i * fps / rate) != int((i - 1) * fps / rate) or i == 0
    step = 1 if every is None else every
    if step < 1:
        raise OdError(f"--every must be at least 1, got {step}")
    return lambda i: i % step == 0


def _put_with_retries(uri: str, data: bytes, attempts: int = 4) -> None:
    for attempt in range(1, attempts + 1):
        try:
            storage.write_bytes(uri, data, "image/jpeg")
            return
        except StorageError as exc:
            transient = not any(word in str(exc) for word in ("does not exist", "access denied"))
            if attempt == attempts or not transient:
                raise
            log_event(logger, "frames.upload_retry", level=logging.WARNING, uri=uri, attempt=attempt, error=str(exc))
            time.sleep(0.2 * 2**attempt)


def extract_frames(
    video: str,
    out: str,
    every: int | None = None,
    fps: float | None = None,
    preview: str | None = None,
    quality: int = 92,
    workers: int = 8,
    preview_count: int = 24,
    on_frame: Callable[[], None] | None = None,
    workdir: str | None = None,
) -> ExtractSummary:
    """Decode ``video`` once and write the selected frames under ``out``. ``on_frame`` is called per decoded frame
    (a progress bar; a deadline that raises to stop); ``workdir`` is where an s3:// video is downloaded."""

    storage.check_bucket(out)
    with local_video(video, workdir) as path:
        return _extract(video, str(path), out, every, fps, preview, quality, workers, preview_count, on_frame)


def _extract(
    video: str,
    path: str,
    out: str,
    every: int | None,
    fps: float | None,
    preview: str | None,
    quality: int,
    workers: int,
    preview_count: int,
    on_frame: Callable[[], None] | None,
) -> ExtractSummary:
    import cv2

    capture = open_capture(path)
    stem = Path(storage.basename(video)).stem
    video_fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    keep = selector(every, fps, video_fps)
    existing = storage.list_names(out)
    written = skipped = selected = index = 0
    chosen: list[str] = []
    thumbs: list[tuple[int, np.ndarray]] = []
    in_flight = BoundedSemaphore(workers * 4)  # bounds memory: encoded frames waiting for upload
    futures: list[Future[None]] = []

    def upload(uri: str, data: bytes) -> None:
        try:
            _put_with_retries(uri, data)
        finally:
            in_flight.release()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        while True:
            if not capture.grab():
                break
            if on_frame:
                on_frame()
            if keep(index):
                selected += 1
                name = frame_name(stem, index)
                chosen.append(storage.join(out, name))
                need_frame = name not in existing or preview
                frame = capture.retrieve()[1] if need_frame else None
                if need_frame and frame is None:
                    log_event(logger, "frames.corrupt_frame", level=logging.WARNING, video=video, frame=index)
                elif name in existing:
                    skipped += 1
                elif frame is not None:
                    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
                    if not ok:
                        raise InputDataError(f"{video}: frame {index} could not be encoded as JPEG")
                    in_flight.acquire()
                    futures.append(pool.submit(upload, storage.join(out, name), data.tobytes()))
                    written += 1
                if frame is not None and preview:
                    thumbs.append((index, cv2.resize(frame, (240, max(1, 240 * frame.shape[0] // frame.shape[1])))))
                    if len(thumbs) > preview_count * 4:
                        thumbs = thumbs[::2]  # keep memory bounded for long videos
            index += 1
        for future in futures:
            future.result()
    capture.release()
    if index == 0:
        raise InputDataError(f"{video}: no frame could be decoded (empty or corrupt video)")
    preview_uri = None
    if preview:
        shown = evenly(thumbs, preview_count)
        rate = video_fps if video_fps > 0 else 30.0
        sheet = grid([t for _, t in shown], [f"t={i / rate:.1f}s #{i:06d}" for i, _ in shown])
        storage.write_bytes(preview, encode_png(sheet), "image/png")
        preview_uri = preview
    summary = ExtractSummary(video, out, index, selected, written, skipped, preview_uri, chosen)
    log_event(logger, "extract_frames.done", **summary.to_dict())
    return summary
