"""Opening video sources with OpenCV: camera indices, files, URLs and s3:// objects (fetched first)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from odshared import storage
from odshared.errors import InputDataError


def source_arg(value: str) -> int | str:
    """A camera index stays an int for OpenCV; anything else is a path or URL."""
    return int(value) if value.isdigit() else value


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
