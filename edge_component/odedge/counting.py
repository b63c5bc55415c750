"""Counting what crosses lines and what stays in zones, from tracked detections.

Coordinates are fractions of the frame (0..1, origin top-left), so a line survives a change of camera resolution.
Each line names which way is ``in``, as a move on the image: ``left-to-right`` and ``right-to-left`` for a line
down the picture, ``top-to-bottom`` and ``bottom-to-top`` for a line across it; a slanted line takes the words of
the axis closer to square with it (``line_direction``: both near 45 degrees, measured in fractions of the frame;
``odctl`` holds a user to that, the device refuses only a word within 30 degrees of its line, as 1.7.0 did).

Deployed configurations keep their meaning: ``left-to-right``/``right-to-left`` in the configuration are the
line's own sides, the image's left and right when the line is seen with its first point at the top. For a line
drawn downwards that is the image's meaning (a line from [0.5, 0] to [0.5, 1]: ``left-to-right`` is a move to the
right); for one drawn upwards the words are mirrored (``odctl`` writes the mirrored word for it). For a line across
the picture the words ran along the line: a line from [0, 0.5] to [1, 0.5] with ``left-to-right`` (or no ``in``,
the default) counts a move up. Such a line still counts as before, and the device logs
``counting.direction_deprecated`` with the image's word that means the same; ``odctl`` refuses the word and
writes ``top-to-bottom``/``bottom-to-top`` into the configuration itself.

Every crossing counts (the rule), so that ``in - out`` is what is on the in-side of the line (a box carried in,
out and in again by one person is in 2, out 1: it is in the room). What is not a crossing:
- a track's side of a line changes only when its centre is farther than ``band`` (4% of the frame) from the
  line: jitter on the line, or a box that stops on it and goes back, is no crossing (2% let a box that stopped on
  the line be counted out and in again by its detections' jitter alone); a box that goes past the band and comes
  back the way it came is in 1 then out 1, which nets to nothing, as it should;
- a crossing counts only where the centre passes between the line's two end points (walking past an end is none);
- the tracker keeps a track through ``max_lost`` frames of occlusion or absence, so an object hidden behind the
  pole keeps its side and is not counted again when it reappears on the same side.
An earlier rule counted a track at most once per line and direction; it only ever lost real crossings (a round
trip left the room looking empty with the box inside), since the band already stops jitter from counting.

Each crossing gets the next ``seq`` of the device (one more than the last, no gaps) and an ``event_id`` unique for
ever (``<stream>-<seq>``; ``stream`` is drawn when the state is first written, so a device whose state was wiped
never reuses an id). Its event goes to the outbox (``odedge.messages.CountsOutbox``) before the totals' file (the
component's work folder) is written, both power-cut safe (``odedge.durable``), and both are read at start: totals
and the sequence survive a restart, a redeployment and a new model. A line whose definition changed starts from
zero (logged, and listed in the health message's ``counts.reset``); the other lines keep their totals. Per-track
state is forgotten when the tracker ends a track (``forget``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .durable import describe, write_atomic
from .errors import ConfigError
from .messages import CountsOutbox
from .postprocess import Detection
from .telemetry import log_event

logger = logging.getLogger(__name__)
DIRECTIONS = ("left-to-right", "right-to-left")  # the line's own sides, seen with its first point on top
# the image's own words: a move in this direction on the picture (y grows downwards)
IMAGE_MOTIONS: dict[str, tuple[float, float]] = {
    "left-to-right": (1.0, 0.0),
    "right-to-left": (-1.0, 0.0),
    "top-to-bottom": (0.0, 1.0),
    "bottom-to-top": (0.0, -1.0),
}
# a word fits a line when its move is within 50 degrees of square to the line: the axis closer to the line's normal,
# and both axes for a line within 5 degrees of a diagonal (a line drawn by eye at 45 degrees takes either); odctl
# holds a user to it
MIN_CROSSING_COSINE = math.cos(math.radians(50))
# the device refuses only a word within 30 degrees of its line (as 1.7.0 did): no configuration it took is refused
DEVICE_MIN_COSINE = 0.5
Point = tuple[float, float]


def line_direction(start: Point, end: Point, image_word: str, minimum: float = MIN_CROSSING_COSINE) -> str:
    """The line's own direction word (``DIRECTIONS``) for a move named with the image's words: a horizontal door
    line's ``top-to-bottom`` is the line's ``right-to-left``. Refuses a word that runs along the line, naming the
    words that fit, so a user never gets a side that depends on which end of the line they wrote first."""
    if image_word not in IMAGE_MOTIONS:
        raise ConfigError(f"direction {image_word!r}: one of {list(IMAGE_MOTIONS)} (a move on the image)")
    cosine = _cosine(start, end, image_word)  # the move against the normal of the line's right side
    if abs(cosine) < minimum:
        fitting = " or ".join(fitting_words(start, end))
        raise ConfigError(f"direction {image_word!r} runs along this line: say {fitting}")
    return "left-to-right" if cosine > 0 else "right-to-left"


def fitting_words(start: Point, end: Point, minimum: float = MIN_CROSSING_COSINE) -> list[str]:
    """The image's words that name a way across this line (two, or all four for a diagonal)."""
    return [w for w in IMAGE_MOTIONS if abs(_cosine(start, end, w)) >= minimum]


def image_direction(start: Point, end: Point, own: str) -> str:
    """The image's word for the line's own side ``own``: the first fitting word that means the same, so a
    configuration written in the line's own words can be said (and logged, and drawn) in the image's."""
    return next(w for w in fitting_words(start, end) if line_direction(start, end, w) == own)


def _cosine(start: Point, end: Point, image_word: str) -> float:
    """The cosine between the move and the normal pointing to the line's right side (``Line.side`` +1)."""
    (ax, ay), (bx, by) = start, end
    mx, my = IMAGE_MOTIONS[image_word]
    length = math.hypot(bx - ax, by - ay)
    return (mx * (by - ay) - my * (bx - ax)) / length


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


def parse_lines(text: str, notify: bool = True) -> tuple[Line, ...]:
    """``[{"name": "door", "points": [[0.5, 0], [0.5, 1]], "in": "left-to-right"}]``; ``notify``: log a line
    across the picture whose way in is in the line's own words (``_deprecated``), once per start of the loop."""
    lines = []
    for index, item in enumerate(_load(text, "lines")):
        points = _points(item.get("points"), f"lines[{index}].points", 2)
        if len(points) != 2 or points[0] == points[1]:
            raise ConfigError(f"configuration lines[{index}].points: two different points, got {list(points)}")
        given = item.get("in")
        inward = "left-to-right" if given is None else given
        if inward in ("top-to-bottom", "bottom-to-top"):  # the image's words, for a line across the picture
            try:
                inward = line_direction(points[0], points[1], inward, DEVICE_MIN_COSINE)
            except ConfigError as exc:
                raise ConfigError(f"configuration lines[{index}].in: {exc}") from None
        elif inward not in DIRECTIONS:
            words = [*DIRECTIONS, "top-to-bottom", "bottom-to-top"]
            raise ConfigError(f"configuration lines[{index}].in: one of {words}, got {inward!r}")
        elif notify and inward not in fitting_words(*points, DEVICE_MIN_COSINE):
            _deprecated(index, item["name"], points, given, inward)
        lines.append(Line(item["name"], points[0], points[1], inward))
    return tuple(lines)


def _deprecated(index: int, name: str, points: tuple[Point, ...], given: str | None, inward: str) -> None:
    """A line across the picture with left-to-right/right-to-left (or no ``in``): configurations deployed before
    the image's words keep counting as they did (their totals and dashboards depend on it), and the log says the
    word that means the same, so the next deployment can say it plainly."""
    instead = image_direction(points[0], points[1], inward)
    said = f"'{given}'" if given else "no 'in' (the default, 'left-to-right')"
    log_event(
        logger,
        "counting.direction_deprecated",
        logging.WARNING,
        line=name,
        key=f"lines[{index}].in",
        given=given,
        counts_as=instead,
        fix=f'{said} runs along this line in the image\'s words; "in": "{instead}" means the same',
    )


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

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {"in": dict(self.inward), "out": dict(self.outward)}


class Counter:
    def __init__(
        self,
        lines: Sequence[Line],
        zones: Sequence[Zone],
        path: str = "",
        band: float = 0.04,
        outbox: CountsOutbox | None = None,
    ) -> None:
        self.lines, self.zones, self.path, self.band, self.outbox = tuple(lines), tuple(zones), path, band, outbox
        self.sides: dict[tuple[str, int], int] = {}
        self.entered: dict[tuple[str, int], float] = {}
        self.occupancy: dict[str, dict[str, int]] = {z.name: {} for z in self.zones}
        self.now = 0.0  # the last frame's time: a zone's dwell is now - entered
        self.reset: list[str] = []
        self.disk_error: dict[str, Any] | None = None  # the totals' file could not be written (health says)
        self.unsaved = False  # the newest state is not on disk yet: written again at the next frame
        self.camera = ""  # the camera's state while it is not OK (odedge.camera_health): each crossing carries it
        saved, from_outbox = self._saved()
        self.stream: str = saved.get("stream") or uuid.uuid4().hex
        self.seq: int = int(saved.get("seq", 0))
        self.totals = self._restore(saved.get("lines", {}))
        skipped = self._skip_unreadable(saved)
        if from_outbox or skipped:  # the file catches up now: the outbox's event may be delivered and gone next
            self._save(self.state())

    def _skip_unreadable(self, saved: dict[str, Any]) -> bool:
        """An outbox file newer than the state kept was unreadable (its crossing lost, counted by the outbox): its
        seq stays taken, so an ``event_id`` is never given twice; the consumer sees the gap the loss made."""
        highest = self.outbox.highest_seq if self.outbox is not None and saved.get("stream") else 0
        if highest <= self.seq:
            return False
        log_event(logger, "counts.seq_skipped", level=logging.WARNING, seq=self.seq, to=highest)
        self.seq = highest
        return True

    def _saved(self) -> tuple[dict[str, Any], bool]:
        """The newest state kept: the totals' file, or the outbox's last event when a cut came between them."""
        saved: dict[str, Any] = {}
        if self.path and Path(self.path).exists():
            try:
                saved = json.loads(Path(self.path).read_text())
            except (OSError, ValueError):
                log_event(logger, "counts.unreadable", level=logging.ERROR, path=self.path)
        recovered = self.outbox.recovered_state if self.outbox is not None else None
        if recovered and recovered.get("stream") == saved.get("stream", recovered.get("stream")):
            if int(recovered.get("seq", 0)) > int(saved.get("seq", 0)):
                log_event(logger, "counts.recovered_from_outbox", seq=recovered["seq"], file_seq=saved.get("seq", 0))
                return recovered, True
        return saved, False

    def _restore(self, saved: dict[str, Any]) -> dict[str, _LineTotals]:
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
        """Update with this frame's tracked detections; returns the crossings it saw, as events, once the outbox
        and the totals' file hold them."""
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
                    self._record(event)
            for zone in self.zones:
                if zone.contains(centre):
                    present.add((zone.name, det.track_id))
                    self.entered.setdefault((zone.name, det.track_id), now)
        self._zones(tracked, present)
        if events or self.unsaved:
            self._save(self.state())
        return events

    def _record(self, event: dict[str, Any]) -> None:
        """The event first, with the state after it: a cut loses neither. The outbox keeps or sends it whatever
        the disk does (odedge.outbox); anything else it raises is said here and never costs the frame the rest of
        its crossings or its detections."""
        if self.outbox is None:
            return
        try:
            self.outbox.put(event, self.state())
        except Exception:
            logger.exception("counts.outbox_failed", extra={"fields": {"seq": event["seq"]}})

    def forget(self, track_ids: Sequence[int]) -> None:
        """The tracker ended these tracks: their state goes, so memory stays flat over months of tracks."""
        ended = set(track_ids)
        if ended:
            for key in [k for k in self.sides if k[1] in ended]:
                del self.sides[key]

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
        totals = self.totals[line.name]
        bucket = totals.inward if way == "in" else totals.outward
        bucket[det.label] = bucket.get(det.label, 0) + 1
        self.seq += 1
        log_event(
            logger,
            "counts.crossing",
            line=line.name,
            label=det.label,
            direction=way,
            track_id=det.track_id,
            seq=self.seq,
        )
        return {
            "line": line.name,
            "class": det.label,
            "direction": way,
            "track_id": det.track_id,
            "time": now,
            "seq": self.seq,
            "event_id": f"{self.stream}-{self.seq}",
            "totals": totals.as_dict(),
            **({"camera": self.camera} if self.camera else {}),
        }

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
        """What the health message carries: totals per line and class, zone occupancy and dwell, the last
        crossing's ``seq`` (a consumer tells a gap from silence) and the outbox's state."""
        return {
            "lines": {name: t.as_dict() for name, t in self.totals.items()},
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
            "seq": self.seq,
            "stream": self.stream,
            **({"outbox": self.outbox.status()} if self.outbox is not None else {}),
            **({"reset": self.reset} if self.reset else {}),
            **({"disk_error": dict(self.disk_error)} if self.disk_error is not None else {}),
        }

    def state(self) -> dict[str, Any]:
        """What survives a restart: the sequence and every line's totals (with the line's digest)."""
        lines = {n: {"digest": t.digest, "in": dict(t.inward), "out": dict(t.outward)} for n, t in self.totals.items()}
        return {"stream": self.stream, "seq": self.seq, "lines": lines}

    def _save(self, state: dict[str, Any]) -> None:
        """Write the totals' file; a disk that refuses (ENOSPC, EIO, EROFS) is said (an error, ``disk_error`` in
        health) and the write tried again at every frame until it lands, so the file is never left behind the
        sequence it sent (a restart would give a seq twice). The outbox's reserve keeps room for it on a full disk."""
        if not self.path:
            return
        try:
            write_atomic(Path(self.path), json.dumps(state).encode())
        except OSError as exc:
            if not self.unsaved:
                log_event(logger, "counts.save_failed", level=logging.ERROR, path=self.path, error=describe(exc))
            count = int((self.disk_error or {}).get("count", 0)) + 1
            self.disk_error = {"path": self.path, "error": describe(exc), "count": count}
            self.unsaved = True
            return
        if self.unsaved:
            log_event(logger, "counts.saved_again", level=logging.WARNING, path=self.path, seq=state["seq"])
        self.unsaved = False
