"""A box drawn on a frame with its label: the one drawer of the device's pictures (annotated snapshots, evidence) and
of the operator's (odctl's report strip), so a box reads the same way wherever a person looks at it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Colour = tuple[int, int, int]  # BGR, as OpenCV draws


@dataclass(frozen=True)
class BoxStyle:
    """How a box and its label look. ``outline``: a black rim that many pixels wider than the box, drawn under it so
    the box reads on any background (0: none). The label stands ``pad`` pixels right of the box's left edge and
    ``lift`` above its top, its baseline never above ``top`` (a box at the frame's top edge keeps its label inside);
    ``text_colour`` None draws it in the box's colour; ``smooth``: anti-aliased text."""

    thickness: int = 2
    outline: int = 0
    scale: float = 0.5
    text_colour: Colour | None = None
    text_thickness: int = 1
    pad: int = 2
    lift: int = 4
    top: int = 12
    smooth: bool = True


def draw_box(
    image: np.ndarray, box: Sequence[int], colour: Colour, label: str = "", style: BoxStyle = BoxStyle()
) -> None:
    """Draw ``box`` (x1, y1, x2, y2 in the image's pixels) on ``image`` in place, with ``label`` above it when given."""
    import cv2

    x1, y1, x2, y2 = box
    if style.outline:
        cv2.rectangle(image, (x1, y1), (x2, y2), (0, 0, 0), style.thickness + style.outline)
    cv2.rectangle(image, (x1, y1), (x2, y2), colour, style.thickness)
    if label:
        cv2.putText(
            image,
            label,
            (x1 + style.pad, max(style.top, y1 - style.lift)),
            cv2.FONT_HERSHEY_SIMPLEX,
            style.scale,
            style.text_colour or colour,
            style.text_thickness,
            cv2.LINE_AA if style.smooth else cv2.LINE_8,
        )
