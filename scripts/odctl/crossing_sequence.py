"""What a consumer can tell from the device's crossings and health: a gap from silence, a duplicate from a crossing.

Each crossing carries ``event_id`` (the same on every delivery) and the device's ``seq`` within its ``stream``; each
health message carries the last ``seq`` the device gave and how many crossings its outbox still holds. Crossings are
counted once by ``event_id``; a ``seq`` up to the last one that is neither received nor still in the outbox (the
newest ``pending`` ones) is missing: lost on the way, or past a full outbox.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StreamReport:
    thing: str
    stream: str
    last_seq: int = 0  # the highest seq a crossing or a health message named
    health_seq: int = 0  # the newest health message's seq ...
    pending: int = 0  # ... and how many crossings up to it its outbox still held (the newest ones)
    received: set[int] = field(default_factory=set)
    duplicates: int = 0

    @property
    def missing(self) -> list[int]:
        """Sent in order, so a seq below one received, or below the outbox's pending ones, is not coming."""
        in_flight = set(range(self.health_seq - self.pending + 1, self.health_seq + 1)) - {
            s for s in range(1, max(self.received, default=0) + 1)
        }
        return [seq for seq in range(1, self.last_seq + 1) if seq not in self.received and seq not in in_flight]


def _message(record: dict[str, Any]) -> dict[str, Any]:
    """A message as received, or a ``{"topic", "message"}`` line of ``odctl detect --out`` / ``odctl watch --out``."""
    inner = record.get("message")
    return inner if isinstance(inner, dict) else record


def crossing_streams(records: Iterable[dict[str, Any]]) -> dict[tuple[str, str], StreamReport]:
    """Per (thing, stream): crossings received once each, the duplicates dropped, and the seqs missing."""
    reports: dict[tuple[str, str], StreamReport] = {}
    seen: set[str] = set()
    for record in records:
        message = _message(record)
        if message.get("type") == "crossing":
            stream, seq = str(message["event_id"]).rsplit("-", 1)
            report = reports.setdefault((message["thing"], stream), StreamReport(message["thing"], stream))
            if message["event_id"] in seen:
                report.duplicates += 1
                continue
            seen.add(message["event_id"])
            report.received.add(int(seq))
            report.last_seq = max(report.last_seq, int(seq))
        elif message.get("type") == "health" and isinstance(message.get("counts"), dict):
            counts = message["counts"]
            if "stream" not in counts:
                continue
            key = (message["thing"], counts["stream"])
            report = reports.setdefault(key, StreamReport(*key))
            if int(counts.get("seq", 0)) >= report.health_seq:
                report.health_seq = int(counts.get("seq", 0))
                report.pending = int(counts.get("outbox", {}).get("pending", 0))
            report.last_seq = max(report.last_seq, report.health_seq)
    return reports
