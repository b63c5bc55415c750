"""The outbox: the crossings' counts messages not yet delivered, as entries, oldest first, on disk in the
component's work folder. It only keeps them: odedge.messages builds each entry, odedge.publishers sends them.

Each entry (one crossing's message) is one file, ``<seq>.json``, written durably (``odedge.durable``) before the
totals that include it, and removed only once the transport confirmed it (the nucleus accepted the publish; the
broker's PUBACK). A restart or a power cut therefore loses none: what is still here is sent again, in order, and a
message sent twice (the confirmation lost) carries the same ``event_id`` for the consumer to drop. Each file also
holds the counter's state after its crossing, so a cut between the entry and the totals' file restores both.

The disk is bounded twice: ``capacity`` entries, and ``reserve`` bytes left free in the work folder (the totals'
file must still be written when the outbox cannot be, and the device needs room too); ``nearly_full`` in health
warns before either bound is reached. A crossing the disk cannot keep (the outbox full, the reserve reached, or
the disk failing: ENOSPC, EIO, EROFS) is never dropped on the spot: it is held in memory and sent all the same, in
its place in the order, and said loudly (a warning per entry, ``counts_unkept`` in the counters, ``outbox.full``
and ``outbox.disk_error`` in health), since a restart before it is delivered loses it. Only past ``capacity``
entries held in memory as well, or held in memory when the process stops, is a crossing lost: ``counts_lost``
counts exactly those, and the outbox files found unreadable at start (their crossing cannot be sent); the outbox
also keeps their tally in its folder (``LOST_FILE``), so that health's ``outbox.lost`` still says after a restart
what the stream lost before it, when a consumer finds the gap (``counts_lost`` counts for the process). Without a
folder the outbox lives in memory (``odctl detect`` without ``--counts-file``): entries still never give way to
detections, but a restart loses what is pending.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import OrderedDict
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .durable import describe, discard_partial, write_atomic
from .telemetry import Counters, log_event

logger = logging.getLogger(__name__)
SUFFIX = ".json"
RESERVE_BYTES = 1 << 20  # left free in the work folder by default
TYPICAL_RECORD = 1024  # bytes: what the next entry will need, for a health check between crossings
HELD_NOTE = "sent from memory; a restart before it is delivered loses it"
LOST_FILE = "lost.tally"  # the crossings this outbox lost, for every start to come: no SUFFIX, so no entry


@dataclass(frozen=True)
class Entry:
    """One crossing's counts message in the outbox: its ``seq`` (the file's name and the order), where it goes and
    the bytes that go there."""

    seq: int
    topic: str
    payload: bytes
    on_disk: bool = True  # False: held in memory only (a restart loses it)
    size: int = 0  # bytes of its file


class Outbox:
    """The entries not yet delivered, oldest first (see the module's docstring for what it promises)."""

    def __init__(self, folder: str, capacity: int, counters: Counters, reserve: int = RESERVE_BYTES) -> None:
        self.folder = Path(folder) if folder else None
        self.capacity, self.counters, self.reserve = capacity, counters, reserve
        self.overflow = capacity if self.folder is not None else 0  # entries held in memory past the disk
        self.entries: OrderedDict[int, Entry] = OrderedDict()
        self.cond = threading.Condition()
        self.kept = self.bytes = self.held = 0  # files on disk, their bytes; entries held in memory only
        self.full, self.reason = False, ""  # the newest entry was not kept on disk, and why
        self.nearly_full = False
        self.free: int | None = None
        self.unreadable = 0
        self.highest_seq = 0  # the highest seq among the files found at start, readable or not
        self.disk_error: dict[str, Any] | None = None
        self.recovered_state: dict[str, Any] | None = None  # the counter's state after the newest kept entry
        self.lost = 0  # crossings lost since the folder was made (the process's start, without one)
        self.tally_lock = threading.Lock()  # one writer of LOST_FILE at a time, the newest count last
        self.tally_failing = False  # the last write of LOST_FILE failed (said once until one succeeds)
        self.left = 0  # unreadable files the disk would not let be renamed: lost, in no tally, found at each start
        if self.folder is not None:
            self.lost = self._lost_before(self.folder)
            self._load(self.folder)

    def _lost_before(self, folder: Path) -> int:
        """What earlier runs lost (``LOST_FILE``). A tally that cannot be read is said, kept aside for a person
        (``.unreadable``) and starts again from 0: the consumer's gap report still names the missing seqs."""
        path = folder / LOST_FILE
        try:
            lost = json.loads(path.read_bytes())["lost"]
            if not isinstance(lost, int) or lost < 0:
                raise ValueError(f"lost is {lost!r}")
            return lost
        except FileNotFoundError:
            return 0
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log_event(logger, "outbox.lost_tally_unreadable", level=logging.ERROR, path=str(path), error=str(exc))
            with suppress(OSError):
                path.rename(path.with_name(LOST_FILE + ".unreadable"))
            return 0

    def _lose(self, count: int) -> None:
        """``count`` crossings lost: counted for the process (``counts_lost``) and in the folder's tally, written
        durably where the disk allows. A write the disk refuses leaves the tally in memory (health still says it)
        and is said once until a later one succeeds; it is no outbox disk error (no entry was refused)."""
        self.counters.add("counts_lost", count)
        with self.tally_lock:
            with self.cond:
                self.lost += count
                lost = self.lost
            if self.folder is None:
                return
            try:
                write_atomic(self.folder / LOST_FILE, json.dumps({"lost": lost}).encode())
            except OSError as exc:
                if not self.tally_failing:
                    log_event(
                        logger,
                        "outbox.lost_tally_not_written",
                        level=logging.ERROR,
                        path=str(self.folder / LOST_FILE),
                        lost=lost,
                        error=describe(exc),
                    )
                self.tally_failing = True
                return
            self.tally_failing = False

    def _load(self, folder: Path) -> None:
        """Read what a previous run left; an unreadable file costs its crossing (counted), never the start."""
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._disk_failed(folder, exc)
            return
        for path in discard_partial(folder):
            log_event(logger, "outbox.partial_discarded", level=logging.WARNING, path=str(path))
        for path in sorted(folder.glob(f"*{SUFFIX}")):
            if path.stem.isdigit():
                self.highest_seq = max(self.highest_seq, int(path.stem))
            entry, state = self._read(path)
            if entry is None:
                continue
            self.entries[entry.seq] = entry
            self.kept, self.bytes = self.kept + 1, self.bytes + entry.size
            self.highest_seq = max(self.highest_seq, entry.seq)
            self.recovered_state = state if state is not None else self.recovered_state
        self.entries = OrderedDict(sorted(self.entries.items()))
        if self.entries:
            log_event(logger, "outbox.restored", pending=len(self.entries), first=next(iter(self.entries)))

    def _read(self, path: Path) -> tuple[Entry | None, dict[str, Any] | None]:
        try:
            data = path.read_bytes()
            record = json.loads(data)
            state = record.get("state")
            if state is not None and not isinstance(state, dict):
                raise TypeError(f"state is a {type(state).__name__}")
            entry = Entry(int(record["seq"]), str(record["topic"]), str(record["payload"]).encode(), True, len(data))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # corrupt, truncated, unreadable
            self._unreadable(path, exc)
            return None, None
        return entry, state

    def _unreadable(self, path: Path, exc: Exception) -> None:
        """Its crossing cannot be sent: lost, counted and named (its seq is the file's name); the file is kept for a
        person as ``.unreadable``, and only then added to the folder's tally. Where even the rename fails the file
        is left, in no tally (``left``): every start finds it again and says it, so it is counted once each time."""
        self.unreadable += 1
        self.counters.add("outbox_unreadable")
        seq = int(path.stem) if path.stem.isdigit() else None
        log_event(logger, "outbox.unreadable", level=logging.ERROR, path=str(path), seq=seq, error=str(exc))
        try:
            path.rename(path.with_suffix(".unreadable"))
        except OSError as err:
            log_event(logger, "outbox.unreadable_left", level=logging.ERROR, path=str(path), error=describe(err))
            self.counters.add("counts_lost")
            self.left += 1
            return
        self._lose(1)

    def _path(self, seq: int) -> Path:
        assert self.folder is not None
        return self.folder / f"{seq:012d}{SUFFIX}"

    def put(self, entry: Entry, state: dict[str, Any]) -> bool:
        """Keep ``entry`` until it is delivered. True: kept as promised (on disk; in memory without a folder).
        False: not kept on disk, said loudly, and held in memory to be sent all the same, or past that lost
        (counted). Never raises for the disk: a crossing's frame goes on whatever the disk does."""
        if self.folder is None:
            with self.cond:
                if len(self.entries) < self.capacity:
                    self.entries[entry.seq] = replace(entry, on_disk=False)
                    self.full = False
                    self.cond.notify_all()
                    return True
            return self._hold(entry, "full")
        record = {"seq": entry.seq, "topic": entry.topic, "payload": entry.payload.decode(), "state": state}
        data = json.dumps(record, separators=(",", ":")).encode()
        path = self._path(entry.seq)
        reason = self._room(len(data))
        if not reason:
            try:
                write_atomic(path, data)
            except OSError as exc:
                self._disk_failed(path, exc)
                reason = "disk_error"
        if reason:
            return self._hold(entry, reason)
        with self.cond:
            self.entries[entry.seq] = replace(entry, on_disk=True, size=len(data))
            self.kept, self.bytes = self.kept + 1, self.bytes + len(data)
            self.full, self.reason = False, ""
            self.cond.notify_all()
        return True

    def _room(self, size: int) -> str:
        """Why a file of ``size`` bytes is not to be written now ("" when it is)."""
        with self.cond:
            if self.kept >= self.capacity:
                return "full"
        return self._space(size)

    def _space(self, size: int) -> str:
        """``low_space`` when writing ``size`` bytes would eat into the reserve; notes (and says, once) when the work
        folder is nearly full: less than twice the reserve or a tenth of the disk left, or 90% of the capacity."""
        assert self.folder is not None
        try:
            stats = os.statvfs(self.folder)
        except OSError as exc:
            self._disk_failed(self.folder, exc)
            return "disk_error"
        block = stats.f_frsize or 4096
        free, total = stats.f_bavail * block, stats.f_blocks * block
        need = -(-size // block) * block
        with self.cond:
            nearly = free - need < max(2 * self.reserve, total // 10) or self.kept >= 0.9 * self.capacity
            turned, self.nearly_full, self.free = nearly and not self.nearly_full, nearly, free
            pending = len(self.entries)
        if turned:
            log_event(
                logger,
                "outbox.nearly_full",
                level=logging.WARNING,
                path=str(self.folder),
                free_bytes=free,
                reserve_bytes=self.reserve,
                pending=pending,
                capacity=self.capacity,
            )
        return "low_space" if free - need < self.reserve else ""

    def _hold(self, entry: Entry, reason: str) -> bool:
        """The disk did not take ``entry``: in memory, to be sent in its turn (loudly), or lost past the bound."""
        with self.cond:
            self.full, self.reason = True, reason
            held = self.held < self.overflow
            if held:
                self.held += 1
                self.entries[entry.seq] = replace(entry, on_disk=False, size=0)
                self.cond.notify_all()
            in_memory = self.held
        tally = "counts_unkept" if held else "counts_lost"
        if held:
            self.counters.add(tally)
        else:
            self._lose(1)
        total = int(self.counters.get(tally))
        if held:
            event, level = "outbox.not_kept", logging.WARNING
            said = {"in_memory": in_memory, "unkept": total, "note": HELD_NOTE}
        else:
            event, level = "outbox.full", logging.ERROR
            said = {"capacity": self.capacity, "in_memory": in_memory, "lost": total}
        log_event(logger, event, level=level, seq=entry.seq, reason=reason, **said)
        return False

    def _disk_failed(self, path: Path, exc: OSError) -> None:
        with self.cond:
            count = int((self.disk_error or {}).get("count", 0)) + 1
            self.disk_error = {"path": str(path), "error": describe(exc), "count": count}
        self.counters.add("disk_errors")
        log_event(logger, "outbox.disk_error", level=logging.ERROR, path=str(path), error=describe(exc))

    def oldest(self, timeout: float) -> Entry | None:
        with self.cond:
            if not self.entries:
                self.cond.wait(timeout)
            return next(iter(self.entries.values()), None)

    def remove(self, seq: int) -> None:
        """The transport confirmed the entry: forget it (a cut before the unlink only sends it again; so does an
        unlink the disk refuses: the same ``event_id``, which the consumer drops)."""
        if self.folder is not None:
            try:
                self._path(seq).unlink(missing_ok=True)
            except OSError as exc:
                self._disk_failed(self._path(seq), exc)
        with self.cond:
            entry = self.entries.pop(seq, None)
            if entry is not None and entry.on_disk:
                self.kept, self.bytes = self.kept - 1, self.bytes - entry.size
            elif entry is not None and self.folder is not None:
                self.held -= 1
            self.cond.notify_all()

    def abandon(self) -> int:
        """The process stops: what is held only in memory is lost now. Counted (``counts_lost``); returns how many."""
        with self.cond:
            lost = sum(1 for e in self.entries.values() if not e.on_disk)
        if lost:
            self._lose(lost)
        return lost

    def __len__(self) -> int:
        with self.cond:
            return len(self.entries)

    def _still_full(self) -> bool:
        """Whether the next entry would not be kept on disk: the capacity reached, the reserve reached (checked
        now, which refreshes ``free_bytes`` and ``nearly_full`` between crossings), or a disk error that no write
        has cleared since."""
        with self.cond:
            full, reason, kept, pending = self.full, self.reason, self.kept, len(self.entries)
        if self.folder is None:
            return pending >= self.capacity
        low = bool(self._space(TYPICAL_RECORD))
        return (full and reason == "disk_error") or kept >= self.capacity or low

    def status(self) -> dict[str, Any]:
        """What health says about the outbox (edge_component/schemas/health.schema.json, counts.outbox)."""
        full = self._still_full()
        with self.cond:
            status: dict[str, Any] = {"pending": len(self.entries), "capacity": self.capacity, "full": full}
            status["in_memory"] = self.held if self.folder is not None else len(self.entries)
            status["lost"] = self.lost + self.left
            if self.entries:  # the seqs below it are delivered or lost: a consumer's gap report needs it (issue 34)
                status["oldest_seq"] = next(iter(self.entries))
            if self.folder is not None:
                status.update(bytes=self.bytes, nearly_full=self.nearly_full, reserve_bytes=self.reserve)
                if self.free is not None:
                    status["free_bytes"] = self.free
            if self.unreadable:
                status["unreadable"] = self.unreadable
            if self.disk_error is not None:
                status["disk_error"] = dict(self.disk_error)
            return status
