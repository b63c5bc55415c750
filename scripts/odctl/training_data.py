"""Training data for the local trainer: augmented manifests -> cached images, augmented batches, SSD labels.

Images are decoded once and cached, stretched to a square a little larger than the network input, so each
epoch's augmentation (random crop, horizontal flip, colour jitter) is cheap numpy work.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from odshared.core import storage
from odshared.core.errors import InputDataError
from odshared.core.jsonl import check_invalid, parse_manifest
from odshared.data.groundtruth import LabeledImage, parse_output_line
from odshared.model.evaluation import normalized_boxes

from .progress import bar

logger = logging.getLogger(__name__)
CACHE_SCALE = 1.2


@dataclass
class Sample:
    image: np.ndarray  # RGB uint8, (C, C, 3) with C = cache size
    boxes: np.ndarray  # (K, 4) normalised xmin, ymin, xmax, ymax
    classes: np.ndarray  # (K,)
    source: str


def read_training_images(manifest: str, label_attribute: str, skip_invalid: bool = False) -> list[LabeledImage]:
    """The images and boxes of one labeled manifest (bad lines stop the run unless skipped)."""
    valid, invalid = parse_manifest(manifest, lambda obj: parse_output_line(obj, label_attribute))
    check_invalid(invalid, skip_invalid)
    return [image for _, _, _, image in valid]


def load_samples(
    labeled: Sequence[LabeledImage], image_size: int, images: str | None = None, desc: str = "load"
) -> list[Sample]:
    import cv2

    cache = int(round(image_size * CACHE_SCALE))
    samples = []
    with bar(len(labeled), desc, "image") as pb:
        for item in labeled:
            uri = storage.relocated(item.source_ref, images)
            data = storage.read_bytes(uri)
            bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if bgr is None:
                raise InputDataError(f"{uri}: not a readable image")
            rgb = cv2.cvtColor(cv2.resize(bgr, (cache, cache), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
            boxes = normalized_boxes(item)
            classes = np.array([b.class_id for b in item.boxes], np.float32)
            samples.append(Sample(rgb, boxes, classes, uri))
            pb.update()
    return samples


def _jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast and saturation, each within +-25%, in float then back to uint8 range."""
    out = image.astype(np.float32)
    out *= rng.uniform(0.75, 1.25)
    mean = out.mean()
    out = (out - mean) * rng.uniform(0.75, 1.25) + mean
    grey = out.mean(axis=2, keepdims=True)
    out = (out - grey) * rng.uniform(0.75, 1.25) + grey
    return np.clip(out, 0, 255)


def augment(sample: Sample, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random crop (scale 0.7-1 per side, boxes kept when their centre stays inside), flip, colour jitter."""
    import cv2

    cache = sample.image.shape[0]
    w, h = rng.uniform(0.7, 1.0, size=2)
    x0, y0 = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
    px0, py0 = int(x0 * cache), int(y0 * cache)
    px1, py1 = max(px0 + 1, int((x0 + w) * cache)), max(py0 + 1, int((y0 + h) * cache))
    crop = cv2.resize(sample.image[py0:py1, px0:px1], (size, size), interpolation=cv2.INTER_LINEAR)
    boxes, classes = sample.boxes.copy(), sample.classes.copy()
    if len(boxes):
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        inside = (cx > x0) & (cx < x0 + w) & (cy > y0) & (cy < y0 + h)
        boxes, classes = boxes[inside], classes[inside]
        boxes[:, [0, 2]] = np.clip((boxes[:, [0, 2]] - x0) / w, 0, 1)
        boxes[:, [1, 3]] = np.clip((boxes[:, [1, 3]] - y0) / h, 0, 1)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
        if len(boxes):
            boxes[:, [0, 2]] = 1 - boxes[:, [2, 0]]
    return _jitter(crop, rng), boxes, classes


def plain(sample: Sample, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The whole image, as inference sees it."""
    import cv2

    image = cv2.resize(sample.image, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    return image, sample.boxes, sample.classes


def batches(
    samples: Sequence[Sample], batch_size: int, size: int, max_objects: int, train: bool, rng: np.random.Generator
) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
    """(data (B,3,S,S) float32, label (B,M,5) [cls, xmin, ymin, xmax, ymax] padded with -1, real count)."""
    order = rng.permutation(len(samples)) if train else np.arange(len(samples))
    for start in range(0, len(order), batch_size):
        chosen = list(order[start : start + batch_size])
        real = len(chosen)
        while len(chosen) < batch_size:  # wrap around so every batch is full
            chosen.append(order[(start + len(chosen)) % len(order)])
        data = np.empty((batch_size, 3, size, size), np.float32)
        label = np.full((batch_size, max_objects, 5), -1.0, np.float32)
        for row, index in enumerate(chosen):
            image, boxes, classes = augment(samples[index], size, rng) if train else plain(samples[index], size)
            data[row] = image.transpose(2, 0, 1)
            count = min(len(boxes), max_objects)
            label[row, :count, 0] = classes[:count]
            label[row, :count, 1:] = boxes[:count]
        yield data, label, real
