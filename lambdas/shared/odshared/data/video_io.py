"""Opening video files with OpenCV: local paths and s3:// objects (fetched first), cameras and stream URLs."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def local_video(uri: str, workdir: str | None = None) -> Iterator[Path]:
    """A local path for a video given as a path or an s3:// URI; a download lives in a folder of its own under
    ``workdir`` and is removed afterwards (a warm Lambda's /tmp would otherwise fill with every video it saw)."""
    if not storage.is_s3(uri):
        yield Path(uri)
        return
    with tempfile.TemporaryDirectory(prefix="odctl-video-", dir=workdir) as folder:
        yield storage.download_file(uri, Path(folder) / storage.basename(uri))
