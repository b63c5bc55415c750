"""SSD anchors: what MultiBoxPrior generates, how many per cell, and the variances that decode boxes against them.

The one home for these rules: the graphs built for training (odmxnet.ssd_model), the shape inference and the
ONNX export (which folds the anchors into constants) all take them from here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# MultiBoxTarget/MultiBoxDetection's default (x, y, w, h) variances, as SageMaker's graphs use them
VARIANCES = (0.1, 0.1, 0.2, 0.2)


def anchors_per_cell(sizes: Sequence[float], ratios: Sequence[float]) -> int:
    """MultiBoxPrior's count: every size at the first ratio, then the first size at every other ratio."""
    return len(sizes) - 1 + len(ratios)


def multibox_prior(
    sizes: Sequence[float],
    ratios: Sequence[float],
    height: int,
    width: int,
    steps: Sequence[float] = (-1.0, -1.0),
    offsets: Sequence[float] = (0.5, 0.5),
    clip: bool = False,
) -> np.ndarray:
    """MultiBoxPrior's anchors, (1, height*width*anchors, 4) corners, with MXNet's float32 arithmetic and order."""
    f32 = np.float32
    sizes32 = [f32(s) for s in sizes]
    step_y = f32(steps[0]) if steps[0] > 0 else f32(1.0) / f32(height)
    step_x = f32(steps[1]) if steps[1] > 0 else f32(1.0) / f32(width)
    centers_y = (np.arange(height, dtype=f32) + f32(offsets[0])) * step_y
    centers_x = (np.arange(width, dtype=f32) + f32(offsets[1])) * step_x
    half = []  # (half-width, half-height) per anchor of a cell, in MXNet's order
    for size in sizes32:
        half.append((size * f32(height) / f32(width) / f32(2), size / f32(2)))
    for ratio in ratios[1:]:
        root = np.sqrt(f32(ratio), dtype=f32)
        half.append((sizes32[0] * f32(height) / f32(width) * root / f32(2), sizes32[0] / root / f32(2)))
    hw = np.array([h[0] for h in half], dtype=f32)
    hh = np.array([h[1] for h in half], dtype=f32)
    cy = np.broadcast_to(centers_y[:, None, None], (height, width, len(half)))
    cx = np.broadcast_to(centers_x[None, :, None], (height, width, len(half)))
    boxes = np.stack([cx - hw, cy - hh, cx + hw, cy + hh], axis=-1).astype(f32)
    if clip:
        boxes = np.clip(boxes, 0, 1)
    return boxes.reshape(1, -1, 4)
