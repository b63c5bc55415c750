"""Counters, latency percentiles and structured log lines for the device (no dependency on odshared)."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections import deque
from typing import Any


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    logger.log(level, event, extra={"fields": fields})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(record.created, 3),
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
