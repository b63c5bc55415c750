"""Camera arguments for OpenCV (the rest of video opening lives in odshared.data.video_io, shared with the Lambdas)."""

from __future__ import annotations


def source_arg(value: str) -> int | str:
    """A camera index stays an int for OpenCV; anything else is a path or URL."""
    return int(value) if value.isdigit() else value
