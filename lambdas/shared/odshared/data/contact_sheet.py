"""Contact sheets: a grid of thumbnails with captions, for previews of frames, manifests and labels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def grid(
    images: Sequence[np.ndarray], captions: Sequence[str] | None = None, columns: int = 6, thumb_width: int = 240
) -> np.ndarray:
    """Tile BGR images into one BGR image; each thumbnail keeps its aspect ratio and gets its caption."""
    import cv2

    if not images:
        blank = np.full((120, 480, 3), 255, np.uint8)
        cv2.putText(blank, "no images", (20, 70), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2)
        return blank
    captions = list(captions or [""] * len(images))
    thumbs = []
    for image in images:
        h, w = image.shape[:2]
        th = max(1, int(round(h * thumb_width / w)))
        thumbs.append(cv2.resize(image, (thumb_width, th), interpolation=cv2.INTER_AREA))
    cell_h = max(t.shape[0] for t in thumbs) + 22
    columns = max(1, min(columns, len(thumbs)))
    rows = (len(thumbs) + columns - 1) // columns
    sheet = np.full((rows * cell_h, columns * (thumb_width + 4), 3), 255, np.uint8)
    for i, (thumb, caption) in enumerate(zip(thumbs, captions, strict=True)):
        r, c = divmod(i, columns)
        y, x = r * cell_h, c * (thumb_width + 4)
        sheet[y : y + thumb.shape[0], x : x + thumb_width] = thumb
        cv2.putText(
            sheet,
            caption[:38],
            (x + 2, y + thumb.shape[0] + 15),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    return sheet


def evenly(items: Sequence[T], count: int) -> list[T]:
    """At most ``count`` items spread evenly over the sequence, first and last included."""
    if len(items) <= count:
        return list(items)
    step = (len(items) - 1) / (count - 1)
    return [items[int(round(i * step))] for i in range(count)]


def encode_png(image: np.ndarray) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return data.tobytes()


def decode(data: bytes) -> np.ndarray | None:
    import cv2

    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
