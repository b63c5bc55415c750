"""An ingestion run's prefix after the map: its parts become one labeling manifest and its failures are listed.

Kept apart from :mod:`odshared.data.ingest` (frames, OpenCV, numpy) so that the MergeManifest Lambda imports the
standard library and boto3 only: its bundle is its handler and odshared, with no wheels (the python3.13 runtime
provides boto3 and botocore, nothing else).

Layout under the run's prefix: ``parts/<video-stem>.manifest`` and ``parts/<video-stem>.json``,
``failed/<video-stem>.json``, ``labeling.manifest``.
"""

from __future__ import annotations

import json
import logging
from pathlib import PurePosixPath
from typing import Any

from odshared.core import storage
from odshared.core.errors import OdError
from odshared.core.log import log_event

logger = logging.getLogger(__name__)


class IngestError(OdError):
    """This video cannot be ingested within the function's limits, or at all."""


def video_stem(uri: str) -> str:
    return PurePosixPath(storage.basename(uri)).stem


def merge_parts(output_prefix: str) -> dict[str, Any]:
    """One labeling manifest from the parts, in video-stem then frame order, streamed line by line (flat memory
    at a million lines), and the videos that failed with their reasons."""
    out = storage.join(output_prefix, "labeling.manifest")
    videos = lines = 0
    with storage.open_writer(out) as handle:
        for part in sorted(storage.list_files(storage.join(output_prefix, "parts"), (".manifest",)), key=video_stem):
            videos += 1
            for line in storage.iter_lines(part):
                if line.strip():
                    handle.write(line.rstrip("\n") + "\n")
                    lines += 1
    if lines == 0:
        raise IngestError(f"no video under the run produced frames ({output_prefix}/parts is empty)")
    failed = failures(output_prefix)
    summary = {"manifest": out, "videos": videos, "lines": lines, "failed": failed}
    log_event(logger, "ingest.merged", manifest=out, videos=videos, lines=lines, failed=len(failed))
    return summary


def failures(output_prefix: str) -> list[dict[str, Any]]:
    """The videos of the run that failed, each with its reason, in video order."""
    prefix = storage.join(output_prefix, "failed")
    return [json.loads(storage.read_text(uri)) for uri in sorted(storage.list_files(prefix, (".json",)))]
