"""Generated videos of coloured boxes with their exact per-frame boxes: the demo's and the tests' data.

A scene has a textured background, boxes that enter, move, bounce, change scale and leave, a pole that
passes in front of them, a slow lighting drift and sensor noise. The same seed gives the same frames.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from odshared.core.log import log_event

from .progress import bar

logger = logging.getLogger(__name__)

# BGR colours for class names that name a colour; other names get a colour from their hash.
NAMED_COLOURS = {
    "blue": (200, 90, 30),
    "yellow": (40, 205, 235),
    "red": (40, 40, 210),
    "green": (60, 170, 50),
    "orange": (30, 130, 245),
    "purple": (150, 50, 130),
    "white": (235, 235, 235),
    "black": (25, 25, 25),
}
MIN_VISIBLE = 0.5  # a box less than half visible (occluded or out of frame) is not labelled


def class_colour(name: str) -> tuple[int, int, int]:
    for word, colour in NAMED_COLOURS.items():
        if word in name.lower().split():
            return colour
    digest = hashlib.sha256(name.encode()).digest()
    return (64 + digest[0] % 160, 64 + digest[1] % 160, 64 + digest[2] % 160)


@dataclass
class _Track:
    class_id: int
    start: int
    end: int
    x: float
    y: float
    vx: float
    vy: float
    size: float
    aspect: float
    scale_period: float
    phase: float
    # (frame offset, x, y) waypoints: the box moves straight between them (the crossings scenario); else it bounces
    waypoints: tuple[tuple[float, float, float], ...] = ()

    def centre(self, t: int, width: float, height: float, w: float, h: float) -> tuple[float, float]:
        if self.waypoints:
            frames, xs, ys = zip(*self.waypoints, strict=True)
            return float(np.interp(t, frames, xs)), float(np.interp(t, frames, ys))
        # bounce off the borders (reflect the coordinate into the allowed range)
        cx = _bounce(self.x + self.vx * t, w * 0.3, width - w * 0.3)
        cy = _bounce(self.y + self.vy * t, h * 0.3, height - h * 0.3)
        return cx, cy


@dataclass(frozen=True)
class SynthSpec:
    name: str
    classes: tuple[str, ...]
    frames: int = 300
    width: int = 640
    height: int = 360
    fps: float = 10.0
    seed: int = 0
    scenario: str = "random"  # random: boxes bounce around; crossings: boxes cross the frame's vertical middle


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    import cv2

    coarse = rng.uniform(70, 170, size=(height // 24 + 2, width // 24 + 2, 1)).astype(np.float32)
    base = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)[..., None]
    tint = rng.uniform(0.85, 1.1, size=(1, 1, 3)).astype(np.float32)
    image = np.clip(base * tint, 0, 255).astype(np.uint8)
    for _ in range(40):  # floor texture: faint strokes and patches
        p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        p2 = (p1[0] + int(rng.integers(-80, 80)), p1[1] + int(rng.integers(-40, 40)))
        shade = int(rng.integers(50, 200))
        cv2.line(image, p1, p2, (shade, shade, shade), int(rng.integers(1, 4)))
    grain = rng.normal(0, 6, size=image.shape)
    return np.clip(image + grain, 0, 255).astype(np.uint8)


def _tracks(rng: np.random.Generator, spec: SynthSpec) -> list[_Track]:
    """Per class, two appearances; the first and a middle stretch of frames stay empty."""
    n, tracks = spec.frames, []
    lead = max(1, n // 20)
    for class_id in range(len(spec.classes)):
        cut = int(rng.uniform(0.45, 0.55) * n)
        for start, end in ((lead + int(rng.integers(0, max(1, n // 20))), cut), (cut + max(1, n // 15), n)):
            size = rng.uniform(0.22, 0.38) * spec.height
            tracks.append(
                _Track(
                    class_id=class_id,
                    start=start,
                    end=end,
                    x=rng.uniform(0.15, 0.85) * spec.width,
                    y=rng.uniform(0.25, 0.75) * spec.height,
                    vx=rng.uniform(-1, 1) * spec.width / 60,
                    vy=rng.uniform(-1, 1) * spec.height / 80,
                    size=size,
                    aspect=rng.uniform(0.8, 1.5),
                    scale_period=rng.uniform(40, 90),
                    phase=rng.uniform(0, 2 * np.pi),
                )
            )
    return tracks


def _crossing_tracks(rng: np.random.Generator, spec: SynthSpec) -> list[_Track]:
    """Boxes that cross the vertical middle: left to right, right to left passing another, one that stops on the
    line and goes on, one that turns back after crossing; the moving pole hides some of them on the way."""
    n, w, h = spec.frames, spec.width, spec.height
    classes = len(spec.classes)
    plans = [  # (class, start, end, waypoints as (fraction of the span, x fraction, y fraction))
        (0, 0.05, 0.35, ((0, 0.12, 0.35), (1, 0.88, 0.4))),
        (1 % classes, 0.10, 0.40, ((0, 0.88, 0.62), (1, 0.12, 0.58))),
        (0, 0.40, 0.75, ((0, 0.15, 0.5), (0.35, 0.5, 0.5), (0.65, 0.5, 0.5), (1, 0.85, 0.5))),
        (1 % classes, 0.70, 0.98, ((0, 0.2, 0.3), (0.5, 0.75, 0.32), (1, 0.15, 0.35))),
    ]
    tracks = []
    for class_id, start, end, points in plans:
        first, last = int(start * n), int(end * n)
        jitter = rng.uniform(-0.04, 0.04, size=(len(points), 2))
        waypoints = tuple(
            (f * (last - first), (x + dx) * w, (y + dy) * h) for (f, x, y), (dx, dy) in zip(points, jitter, strict=True)
        )
        size = rng.uniform(0.2, 0.3) * h
        tracks.append(
            _Track(class_id, first, last, 0, 0, 0, 0, size, rng.uniform(0.9, 1.3), rng.uniform(60, 90), 0.0, waypoints)
        )
    return tracks


def _draw_box(image: np.ndarray, x0: int, y0: int, x1: int, y1: int, colour: tuple[int, int, int]) -> None:
    import cv2

    dark = tuple(int(c * 0.55) for c in colour)
    light = tuple(min(255, int(c * 1.15 + 20)) for c in colour)
    cv2.rectangle(image, (x0, y0), (x1, y1), colour, -1)
    lid = y0 + max(2, (y1 - y0) // 5)
    cv2.rectangle(image, (x0, y0), (x1, lid), light, -1)  # the lid catches the light
    cv2.line(image, (x0, lid), (x1, lid), dark, max(1, (y1 - y0) // 40))
    cv2.rectangle(image, (x0, y0), (x1, y1), dark, max(1, (y1 - y0) // 30))
    cx = (x0 + x1) // 2
    cv2.rectangle(
        image, (cx - (x1 - x0) // 8, lid + (y1 - y0) // 8), (cx + (x1 - x0) // 8, lid + (y1 - y0) // 5), dark, -1
    )  # a handle


def render(spec: SynthSpec) -> Iterator[tuple[np.ndarray, list[dict]]]:
    """Yield (BGR frame, boxes) for each frame; boxes in pixels, clipped to the frame."""
    import cv2

    rng = np.random.default_rng(spec.seed)
    background = _background(rng, spec.width, spec.height)
    tracks = _crossing_tracks(rng, spec) if spec.scenario == "crossings" else _tracks(rng, spec)
    colours = [class_colour(name) for name in spec.classes]
    pole_w = spec.width // 14
    pole_speed = spec.width / max(spec.frames, 1) * 1.5
    for index in range(spec.frames):
        frame = background.copy()
        placed = []
        for number, track in enumerate(tracks, start=1):
            if not track.start <= index < track.end:
                continue
            t = index - track.start
            scale = 1.0 + 0.3 * np.sin(2 * np.pi * t / track.scale_period + track.phase)
            h = track.size * scale
            w = h * track.aspect
            cx, cy = track.centre(t, spec.width, spec.height, w, h)
            x0, y0, x1, y1 = int(cx - w / 2), int(cy - h / 2), int(cx + w / 2), int(cy + h / 2)
            _draw_box(frame, x0, y0, x1, y1, colours[track.class_id])
            placed.append((number, track.class_id, x0, y0, x1, y1))
        pole_x = int((index * pole_speed) % (spec.width + pole_w * 2)) - pole_w
        cv2.rectangle(frame, (pole_x, 0), (pole_x + pole_w, spec.height), (90, 95, 100), -1)
        gain = 1.0 + 0.22 * np.sin(2 * np.pi * index / max(60, spec.frames / 2))
        noisy = frame.astype(np.float32) * gain + rng.normal(0, 3.0, size=frame.shape)
        frame = np.clip(noisy, 0, 255).astype(np.uint8)
        boxes = []
        for number, class_id, x0, y0, x1, y1 in placed:
            full = (x1 - x0) * (y1 - y0)
            cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(spec.width, x1), min(spec.height, y1)
            if cx1 <= cx0 or cy1 <= cy0:
                continue
            hidden = max(0, min(cx1, pole_x + pole_w) - max(cx0, pole_x)) * (cy1 - cy0)
            if ((cx1 - cx0) * (cy1 - cy0) - hidden) / full < MIN_VISIBLE:
                continue
            boxes.append(
                {
                    "class": spec.classes[class_id],
                    "class_id": class_id,
                    "left": cx0,
                    "top": cy0,
                    "width": cx1 - cx0,
                    "height": cy1 - cy0,
                    "track_id": number,  # the object's identity across frames
                }
            )
        yield frame, boxes


def _bounce(value: float, low: float, high: float) -> float:
    span = high - low
    if span <= 0:
        return (low + high) / 2
    offset = (value - low) % (2 * span)
    return low + (offset if offset <= span else 2 * span - offset)


def boxes_path(video: str | Path) -> Path:
    video = Path(video)
    return video.with_name(video.stem + ".boxes.jsonl")


def write_video(spec: SynthSpec, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``<name>.mp4`` and ``<name>.boxes.jsonl`` (one line per frame) under ``out_dir``."""
    import cv2

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    video = out / f"{spec.name}.mp4"
    labels = boxes_path(video)
    writer = cv2.VideoWriter(
        str(video) + ".part.mp4", cv2.VideoWriter.fourcc(*"mp4v"), spec.fps, (spec.width, spec.height)
    )
    if not writer.isOpened():
        raise RuntimeError(f"{video}: OpenCV cannot write mp4 here (no mp4v encoder)")
    tmp_labels = labels.with_name(labels.name + ".part")
    with open(tmp_labels, "w", encoding="utf-8") as handle, bar(spec.frames, f"render {spec.name}", "frame") as pb:
        for index, (frame, boxes) in enumerate(render(spec)):
            writer.write(frame)
            handle.write(
                json.dumps(
                    {
                        "frame": index,
                        "time": round(index / spec.fps, 3),
                        "width": spec.width,
                        "height": spec.height,
                        "boxes": boxes,
                    }
                )
                + "\n"
            )
            pb.update()
    writer.release()
    Path(str(video) + ".part.mp4").replace(video)
    tmp_labels.replace(labels)
    log_event(
        logger,
        "synth_video.written",
        video=str(video),
        boxes=str(labels),
        frames=spec.frames,
        classes=list(spec.classes),
        seed=spec.seed,
    )
    return video, labels


def read_boxes(path: str | Path) -> dict[int, dict]:
    """The per-frame records of a ``.boxes.jsonl`` file, by frame index."""
    records = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            records[int(record["frame"])] = record
    return records


def parse_classes(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise ValueError("--classes needs at least one class name")
    if len(set(names)) != len(names):
        raise ValueError(f"--classes has duplicates: {text!r}")
    return names


def class_names(values: Sequence[str]) -> tuple[str, ...]:
    return parse_classes(",".join(values))
