"""Ingestion map item: one video -> its frames, its part of the labeling manifest and its contact sheet."""

from __future__ import annotations

from typing import Any

from odshared.core.log import configure
from odshared.data.ingest import IngestVideo, ingest_video

configure()


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    remaining = (lambda: context.get_remaining_time_in_millis() / 1000) if context else None
    return ingest_video(IngestVideo.from_event(event), remaining)
