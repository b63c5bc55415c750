"""What a consumer can tell from the device's crossings and health: a gap from silence, a duplicate from a crossing.

Each crossing carries ``event_id`` (the same on every delivery) and the device's ``seq`` within its ``stream``; each
health message carries the last ``seq`` the device gave and its outbox: how many crossings it still holds
(``pending``) and the oldest of them (``oldest_seq``). The outbox sends oldest first, one at a time, and keeps the
OLDEST when it overflows (the newest are the ones lost), so every seq below the oldest pending one, or up to the last
one when none is pending, has been delivered or lost; and so has every seq below one received. Those not received
are missing; the rest may still come.

The same rule, in SQL over the ledger, is the named query ``crossing_gaps`` (``odctl counts --gaps``); this is its
counterpart over messages in memory, for the device's own tests and a cross-check of the query.
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
    health_seq: int = 0  # the newest health message's seq, ...
    pending: int = 0  # ... how many crossings its outbox still held ...
    oldest_pending: int | None = None  # ... and the oldest of them (None: none pending, or not said)
    received: set[int] = field(default_factory=set)
    duplicates: int = 0

    @property
    def horizon(self) -> int:
        """The first seq that may still come: the oldest pending, else the one after the health's last; pending
        with no oldest named (older device code) settles nothing; a seq received settles all below it."""
        if self.pending == 0:
            reported = self.health_seq + 1
        else:
            reported = self.oldest_pending if self.oldest_pending is not None else 1
        return max(reported, max(self.received, default=0))

    @property
    def missing(self) -> list[int]:
        """Settled (below the horizon) and never received: lost on the way, or past a full outbox."""
        return [seq for seq in range(1, self.horizon) if seq not in self.received]

    @property
    def ranges(self) -> list[tuple[int, int]]:
        """``missing`` as (first, last) runs, as ``crossing_gaps`` lists them."""
        runs: list[tuple[int, int]] = []
        for seq in self.missing:
            if runs and runs[-1][1] == seq - 1:
                runs[-1] = (runs[-1][0], seq)
            else:
                runs.append((seq, seq))
        return runs


def _message(record: dict[str, Any]) -> dict[str, Any]:
    """A message as received, or a ``{"topic", "message"}`` line of ``odctl detect --out`` / ``odctl watch --out``."""
    inner = record.get("message")
    return inner if isinstance(inner, dict) else record


def _health(reports: dict[tuple[str, str], StreamReport], message: dict[str, Any], newest: dict) -> None:
    """The newest health message per stream (by its timestamp, then seq) sets what its outbox still held."""
    counts = message.get("counts")
    if not isinstance(counts, dict) or "stream" not in counts:
        return
    key = (message["thing"], counts["stream"])
    report = reports.setdefault(key, StreamReport(*key))
    order = (str(message.get("timestamp", "")), int(counts.get("seq", 0)))
    if key not in newest or order >= newest[key]:
        newest[key] = order
        outbox = counts.get("outbox", {})
        report.health_seq = int(counts.get("seq", 0))
        report.pending = int(outbox.get("pending", 0))
        report.oldest_pending = int(outbox["oldest_seq"]) if "oldest_seq" in outbox else None
    report.last_seq = max(report.last_seq, int(counts.get("seq", 0)))


def crossing_streams(records: Iterable[dict[str, Any]]) -> dict[tuple[str, str], StreamReport]:
    """Per (thing, stream): crossings received once each, the duplicates dropped, and the seqs missing."""
    reports: dict[tuple[str, str], StreamReport] = {}
    seen: set[str] = set()
    newest: dict[tuple[str, str], tuple[str, int]] = {}
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
        elif message.get("type") == "health":
            _health(reports, message, newest)
    return reports
