"""The real device loop's health messages, for the tests that feed them to the canary check, and what the stack's
metrics rule makes of them in CloudWatch.

Kept apart from the rehearsal so the Lambda runtime's tests (no CDK installed) can use it too.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock


@dataclass(frozen=True)
class Trouble:
    """How the real device loop is made to misbehave: a model that takes ``slow_inference`` s more per frame; a
    transport that refuses the first ``refuse_first`` publishes, then everything for ``outage`` s, with a buffer of
    ``buffer_size`` messages in front (the component's BufferSize)."""

    slow_inference: float = 0.0
    refuse_first: int = 0
    outage: float = 0.0
    buffer_size: int | None = None


class RefusingLink:
    """The link behind the device's transport (JSON Lines here), refusing publishes as ``Trouble`` says: each
    refusal raises as a broker or nucleus that is away does, so the publisher's own retry and give-up run."""

    def __init__(self, trouble: Trouble) -> None:
        self.trouble, self.attempts, self.lock = trouble, 0, threading.Lock()
        self.outage_until: float | None = None

    def refused(self) -> bool:
        with self.lock:
            self.attempts += 1
            if self.attempts <= self.trouble.refuse_first:
                return True
            if self.outage_until is None:
                self.outage_until = time.monotonic() + self.trouble.outage
            return time.monotonic() < self.outage_until


def _troubled(stack: ExitStack, trouble: Trouble) -> None:
    import odedge.app
    from odedge.publishers import JsonlTransport

    real_runtime, real_send, link = odedge.app.create_runtime, JsonlTransport.send, RefusingLink(trouble)

    def slow_runtime(*args: Any, **kwargs: Any) -> Any:
        runtime = real_runtime(*args, **kwargs)
        predict = runtime.predict

        def slower(blob: Any) -> Any:
            time.sleep(trouble.slow_inference)
            return predict(blob)

        runtime.predict = slower
        return runtime

    def refusing_send(transport: Any, topic: str, payload: bytes) -> None:
        if link.refused():
            raise ConnectionError(f"refused {topic}: the link is down")
        real_send(transport, topic, payload)

    if trouble.slow_inference:
        stack.enter_context(mock.patch.object(odedge.app, "create_runtime", slow_runtime))
    if trouble.refuse_first or trouble.outage:
        stack.enter_context(mock.patch.object(JsonlTransport, "send", refusing_send))


def health_messages(
    package: Path,
    video: Path,
    out: Path,
    thing: str = "camera-07",
    model_component: str = "",
    trouble: Trouble | None = None,
) -> list[dict]:
    """What the real device loop publishes on its health topic, running ``package`` on ``video`` as ``thing``, with
    the model component version the recipe passes it (``--model-component``), misbehaving as ``trouble`` says."""
    from odedge.app import run
    from odedge.config import EdgeConfig

    trouble = trouble or Trouble()
    config = {"model_dir": str(package), "source": str(video), "publisher": "jsonl", "jsonl": str(out)}
    # paced at the video's frame rate, as a camera delivers frames: a health message every 0.3 s of a 3 s run
    config |= {"thing_name": thing, "health_interval": "0.3", "score_threshold": "0.4", "max_frames": "90"}
    config |= {"realtime": "true", "model_component": model_component}
    if trouble.buffer_size:
        config["buffer_size"] = str(trouble.buffer_size)
    with ExitStack() as stack:
        _troubled(stack, trouble)
        run(EdgeConfig.from_mapping(config), install_signals=False)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    return [r["message"] for r in records if r["topic"].endswith("/health")]


def report(messages: list[dict], at: float | None = None) -> int:
    """The messages as CloudWatch gets them: the stack's health rule (EMF, timestamped on arrival) then CloudWatch
    Logs' extraction (moto's CloudWatch stores the data)."""
    from odshared.fleet.metrics import HEALTH_METRICS, rule_sql
    from tests.rehearsal.emf_extraction import put_records
    from tests.rehearsal.iot_sql import select

    now_ms = int((at if at is not None else time.time()) * 1000)
    sql = rule_sql(HEALTH_METRICS)  # the health rule's SQL as the stack deploys it
    return put_records([select(sql, m, now_ms) for m in messages])
