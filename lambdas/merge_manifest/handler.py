"""After the ingestion map: the parts become one labeling manifest; failed videos are listed with their reasons."""

from __future__ import annotations

from typing import Any

from odshared.core.log import configure
from odshared.data.ingest_runs import merge_parts

configure()


def handler(event: dict[str, Any], _context: Any = None) -> dict[str, Any]:
    return merge_parts(event["output_prefix"])
