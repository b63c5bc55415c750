"""A canary camera that runs what the Greengrass stand-in says it runs.

Each time the stand-in's device applies a deployment that changes the model component version it runs, the real
device loop runs the model package that version stands for (``package_for``), its health messages carrying that
version (``--model-component``); the device then reports them, one every ``every`` seconds, through the stack's EMF
transformation (tests/rehearsal/device_health.report) for as long as it runs that version. A version
``package_for`` maps to None dies on start: it reports nothing. ``trouble_for`` makes the loop running a version
misbehave (a slower model, a link that refuses publishes: device_health.Trouble); a device the stand-in has
offline sends nothing at all.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.rehearsal.device_health import Trouble, health_messages, report


class CanaryDevice:
    def __init__(
        self,
        greengrass: Any,
        thing: str,
        component: str,
        package_for: Callable[[str], Path | None],
        video: Path,
        workdir: Path,
        every: float = 1.0,
        trouble_for: Callable[[str], Trouble | None] | None = None,
    ) -> None:
        self.greengrass, self.thing, self.component = greengrass, thing, component
        self.trouble_for = trouble_for or (lambda _: None)
        self.package_for, self.video, self.workdir, self.every = package_for, video, workdir, every
        self.reported: Counter[str] = Counter()  # model component version -> health messages reported as it
        self.ran: list[str] = []  # the versions it switched to, in order
        self._messages: dict[tuple[Path, str, Trouble | None], list[dict]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.error: BaseException | None = None

    def messages(self, version: str) -> list[dict]:
        package = self.package_for(version)
        if package is None:
            return []
        trouble = self.trouble_for(version)
        key = (Path(package), version, trouble)
        if key not in self._messages:
            out = self.workdir / f"{self.thing}-{version}-{len(self._messages)}.jsonl"
            out.unlink(missing_ok=True)  # the JSON Lines transport appends: an earlier test's run is no evidence
            self._messages[key] = health_messages(Path(package), self.video, out, self.thing, version, trouble)
            assert self._messages[key], f"the device loop sent no health message running {package}"
        return self._messages[key]

    def _loop(self) -> None:
        try:
            running, messages, sent = None, [], 0
            while not self._stop.is_set():
                now = self.greengrass.running(self.thing, self.component)
                if now != running:
                    running, sent = now, 0
                    messages = self.messages(now) if now else []
                    if now:
                        self.ran.append(now)
                if messages and self.thing not in self.greengrass.offline:
                    report([messages[sent % len(messages)]])
                    self.reported[running] += 1
                    sent += 1
                self._stop.wait(self.every)
        except BaseException as error:  # noqa: BLE001 - surfaced by stop()
            self.error = error

    def __enter__(self) -> CanaryDevice:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        if self.error is not None:
            raise self.error


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
