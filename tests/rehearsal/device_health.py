"""The real device loop's health messages, for the tests that feed them to the canary check, and what the stack's
metrics rule makes of them in CloudWatch.

Kept apart from the rehearsal so the Lambda runtime's tests (no CDK installed) can use it too.
"""

from __future__ import annotations

import json
import time
from pathlib import Path


def health_messages(
    package: Path, video: Path, out: Path, thing: str = "camera-07", model_component: str = ""
) -> list[dict]:
    """What the real device loop publishes on its health topic, running ``package`` on ``video`` as ``thing``, with
    the model component version the recipe passes it (``--model-component``)."""
    from odedge.app import run
    from odedge.config import EdgeConfig

    config = {"model_dir": str(package), "source": str(video), "publisher": "jsonl", "jsonl": str(out)}
    # paced at the video's frame rate, as a camera delivers frames: a health message every 0.3 s of a 3 s run
    config |= {"thing_name": thing, "health_interval": "0.3", "score_threshold": "0.4", "max_frames": "90"}
    config |= {"realtime": "true", "model_component": model_component}
    run(EdgeConfig.from_mapping(config), install_signals=False)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    return [r["message"] for r in records if r["topic"].endswith("/health")]


def report(messages: list[dict], at: float | None = None) -> int:
    """The messages as CloudWatch gets them: the stack's health rule (EMF, timestamped on arrival) then CloudWatch
    Logs' extraction (moto's CloudWatch stores the data)."""
    from odshared.fleet.metrics import HEALTH_METRICS, emf_record
    from tests.rehearsal.emf_extraction import put_records

    now_ms = int((at if at is not None else time.time()) * 1000)
    return put_records([emf_record(HEALTH_METRICS, m, now_ms) for m in messages])
