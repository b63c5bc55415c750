"""Counting lines and zones drawn on one frame of the camera's own picture, so a user sees where they fall (and
which way is "in") before a single crossing is counted."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from odshared.core.errors import OdError
from odshared.core.log import log_event

logger = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
LINE_COLOUR, ZONE_COLOUR, TEXT_COLOUR = (0, 220, 255), (255, 160, 0), (255, 255, 255)


def read_frame(source: str, index: int) -> np.ndarray:
    """Frame ``index`` of a video, an image, or the ``index``-th image of a folder (sorted by name)."""
    import cv2

    path = Path(source)
    if not path.exists():
        raise OdError(f"{source}: no such file or folder: give a video, an image or a folder of images")
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if index >= len(images):
            raise OdError(f"{source}: --frame {index} but the folder holds {len(images)} images")
        path = images[index]
    if path.suffix.lower() in IMAGE_SUFFIXES:
        image = cv2.imread(str(path))
        if image is None or (index and path == Path(source)):
            raise OdError(
                f"{path}: OpenCV cannot read this image" if image is None else f"{path}: one image, no --frame"
            )
        return image
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise OdError(f"{path}: OpenCV cannot open it as a video")
        frame = None
        for _ in range(index + 1):
            ok, frame = capture.read()
            if not ok:
                raise OdError(f"{path}: --frame {index} is past the video's end")
        assert frame is not None
        return frame
    finally:
        capture.release()


def _pixels(points: list[list[float]], width: int, height: int) -> np.ndarray:
    return np.array([[round(x * (width - 1)), round(y * (height - 1))] for x, y in points], dtype=np.int32)


def _draw_line(image: np.ndarray, line: dict[str, Any]) -> None:
    """The line, its name, and an arrow across its middle pointing the way that counts as "in"."""
    import cv2

    height, width = image.shape[:2]
    (ax, ay), (bx, by) = _pixels(line["points"], width, height)
    cv2.line(image, (ax, ay), (bx, by), LINE_COLOUR, 3, cv2.LINE_AA)
    dx, dy = bx - ax, by - ay
    length = max(1.0, float(np.hypot(dx, dy)))
    sign = 1 if line.get("in", "left-to-right") == "left-to-right" else -1  # the line's own right side is +1
    nx, ny = sign * dy / length, -sign * dx / length
    mx, my = (ax + bx) // 2, (ay + by) // 2
    reach = 0.08 * min(width, height)
    tail = (int(mx - nx * reach), int(my - ny * reach))
    head = (int(mx + nx * reach), int(my + ny * reach))
    cv2.arrowedLine(image, tail, head, LINE_COLOUR, 3, cv2.LINE_AA, tipLength=0.35)
    cv2.putText(image, f"{line['name']}: in", (head[0] + 6, head[1]), cv2.FONT_HERSHEY_SIMPLEX, 0.6, TEXT_COLOUR, 2)


def _draw_zone(image: np.ndarray, zone: dict[str, Any]) -> None:
    import cv2

    height, width = image.shape[:2]
    polygon = _pixels(zone["points"], width, height)
    overlay = image.copy()
    cv2.fillPoly(overlay, [polygon], ZONE_COLOUR)
    cv2.addWeighted(overlay, 0.25, image, 0.75, 0, dst=image)
    cv2.polylines(image, [polygon], True, ZONE_COLOUR, 2, cv2.LINE_AA)
    x, y = polygon.min(axis=0)
    cv2.putText(image, zone["name"], (int(x) + 6, int(y) + 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, TEXT_COLOUR, 2)


def preview_lines(
    source: str, lines: list[dict[str, Any]], zones: list[dict[str, Any]], out: str, frame: int = 0
) -> dict[str, Any]:
    """Draw the lines and zones on the frame and write ``out`` (PNG or JPEG); nothing is written on an error."""
    import cv2

    if not lines and not zones:
        raise OdError("preview-lines: give at least one --line or --zone to draw")
    if Path(out).suffix.lower() not in IMAGE_SUFFIXES:
        raise OdError(f"--out {out}: an image file name (.png or .jpg)")
    image = read_frame(source, frame)
    for zone in zones:
        _draw_zone(image, zone)
    for line in lines:
        _draw_line(image, line)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(out, image):
        raise OdError(f"--out {out}: OpenCV could not write it")
    height, width = image.shape[:2]
    log_event(logger, "preview_lines.done", out=out, lines=len(lines), zones=len(zones), frame=frame)
    return {"out": out, "frame": frame, "size": [width, height], "lines": lines, "zones": zones}
