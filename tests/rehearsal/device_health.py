"""The real device loop's health messages, for the tests that feed them to the canary check.

Kept apart from the rehearsal so the Lambda runtime's tests (no CDK installed) can use it too.
"""

from __future__ import annotations

import json
from pathlib import Path


def health_messages(package: Path, video: Path, out: Path) -> list[dict]:
    """What the real device loop publishes on its health topic, running ``package`` on ``video``."""
    from odedge.app import run
    from odedge.config import EdgeConfig

    config = {"model_dir": str(package), "source": str(video), "publisher": "jsonl", "jsonl": str(out)}
    # paced at the video's frame rate, as a camera delivers frames: a health message every 0.3 s of a 3 s run
    config |= {"thing_name": "camera-07", "health_interval": "0.3", "score_threshold": "0.4", "max_frames": "90"}
    config |= {"realtime": "true"}
    run(EdgeConfig.from_mapping(config), install_signals=False)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    return [r["message"] for r in records if r["topic"].endswith("/health")]
