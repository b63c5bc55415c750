"""Counting what crosses lines and what stays in zones, from tracked detections.

Coordinates are fractions of the frame (0..1, origin top-left), so a line survives a change of camera resolution.
A line runs from its first point to its second. Its left and right sides are the image's left and right when the
line is seen with its first point at the top (a line from [0.5, 0] down to [0.5, 1]: ``left-to-right`` is a move
to the right of the image; a line from [0, 0.5] across to [1, 0.5]: ``left-to-right`` is a move up). Each line
names which direction is ``in``.

One object is counted once (the rule):
- a track's side of a line changes only when its centre is farther than ``band`` (4% of the frame) from the
  line: jitter on the line is no crossing (2% let a box that stopped on the line be counted out and in again by
  its detections' jitter alone);
- a crossing counts only where the centre passes between the line's two end points;
- a track is counted at most once per line and direction; the tracker keeps a track through ``max_lost`` frames
  of occlusion or absence, so an object hidden behind the pole, or stepping out and back within that window,
  keeps its track and is not counted again.

Totals per line and class are kept in a JSON file (the component's work folder) written after every crossing, and
read at start: they survive a restart, a redeployment and a new model. A line whose definition changed starts
from zero (logged, and listed in the health message's ``counts.reset``); the other lines keep their totals.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .postprocess import Detection
from .telemetry import log_event

logger = logging.getLogger(__name__)
DIRECTIONS = ("left-to-right", "right-to-left")
Point = tuple[float, float]


@dataclass(frozen=True)
class Line:
    name: str
    start: Point
    end: Point
    inward: str = "left-to-right"

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]

    def side(self, point: Point, band: float) -> int:
        """+1 right of the line, -1 left, 0 within ``band`` of it (y grows downwards, as in images)."""
        (ax, ay), (bx, by) = self.start, self.end
        dx, dy = bx - ax, by - ay
        length = (dx * dx + dy * dy) ** 0.5
        distance = ((point[0] - ax) * dy - (point[1] - ay) * dx) / length
        return 0 if abs(distance) <= band else (1 if distance > 0 else -1)

    def spans(self, point: Point) -> bool:
        """Whether the point projects onto the segment between the end points."""
        (ax, ay), (bx, by) = self.start, self.end
        dx, dy = bx - ax, by - ay
        t = ((point[0] - ax) * dx + (point[1] - ay) * dy) / (dx * dx + dy * dy)
        return 0.0 <= t <= 1.0


@dataclass(frozen=True)
class Zone:
    name: str
    polygon: tuple[Point, ...]

    def contains(self, point: Point) -> bool:
        inside, (x, y) = False, point
        for (x1, y1), (x2, y2) in zip(self.polygon, self.polygon[1:] + self.polygon[:1], strict=True):
            if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
                inside = not inside
        return inside


def _points(raw: Any, key: str, minimum: int) -> tuple[Point, ...]:
    if not isinstance(raw, list) or len(raw) < minimum:
        raise ConfigError(f"configuration {key}: needs at least {minimum} points [x, y], got {raw!r}")
    points = []
    for index, item in enumerate(raw):
        ok = isinstance(item, list | tuple) and len(item) == 2 and all(isinstance(v, int | float) for v in item)
        if not ok or not all(0.0 <= float(v) <= 1.0 for v in item):
            raise ConfigError(f"configuration {key}[{index}]: {item!r} is not [x, y] with both in [0, 1]")
        points.append((float(item[0]), float(item[1])))
    return tuple(points)


def _load(text: str, key: str) -> list[dict[str, Any]]:
    if not text.strip():
        return []
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"configuration {key}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
        raise ConfigError(f"configuration {key}: a JSON list of objects, each with a name")
    names = [i["name"] for i in items]
    if len(set(names)) != len(names):
        raise ConfigError(f"configuration {key}: names must differ, got {names}")
    return items


def parse_lines(text: str) -> tuple[Line, ...]:
    """``[{"name": "door", "points": [[0.5, 0], [0.5, 1]], "in": "left-to-right"}]``"""
    lines = []
    for index, item in enumerate(_load(text, "lines")):
        points = _points(item.get("points"), f"lines[{index}].points", 2)
        if len(points) != 2 or points[0] == points[1]:
            raise ConfigError(f"configuration lines[{index}].points: two different points, got {list(points)}")
        inward = item.get("in", "left-to-right")
        if inward not in DIRECTIONS:
            raise ConfigError(f"configuration lines[{index}].in: one of {list(DIRECTIONS)}, got {inward!r}")
        lines.append(Line(item["name"], points[0], points[1], inward))
    return tuple(lines)


def parse_zones(text: str) -> tuple[Zone, ...]:
    """``[{"name": "shelf", "points": [[0.1, 0.1], [0.4, 0.1], [0.4, 0.5], [0.1, 0.5]]}]``"""
    zones = []
    for index, item in enumerate(_load(text, "zones")):
        polygon = _points(item.get("points"), f"zones[{index}].points", 3)
        if _self_crossing(polygon):
            raise ConfigError(f"configuration zones[{index}].points: the polygon crosses itself: {list(polygon)}")
        zones.append(Zone(item["name"], polygon))
    return tuple(zones)


def _self_crossing(polygon: Sequence[Point]) -> bool:
    edges = list(zip(polygon, list(polygon[1:]) + [polygon[0]], strict=True))

    def orient(a: Point, b: Point, c: Point) -> float:
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    for i, (p1, p2) in enumerate(edges):
        for j in range(i + 1, len(edges)):
            if j == i + 1 or (i == 0 and j == len(edges) - 1):
                continue  # neighbours share a corner
            q1, q2 = edges[j]
            if orient(p1, p2, q1) * orient(p1, p2, q2) < 0 and orient(q1, q2, p1) * orient(q1, q2, p2) < 0:
                return True
    return False


@dataclass
class _LineTotals:
    digest: str
    inward: dict[str, int] = field(default_factory=dict)
    outward: dict[str, int] = field(default_factory=dict)


class Counter:
    def __init__(self, lines: Sequence[Line], zones: Sequence[Zone], path: str = "", band: float = 0.04) -> None:
        self.lines, self.zones, self.path, self.band = tuple(lines), tuple(zones), path, band
        self.sides: dict[tuple[str, int], int] = {}
        self.counted: set[tuple[str, int, str]] = set()
        self.entered: dict[tuple[str, int], float] = {}
        self.occupancy: dict[str, dict[str, int]] = {z.name: {} for z in self.zones}
        self.now = 0.0  # the last frame's time: a zone's dwell is now - entered
        self.reset: list[str] = []
        self.totals = self._restore()

    def _restore(self) -> dict[str, _LineTotals]:
        saved: dict[str, Any] = {}
        if self.path and Path(self.path).exists():
            try:
                saved = json.loads(Path(self.path).read_text()).get("lines", {})
            except (OSError, ValueError):
                log_event(logger, "counts.unreadable", level=logging.WARNING, path=self.path)
        totals = {}
        for line in self.lines:
            kept = saved.get(line.name)
            if kept and kept.get("digest") == line.digest():
                totals[line.name] = _LineTotals(line.digest(), dict(kept.get("in", {})), dict(kept.get("out", {})))
            else:
                totals[line.name] = _LineTotals(line.digest())
                if kept:
                    self.reset.append(line.name)
                    log_event(logger, "counts.line_reset", level=logging.WARNING, line=line.name, reason="changed")
        return totals

    def observe(self, tracked: Sequence[Detection], size: tuple[int, int], now: float) -> list[dict[str, Any]]:
        """Update with this frame's tracked detections; returns the crossings it saw, as events."""
        width, height = size
        self.now = now
        events = []
        present: set[tuple[str, int]] = set()
        for det in tracked:
            if det.track_id is None:
                continue
            centre = ((det.box[0] + det.box[2]) / 2 / width, (det.box[1] + det.box[3]) / 2 / height)
            for line in self.lines:
                event = self._cross(line, det, centre, now)
                if event:
                    events.append(event)
            for zone in self.zones:
                if zone.contains(centre):
                    present.add((zone.name, det.track_id))
                    self.entered.setdefault((zone.name, det.track_id), now)
        self._zones(tracked, present)
        if events:
            self._save()
        return events

    def _cross(self, line: Line, det: Detection, centre: Point, now: float) -> dict[str, Any] | None:
        assert det.track_id is not None
        key = (line.name, det.track_id)
        side = line.side(centre, self.band)
        previous = self.sides.get(key, 0)
        if side == 0:
            return None
        self.sides[key] = side
        if previous == 0 or previous == side or not line.spans(centre):
            return None
        direction = "left-to-right" if side > 0 else "right-to-left"
        way = "in" if direction == line.inward else "out"
        if (line.name, det.track_id, way) in self.counted:
            return None
        self.counted.add((line.name, det.track_id, way))
        bucket = self.totals[line.name].inward if way == "in" else self.totals[line.name].outward
        bucket[det.label] = bucket.get(det.label, 0) + 1
        log_event(logger, "counts.crossing", line=line.name, label=det.label, direction=way, track_id=det.track_id)
        return {"line": line.name, "class": det.label, "direction": way, "track_id": det.track_id, "time": now}

    def _zones(self, tracked: Sequence[Detection], present: set[tuple[str, int]]) -> None:
        labels = {d.track_id: d.label for d in tracked if d.track_id is not None}
        for key in [k for k in self.entered if k not in present]:
            del self.entered[key]
        for zone in self.zones:
            counts: dict[str, int] = {}
            for name, track in present:
                if name == zone.name:
                    counts[labels[track]] = counts.get(labels[track], 0) + 1
            self.occupancy[zone.name] = counts

    def summary(self) -> dict[str, Any]:
        """What the health message carries: totals per line and class, zone occupancy and dwell."""
        return {
            "lines": {name: {"in": t.inward, "out": t.outward} for name, t in self.totals.items()},
            "zones": {
                zone.name: {
                    "occupancy": self.occupancy[zone.name],
                    "max_dwell_s": round(
                        max((self.now - t for (name, _), t in self.entered.items() if name == zone.name), default=0.0),
                        1,
                    ),
                }
                for zone in self.zones
            },
            **({"reset": self.reset} if self.reset else {}),
        }

    def _save(self) -> None:
        if not self.path:
            return
        state = {"lines": {n: {"digest": t.digest, "in": t.inward, "out": t.outward} for n, t in self.totals.items()}}
        target = Path(self.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(target.suffix + ".part")
        partial.write_text(json.dumps(state))
        os.replace(partial, target)  # a crash never leaves half a file
