"""Frame -> network input, exactly as the model was trained: stretch to SxS, BGR->RGB, CHW float 0-255."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FrameMeta:
    """What postprocessing needs to map normalised boxes back to the source frame's pixels."""

    width: int
    height: int


def preprocess(frame: np.ndarray, size: int) -> tuple[np.ndarray, FrameMeta]:
    """One pass: OpenCV's blobFromImage resizes, swaps channels and lays out NCHW float32 without extra copies."""
    import cv2

    height, width = frame.shape[:2]
    blob = cv2.dnn.blobFromImage(frame, scalefactor=1.0, size=(size, size), swapRB=True, crop=False)
    return blob, FrameMeta(width, height)
