"""Review and correction of the counts ledger: each crossing beside its evidence, and corrections written where the
ledger's queries read them (odshared.fleet.corrections says what a correction is and why it is a record of its own).

Evidence is what the device uploaded per crossing (odedge.evidence: ``evidence/<thing>/<event_id>/`` in the data
bucket); offline, a folder of the device's evidence items (``<event_id>/``, as the device keeps them) or a copy of
the bucket's prefix (``<thing>/<event_id>/``: ``aws s3 sync s3://<bucket>/evidence/ FOLDER``). A correction goes
offline to a JSON Lines file (appended, one line), on AWS to one S3 object under ``corrections/``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from odshared.core.errors import InputDataError
from odshared.core.log import log_event
from odshared.fleet.corrections import line, object_key
from odshared.fleet.ledger import EVIDENCE_PREFIX

logger = logging.getLogger(__name__)


def local_evidence(rows: Sequence[dict[str, Any]], folder: Path) -> None:
    """Each row's evidence folder (``evidence``), where one is: ``<event_id>/`` or ``<thing>/<event_id>/``."""
    if not folder.is_dir():
        raise InputDataError(f"--evidence {folder}: no such folder (the device's evidence folder, or a copy of it)")
    for row in rows:
        found = [p for p in (folder / row["event_id"], folder / row["thing"] / row["event_id"]) if p.is_dir()]
        row["evidence"] = str(found[0]) if found else None


def s3_evidence(rows: Sequence[dict[str, Any]], s3: Any, bucket: str) -> None:
    """Each row's evidence URI (``evidence``), where the device uploaded one: one listing per thing, not a request
    per crossing."""
    held: dict[str, set[str]] = {}
    for thing in sorted({str(row["thing"]) for row in rows}):
        prefix = f"{EVIDENCE_PREFIX}/{thing}/"
        held[thing] = set()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            held[thing] |= {p["Prefix"][len(prefix) :].rstrip("/") for p in page.get("CommonPrefixes", [])}
    for row in rows:
        uri = f"s3://{bucket}/{EVIDENCE_PREFIX}/{row['thing']}/{row['event_id']}/"
        row["evidence"] = uri if row["event_id"] in held[str(row["thing"])] else None


def append_local(record: Mapping[str, Any], path: Path) -> str:
    """The record appended to the corrections file as one line, in one write (a file that does not end its last
    line is refused: the new line would join it and both be lost to the queries)."""
    if not path.parent.is_dir():
        raise InputDataError(f"--to {path}: no such folder {path.parent}")
    if path.is_dir():
        raise InputDataError(f"--to {path}: a folder; name the corrections file (e.g. corrections.jsonl)")
    if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
        raise InputDataError(f"--to {path}: its last line is cut short; fix or remove it first")
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line(record))
    log_event(logger, "correction.recorded", correction_id=record["correction_id"], path=str(path))
    return str(path)


def put_s3(record: Mapping[str, Any], s3: Any, bucket: str) -> str:
    """The record as its own object: a put is whole or absent, and no two people's corrections share an object."""
    key = object_key(record)
    s3.put_object(Bucket=bucket, Key=key, Body=line(record).encode(), ContentType="application/json")
    log_event(logger, "correction.recorded", correction_id=record["correction_id"], key=key)
    return f"s3://{bucket}/{key}"
