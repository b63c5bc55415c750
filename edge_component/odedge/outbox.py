"""The count events not yet delivered, oldest first, on disk in the component's work folder.

Each crossing's message is one file, ``<seq>.json``, written durably (``odedge.durable``) before the totals that
include it, and removed only once the transport confirmed it (the nucleus accepted the publish; the broker's
PUBACK). A restart or a power cut therefore loses none: what is still here is sent again, in order, and a message
sent twice (the confirmation lost) carries the same ``event_id`` for the consumer to drop. Each file also holds the
counter's state after its crossing, so a cut between the event and the totals' file restores both.

The outbox is bounded (``capacity`` events): when full, a new event is not kept, and that is said loudly (an error
log line per event, ``counts_lost`` in the counters, ``outbox.full`` in health). Without a folder the outbox lives in
memory (``odctl detect`` without ``--counts-file``): events still never give way to detections, but a restart loses
what is pending.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .durable import discard_partial, write_atomic
from .messages import counts_message
from .telemetry import Counters, log_event

logger = logging.getLogger(__name__)
SUFFIX = ".json"


@dataclass(frozen=True)
class Entry:
    seq: int
    topic: str
    payload: bytes


class Outbox:
    def __init__(self, folder: str, capacity: int, counters: Counters) -> None:
        self.folder = Path(folder) if folder else None
        self.capacity, self.counters = capacity, counters
        self.entries: OrderedDict[int, Entry] = OrderedDict()
        self.cond = threading.Condition()
        self.full = False
        self.recovered_state: dict[str, Any] | None = None  # the counter's state after the newest kept event
        if self.folder is not None:
            self._load(self.folder)

    def _load(self, folder: Path) -> None:
        for path in discard_partial(folder):
            log_event(logger, "outbox.partial_discarded", level=logging.WARNING, path=str(path))
        for path in sorted(folder.glob(f"*{SUFFIX}")):
            try:
                record = json.loads(path.read_text())
                entry = Entry(int(record["seq"]), str(record["topic"]), str(record["payload"]).encode())
            except (OSError, ValueError, KeyError, TypeError):  # never written by us whole: keep it for a person
                path.rename(path.with_suffix(".unreadable"))
                log_event(logger, "outbox.unreadable", level=logging.ERROR, path=str(path))
                continue
            self.entries[entry.seq] = entry
            self.recovered_state = record.get("state")
        self.entries = OrderedDict(sorted(self.entries.items()))
        if self.entries:
            log_event(logger, "outbox.restored", pending=len(self.entries), first=next(iter(self.entries)))

    def _path(self, seq: int) -> Path:
        assert self.folder is not None
        return self.folder / f"{seq:012d}{SUFFIX}"

    def put(self, entry: Entry, state: dict[str, Any]) -> bool:
        """Keep ``entry`` until it is delivered; False (and said loudly) when the outbox is full."""
        with self.cond:
            if len(self.entries) >= self.capacity:
                self.full = True
                self.counters.add("counts_lost")
                log_event(
                    logger,
                    "outbox.full",
                    level=logging.ERROR,
                    seq=entry.seq,
                    capacity=self.capacity,
                    lost=int(self.counters.get("counts_lost")),
                )
                return False
        if self.folder is not None:
            record = {"seq": entry.seq, "topic": entry.topic, "payload": entry.payload.decode(), "state": state}
            write_atomic(self._path(entry.seq), json.dumps(record, separators=(",", ":")).encode())
        with self.cond:
            self.entries[entry.seq] = entry
            self.cond.notify_all()
        return True

    def oldest(self, timeout: float) -> Entry | None:
        with self.cond:
            if not self.entries:
                self.cond.wait(timeout)
            return next(iter(self.entries.values()), None)

    def remove(self, seq: int) -> None:
        """The transport confirmed the event: forget it (a cut before the unlink only sends it again)."""
        if self.folder is not None:
            self._path(seq).unlink(missing_ok=True)
        with self.cond:
            self.entries.pop(seq, None)
            self.full = len(self.entries) >= self.capacity
            self.cond.notify_all()

    def __len__(self) -> int:
        with self.cond:
            return len(self.entries)

    def status(self) -> dict[str, Any]:
        """What health says about the outbox."""
        with self.cond:
            return {"pending": len(self.entries), "capacity": self.capacity, "full": self.full}


class CountsJournal:
    """The counter's journal: each crossing's message into the outbox, and a copy to the best-effort sinks that
    only record (a JSON Lines file beside the broker)."""

    def __init__(self, outbox: Outbox, thing: str, topic: str, copies: Sequence[Any] = ()) -> None:
        self.outbox, self.thing, self.topic, self.copies = outbox, thing, topic, tuple(copies)

    @property
    def recovered_state(self) -> dict[str, Any] | None:
        return self.outbox.recovered_state

    def record(self, event: dict[str, Any], state: dict[str, Any]) -> None:
        payload = counts_message(self.thing, event)
        self.outbox.put(Entry(event["seq"], self.topic, payload), state)
        for copy in self.copies:
            copy.publish(self.topic, payload)

    def status(self) -> dict[str, Any]:
        return self.outbox.status()
