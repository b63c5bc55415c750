"""After the ingestion map: the parts become one labeling manifest; failed videos are listed with their reasons."""

from __future__ import annotations

from typing import Any

from odshared.ingest import merge_parts
from odshared.log import configure

configure()


def handler(event: dict[str, Any], _context: Any = None) -> dict[str, Any]:
    return merge_parts(event["output_prefix"])
