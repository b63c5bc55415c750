"""The device's counting path without a camera, for the ledger's tests: the real Counter, its on-disk outbox (a
capacity), the CountsOutbox, the real sender delivering oldest first to a JSON Lines transport, and the real health
message. A box walked across the door makes each crossing; the broker is "down" until ``deliver`` runs the sender.

Every crossing and health message a test feeds the ledger comes from here (or from the real loop), never written
by hand: only what a test takes away (a lost delivery) or adds (a redelivery) is the test's own.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from odedge.counting import Counter, Line
from odedge.messages import CountsOutbox, health_message
from odedge.outbox import Outbox
from odedge.postprocess import Detection
from odedge.publishers import JsonlTransport, OutboxSender
from odedge.telemetry import Counters

DOOR = Line("door", (0.5, 0.0), (0.5, 1.0), "left-to-right")
SIDES = (280, 380)  # box centres (px of a 640-wide frame) either side of the door


class OutboxDevice:
    def __init__(self, folder: Path, thing: str = "camera-07", capacity: int = 100) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.thing, self.folder = thing, folder
        self.counters = Counters()
        self.outbox = Outbox(str(folder / "outbox"), capacity, self.counters, reserve=0)
        self.topic = f"od/{thing}/counts"
        counts = CountsOutbox(self.outbox, thing, self.topic)
        self.counter = Counter([DOOR], [], str(folder / "counts.json"), outbox=counts)
        self.sent = folder / "sent.jsonl"  # what the transport delivered: {"topic", "message"} per line
        self.reports: list[dict[str, Any]] = []  # the health messages published, as {"topic", "message"}
        self.side, self.clock = 0, time.time()

    def cross(self, times: int) -> list[int]:
        """Walk the box across the door ``times`` times, a frame a step: the seqs of the crossings counted."""
        seqs: list[int] = []
        if not self.counter.seq:  # the box is first seen on the left: its first step is a crossing
            self._step()
        for _ in range(times):
            self.side = 1 - self.side
            seqs += [event["seq"] for event in self._step()]
        return seqs

    def _step(self) -> list[dict[str, Any]]:
        x = SIDES[self.side]
        self.clock += 0.1
        return self.counter.observe(
            [Detection("blue box", 0, 0.9, (x - 30, 150, x + 30, 210), 1)], (640, 360), self.clock
        )

    def deliver(self) -> None:
        """The broker is back: the real sender empties the outbox, oldest first."""
        sender = OutboxSender(self.outbox, JsonlTransport(str(self.sent)), self.counters)
        assert sender.flush(10), "the outbox did not empty"
        sender.close()

    def health(self) -> dict[str, Any]:
        """The health message the device sends now (recorded as published); a millisecond apart from the last."""
        time.sleep(0.002)
        payload = health_message(self.thing, "m", self.counters.snapshot(), 0.0, {}, 1.0, self.counter.summary())
        message = json.loads(payload)
        self.reports.append({"topic": f"od/{self.thing}/health", "message": message})
        return message

    def delivered(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.sent.read_text().splitlines()] if self.sent.exists() else []

    def ledger(self, drop: set[int] = frozenset(), again: set[int] = frozenset()) -> list[dict[str, Any]]:
        """What reached the ledger: every crossing delivered but those in ``drop`` (lost on the way), those in
        ``again`` twice (a redelivery), and every health message published."""
        crossings = [r for r in self.delivered() if r["message"]["seq"] not in drop]
        return crossings + [r for r in crossings if r["message"]["seq"] in again] + self.reports
