"""Opening video files with OpenCV: local paths and s3:// objects (fetched first), cameras and stream URLs."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from odshared.core import storage
from odshared.core.errors import InputDataError


def open_capture(source: int | str) -> Any:
    import cv2

    if isinstance(source, str) and not source.startswith(("rtsp://", "http://", "https://")):
        if not Path(source).exists():
            raise InputDataError(f"{source}: no such video file")
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        capture.release()
        raise InputDataError(
            f"{source}: cannot be opened as a video (unreadable file, unsupported codec or unreachable camera)"
        )
    return capture


def local_video(uri: str, workdir: str | None = None) -> Path:
    """A local path for a video given as a path or an s3:// URI."""
    if not storage.is_s3(uri):
        return Path(uri)
    folder = Path(workdir or tempfile.mkdtemp(prefix="odctl-video-"))
    return storage.download_file(uri, folder / storage.basename(uri))
