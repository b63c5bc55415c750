"""Structured logging: one JSON line per event, so CloudWatch, CI logs and terminals read the same."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object; fields passed through ``extra={"fields": {...}}`` are merged in."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``event`` with its fields as one structured line."""
    logger.log(level, event, extra={"fields": fields})


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at each record, not the one there when logging was configured: a
    replaced or closed stream (a test's capture, a redirected CLI) never turns a log line into a traceback."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure(level: str | None = None, stream: Any = None) -> None:
    """Install the JSON formatter on the root logger; the level comes from LOG_LEVEL unless given."""
    name = (level or os.environ.get("LOG_LEVEL") or "INFO").upper()
    if name not in _LEVELS:
        raise ValueError(f"LOG_LEVEL must be one of {sorted(_LEVELS)}, got {name!r}")
    root = logging.getLogger()
    for handler in list(root.handlers):  # ours, or the device code's (odedge marks its handler the same way)
        if getattr(handler, "_json_stderr", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream) if stream is not None else _CurrentStderr()
    handler.setFormatter(JsonFormatter())
    handler._json_stderr = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(name)
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
