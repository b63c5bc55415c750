"""Generated videos of coloured boxes with their exact per-frame boxes: the demo's and the tests' data.

A scene has a textured background, boxes that enter, move, bounce, change scale and leave, a pole that
passes in front of them, a slow lighting drift and sensor noise. The same seed gives the same frames. Every class
appears, as often as the others; each class has a colour of its own (``class_colours``), so a model trained on the
video can tell the classes apart. The crossings scenario moves the boxes across the frame's middle in the direction
asked (``CROSSING_DIRECTIONS``); ``crossing_line`` is the counting line that fits it.
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import logging
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from odshared.core.log import log_event

from .progress import bar

logger = logging.getLogger(__name__)

# BGR colours for class names that name a colour; other names get a colour from their hash (class_colour, for
# drawing a label anywhere) or one far from the others' in their video (class_colours)
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
Colour = tuple[int, int, int]
# the crossings scenario's directions: a move across the frame's middle, both ways or one way only
CROSSING_DIRECTIONS = (
    "left-right",
    "top-bottom",
    "left-to-right",
    "right-to-left",
    "top-to-bottom",
    "bottom-to-top",
)


def _named_colour(name: str) -> Colour | None:
    words = re.split(r"[\s_\-]+", name.lower())
    return next((colour for word, colour in NAMED_COLOURS.items() if word in words), None)


def class_colour(name: str) -> Colour:
    """A colour for one class name on its own (labels drawn on previews and reports): its colour word, else one
    from its hash. Two names may hash alike: a video's boxes take ``class_colours`` instead."""
    named = _named_colour(name)
    if named is not None:
        return named
    digest = hashlib.sha256(name.encode()).digest()
    return (64 + digest[0] % 160, 64 + digest[1] % 160, 64 + digest[2] % 160)


def _hue(colour: Colour) -> float | None:
    """The hue in degrees of a BGR colour, None for a grey (white, black): greys take no hue from the others."""
    b, g, r = (c / 255 for c in colour)
    hue, saturation, _ = colorsys.rgb_to_hsv(r, g, b)
    return hue * 360 if saturation > 0.25 else None


def _farthest_hue(used: list[float]) -> float:
    """The whole-degree hue farthest from every hue in ``used`` (the lowest of equals: deterministic)."""
    if not used:
        return 0.0

    def distance(hue: int) -> float:
        return min(min(abs(hue - u) % 360, 360 - abs(hue - u) % 360) for u in used)

    return float(max(range(360), key=lambda hue: (distance(hue), -hue)))


def class_colours(classes: Sequence[str]) -> list[Colour]:
    """One colour per class, all different: a colour word keeps its colour (a blue box is blue; a second blue
    class a darker blue), and each other class takes the hue farthest from those already taken, in the order of
    ``classes`` (hashed colours made two classes the same green, and the model trained on them mixed them up).
    The same list gives the same colours; give every video of one data set the same class list."""
    colours: list[Colour | None] = [_named_colour(name) for name in classes]
    seen: dict[Colour, int] = {}
    for index, colour in enumerate(colours):
        if colour is not None:
            shade = 0.6 ** seen.get(colour, 0)
            seen[colour] = seen.get(colour, 0) + 1
            colours[index] = (int(colour[0] * shade), int(colour[1] * shade), int(colour[2] * shade))
    used = [h for h in (_hue(c) for c in colours if c is not None) if h is not None]
    hues: dict[int, float] = {}
    for index, colour in enumerate(colours):
        if colour is None:
            hues[index] = _farthest_hue(used)
            used.append(hues[index])
    crowded = len(used) > 8  # hues closer than 45 degrees apart: neighbours differ in brightness too
    by_hue = sorted(hues, key=lambda index: hues[index])
    for index, hue in hues.items():
        value = 0.55 if crowded and by_hue.index(index) % 2 else 0.9
        r, g, b = colorsys.hsv_to_rgb(hue / 360, 0.75, value)
        colours[index] = (round(b * 255), round(g * 255), round(r * 255))
    return [c for c in colours if c is not None]


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
    scenario: str = "random"  # random: boxes bounce around; crossings: boxes cross the frame's middle
    direction: str = "left-right"  # crossings: which way (CROSSING_DIRECTIONS); left-right is both ways across x


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


# one round of the crossings scenario in the left-right frame of reference (x across the line, y along it):
# (start, end, waypoints as (fraction of the span, x fraction, y fraction), goes back the other way)
_ROUND: tuple[tuple[float, float, tuple[tuple[float, float, float], ...], bool], ...] = (
    (0.05, 0.35, ((0, 0.12, 0.35), (1, 0.88, 0.4)), False),  # across
    (0.10, 0.40, ((0, 0.12, 0.62), (1, 0.88, 0.58)), True),  # across the other way, passing the first
    (0.40, 0.75, ((0, 0.15, 0.5), (0.35, 0.5, 0.5), (0.65, 0.5, 0.5), (1, 0.85, 0.5)), False),  # stops on the line
    (0.70, 0.98, ((0, 0.2, 0.3), (0.5, 0.75, 0.32), (1, 0.15, 0.35)), False),  # crosses and turns back
)
MIN_FRAMES_PER_ROUND = 40


def _rounds(classes: int) -> tuple[int, int]:
    """(boxes, rounds): at least one round of four; as many boxes of each class, each class at least once."""
    boxes = classes * math.ceil(4 / classes)
    return boxes, math.ceil(boxes / 4)


def _orient(x: float, y: float, direction: str) -> tuple[float, float]:
    """A point of the left-right plan in the frame of ``direction``: mirrored for a move right to left or bottom
    to top, x and y swapped for a move across a horizontal line."""
    if direction in ("right-to-left", "bottom-to-top"):
        x = 1 - x
    return (y, x) if direction in ("top-bottom", "top-to-bottom", "bottom-to-top") else (x, y)


def _crossing_tracks(rng: np.random.Generator, spec: SynthSpec) -> list[_Track]:
    """Boxes that cross the middle: both ways, one passing another, one that stops on the line and goes on, one
    that turns back after crossing; the moving pole hides some of them on the way. Rounds of four follow each
    other until every class has had as many boxes as the others (two classes: one round, the demo's video)."""
    n, w, h = spec.frames, spec.width, spec.height
    count, rounds = _rounds(len(spec.classes))
    tracks = []
    for index in range(count):
        start, end, points, back = _ROUND[index % 4]
        first, last = int((index // 4 + start) / rounds * n), int((index // 4 + end) / rounds * n)
        if back and spec.direction in ("left-right", "top-bottom"):
            points = tuple((f, 1 - x, y) for f, x, y in points)  # both ways: this one goes the other way
        jitter = rng.uniform(-0.04, 0.04, size=(len(points), 2))
        placed = [(f, *_orient(x, y, spec.direction)) for f, x, y in points]
        waypoints = tuple(
            (f * (last - first), (x + dx) * w, (y + dy) * h) for (f, x, y), (dx, dy) in zip(placed, jitter, strict=True)
        )
        size = rng.uniform(0.2, 0.3) * h
        tracks.append(
            _Track(
                class_id=index % len(spec.classes),
                start=first,
                end=last,
                x=0,
                y=0,
                vx=0,
                vy=0,
                size=size,
                aspect=rng.uniform(0.9, 1.3),
                scale_period=rng.uniform(60, 90),
                phase=0.0,
                waypoints=waypoints,
            )
        )
    return tracks


def crossing_line(direction: str) -> str:
    """The counting line (``--line`` text) across the middle that a crossings video of ``direction`` crosses,
    its way in the scenario's first way."""
    if direction in ("left-right", "left-to-right", "right-to-left"):
        way = "left-to-right" if direction == "left-right" else direction
        return f"middle:0.5,0,0.5,1:{way}"
    way = "top-to-bottom" if direction == "top-bottom" else direction
    return f"middle:0,0.5,1,0.5:{way}"


def check_spec(spec: SynthSpec) -> None:
    """Refuse what would make a video that says something else than asked (one line, the option at fault)."""
    if spec.scenario not in ("random", "crossings"):
        raise ValueError(f"--scenario {spec.scenario!r}: random or crossings")
    if spec.direction not in CROSSING_DIRECTIONS:
        raise ValueError(f"--direction {spec.direction!r}: one of {', '.join(CROSSING_DIRECTIONS)}")
    if spec.scenario == "random" and spec.direction != "left-right":
        raise ValueError(f"--direction {spec.direction}: applies to --scenario crossings (random boxes bounce about)")
    if spec.scenario == "crossings":
        rounds = _rounds(len(spec.classes))[1]
        if spec.frames < MIN_FRAMES_PER_ROUND * rounds:
            raise ValueError(
                f"--frames {spec.frames}: {len(spec.classes)} classes crossing need at least "
                f"{MIN_FRAMES_PER_ROUND * rounds} frames ({MIN_FRAMES_PER_ROUND} per round of four boxes)"
            )


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

    check_spec(spec)
    rng = np.random.default_rng(spec.seed)
    background = _background(rng, spec.width, spec.height)
    tracks = _crossing_tracks(rng, spec) if spec.scenario == "crossings" else _tracks(rng, spec)
    colours = class_colours(spec.classes)
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

    check_spec(spec)  # before anything is written
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
