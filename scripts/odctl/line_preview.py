"""Counting lines and zones drawn on one frame of the camera's own picture, so a user sees where they fall (and
which way is "in") before a single crossing is counted."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from odedge.counting import Line, image_direction, parse_lines, parse_zones
from odedge.errors import ConfigError
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


def _draw_line(image: np.ndarray, line: Line) -> None:
    """The line, its name, and an arrow across its middle pointing the way that counts as "in" (the side the
    device's counter calls in: ``Line.side`` +1 for the line's own left-to-right), named in the image's words."""
    import cv2

    height, width = image.shape[:2]
    (ax, ay), (bx, by) = _pixels([list(line.start), list(line.end)], width, height)
    cv2.line(image, (ax, ay), (bx, by), LINE_COLOUR, 3, cv2.LINE_AA)
    dx, dy = bx - ax, by - ay
    length = max(1.0, float(np.hypot(dx, dy)))
    sign = 1 if line.inward == "left-to-right" else -1  # the line's own right side is +1
    nx, ny = sign * dy / length, -sign * dx / length
    mx, my = (ax + bx) // 2, (ay + by) // 2
    reach = 0.08 * min(width, height)
    tail = (int(mx - nx * reach), int(my - ny * reach))
    head = (int(mx + nx * reach), int(my + ny * reach))
    cv2.arrowedLine(image, tail, head, LINE_COLOUR, 3, cv2.LINE_AA, tipLength=0.35)
    label = f"{line.name}: in ({image_direction(line.start, line.end, line.inward)})"
    scale, thickness = 0.6, 2
    (text_w, text_h), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x = min(max(0, head[0] + 6), max(0, width - text_w))  # kept inside the picture
    y = min(max(text_h, head[1]), height - 2)
    cv2.putText(image, label, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(image, label, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT_COLOUR, thickness, cv2.LINE_AA)


def _draw_zone(image: np.ndarray, zone: dict[str, Any]) -> None:
    import cv2

    height, width = image.shape[:2]
    polygon = _pixels(zone["points"], width, height)
    overlay = image.copy()
    cv2.fillPoly(overlay, [polygon], ZONE_COLOUR)
    cv2.addWeighted(overlay, 0.25, image, 0.75, 0, dst=image)
    cv2.polylines(image, [polygon], True, ZONE_COLOUR, 2, cv2.LINE_AA)
    x, y = polygon.min(axis=0)
    at = (int(x) + 6, int(y) + 22)
    cv2.putText(image, zone["name"], at, cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 4, cv2.LINE_AA)  # an outline
    cv2.putText(image, zone["name"], at, cv2.FONT_HERSHEY_SIMPLEX, 0.6, TEXT_COLOUR, 2, cv2.LINE_AA)


def preview_lines(
    source: str, lines: list[dict[str, Any]], zones: list[dict[str, Any]], out: str, frame: int = 0
) -> dict[str, Any]:
    """Draw the lines and zones on the frame and write ``out`` (PNG or JPEG); nothing is written on an error."""
    import cv2

    if not lines and not zones:
        raise OdError("preview-lines: give at least one --line or --zone to draw")
    if Path(out).suffix.lower() not in IMAGE_SUFFIXES:
        raise OdError(f"--out {out}: an image file name (.png or .jpg)")
    try:  # the device's own reading of them: the arrow is the side its counter calls in
        parsed = parse_lines(json.dumps(lines), notify=False)
        parse_zones(json.dumps(zones))
    except ConfigError as exc:
        raise OdError(f"--line/--zone: {exc}") from None
    image = read_frame(source, frame)
    for zone in zones:
        _draw_zone(image, zone)
    for line in parsed:
        _draw_line(image, line)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(out, image):
        raise OdError(f"--out {out}: OpenCV could not write it")
    height, width = image.shape[:2]
    log_event(logger, "preview_lines.done", out=out, lines=len(lines), zones=len(zones), frame=frame)
    return {"out": out, "frame": frame, "size": [width, height], "lines": lines, "zones": zones}
