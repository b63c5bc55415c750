"""Counters, latency percentiles, zones' visits over a run and structured log lines for the device (no dependency
on odshared)."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``event`` with its fields as one structured line."""
    logger.log(level, event, extra={"fields": fields})


class JsonFormatter(logging.Formatter):
    """One JSON object per record, in the fleet's one log shape: the same field names and the same ISO 8601 UTC time
    as odshared's lines (odshared.core.log; a test holds the two equal), so one query reads the device's component
    log and the cloud's. Fields passed through ``extra={"fields": {...}}`` are merged in."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
            **(getattr(record, "fields", None) or {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _Stderr(logging.Handler):
    """One line per record to the stderr of the moment (Greengrass prefixes stderr lines in the component log);
    a replaced or closed earlier stream never turns a log line into a traceback."""

    _json_stderr = True  # the odctl side replaces a handler so marked instead of logging every line twice

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def configure_logging(level: str = "INFO") -> None:
    handler = _Stderr()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)


class Counters:
    """Thread-safe named counters (frames in, dropped, corrupt, reconnects, ...)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, float] = {}

    def add(self, name: str, amount: float = 1) -> None:
        with self._lock:
            self._values[name] = self._values.get(name, 0) + amount

    def set(self, name: str, value: float) -> None:
        with self._lock:
            self._values[name] = value

    def get(self, name: str) -> float:
        with self._lock:
            return self._values.get(name, 0)

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self._values)


class LatencyWindow:
    """The last N latencies per stage, for p50/p95 in health messages (bounded memory)."""

    def __init__(self, size: int = 512) -> None:
        self._lock = threading.Lock()
        self._stages: dict[str, deque[float]] = {}
        self.size = size
        self._frames: deque[float] = deque(maxlen=size)

    def record(self, stages: dict[str, float]) -> None:
        with self._lock:
            for stage, value in stages.items():
                self._stages.setdefault(stage, deque(maxlen=self.size)).append(value)
            self._frames.append(time.monotonic())

    def percentiles(self) -> dict[str, dict[str, float]]:
        with self._lock:
            out = {}
            for stage, values in self._stages.items():
                ordered = sorted(values)
                if ordered:
                    out[stage] = {
                        "p50": round(ordered[len(ordered) // 2], 2),
                        "p95": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 2),
                    }
            return out

    def fps(self) -> float:
        with self._lock:
            if len(self._frames) < 2:
                return 0.0
            span = self._frames[-1] - self._frames[0]
            return round((len(self._frames) - 1) / span, 2) if span > 0 else 0.0


@dataclass
class _Visit:
    last: float  # when the track was last seen inside
    inside: bool = True  # where it was last seen: in the zone, or elsewhere in the frame
    dwell: float = 0.0


class ZoneVisits:
    """Each zone over a whole run: occupancy at the end and at its peak, visits (tracks that entered) and their
    dwell. The counter knows only the moment (health's occupancy, the longest dwell of the tracks inside now); a run
    over footage needs the whole story. Dwell is time inside in the frames' clock (a video file's own): an object
    hidden for a few frames where it was last seen inside stays inside; one seen outside stops its dwell until it
    comes back (the same visit while its track lives). Memory holds the live tracks' visits only (``forget``)."""

    def __init__(self, zones: Iterable[str]) -> None:
        self.zones = tuple(zones)
        self.visits: dict[tuple[str, int], _Visit] = {}
        self.now_inside = dict.fromkeys(self.zones, 0)
        self.peak = dict.fromkeys(self.zones, 0)
        self.entered = dict.fromkeys(self.zones, 0)
        self.ended: dict[str, list[float]] = {zone: [0.0, 0.0] for zone in self.zones}  # ended visits: total, max

    def observe(self, inside: Iterable[tuple[str, int]], seen: Iterable[int], now: float) -> None:
        """This frame's (zone, track id) pairs inside, and every track id seen in the frame."""
        present, tracks = set(inside), set(seen)
        for key, going in self.visits.items():
            if key[1] in tracks and key not in present:
                going.inside = False
        for key in present:
            visit = self.visits.get(key)
            if visit is None:
                self.visits[key] = _Visit(now)
                self.entered[key[0]] += 1
                continue
            if visit.inside:
                visit.dwell += max(0.0, now - visit.last)
            visit.last, visit.inside = now, True
        for zone in self.zones:
            self.now_inside[zone] = sum(1 for name, _ in present if name == zone)
            self.peak[zone] = max(self.peak[zone], self.now_inside[zone])

    def forget(self, track_ids: Iterable[int]) -> None:
        """The tracker ended these tracks: their visits are over (only their totals stay)."""
        ended = set(track_ids)
        for key in [k for k in self.visits if k[1] in ended]:
            dwell = self.visits.pop(key).dwell
            totals = self.ended[key[0]]
            totals[0], totals[1] = totals[0] + dwell, max(totals[1], dwell)

    def summary(self) -> dict[str, dict[str, float]]:
        """Per zone; the visits still going at the end count with their dwell so far."""
        out: dict[str, dict[str, float]] = {}
        for zone in self.zones:
            going = [v.dwell for (name, _), v in self.visits.items() if name == zone]
            total, longest = self.ended[zone]
            visits = self.entered[zone]
            out[zone] = {
                "occupancy": self.now_inside[zone],
                "peak_occupancy": self.peak[zone],
                "visits": visits,
                "mean_dwell_s": round((total + sum(going)) / visits, 1) if visits else 0.0,
                "max_dwell_s": round(max([longest, *going]), 1),
            }
        return out
