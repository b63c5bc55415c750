"""A ledger written before the tables were partitioned by device, moved into the layout they read now.

A stack from before the partitioning (stop 40) had Firehose write each hour's Parquet straight under the hour,
``fleet/parquet/<table>/YYYY/MM/DD/HH/<object>``. The tables now read ``.../HH/<device>/<object>`` through partitions
registered per device-hour (odshared.fleet.partitions), so those objects are in no partition: after the upgrade the
queries no longer see the history they hold. This splits each such object by its rows' ``thing`` (what Firehose's
partitioning reads, ``DEVICE_QUERY``) into one object per device under the same name, the rows and the file's schema
as they were, registers their partitions, and only then deletes the original. Run twice, or cut short and run again,
it writes the same objects again and counts nothing twice: the original is in no partition, and each part replaces
its own copy. An object with rows of no thing (which Firehose would now refuse whole), or one that is no Parquet of
the table, is left where it is, named, and the others are moved all the same. A moved object's age starts again:
the lifecycle rule expires it ``retention_days`` after the backfill, not after it first landed.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from odshared.core.log import log_event
from odshared.fleet.ledger import DEVICE_FIELD, TABLES
from odshared.fleet.partitions import register, unpartitioned

logger = logging.getLogger(__name__)


@dataclass
class Backfill:
    """What a run moved (``written``: the new objects; a dry run lists where they would go), and left, so far."""

    moved: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    left: dict[str, str] = field(default_factory=dict)  # key: why


def legacy_keys(s3: Any, bucket: str) -> Iterator[str]:
    """The objects of the layout before the partitioning (``partitions.unpartitioned``), table by table."""
    paginator = s3.get_paginator("list_objects_v2")
    for table in TABLES:
        for page in paginator.paginate(Bucket=bucket, Prefix=table.prefix):
            yield from (item["Key"] for item in page.get("Contents", []) if unpartitioned(item["Key"]))


def split_by_device(data: bytes) -> tuple[dict[str, bytes], int]:
    """The Parquet object's rows per device (each part a Parquet file with the object's own schema, snappy as
    Firehose writes it), and how many rows name no device. Raises ValueError for what is no such Parquet."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rows = pq.read_table(io.BytesIO(data))
    if DEVICE_FIELD not in rows.column_names:
        raise ValueError(f"no {DEVICE_FIELD} column")
    things = rows.column(DEVICE_FIELD)
    nameless = int(pc.sum(pc.or_kleene(pc.is_null(things), pc.equal(things, "")).fill_null(True)).as_py() or 0)
    parts = {}
    for thing in sorted(t for t in pc.unique(things).to_pylist() if t):
        out = io.BytesIO()
        pq.write_table(rows.filter(pc.equal(things, thing)), out, compression="snappy")
        parts[thing] = out.getvalue()
    return parts, nameless


def _move(s3: Any, glue: Any, bucket: str, database: str, key: str, dry_run: bool) -> list[str]:
    """One object split, its parts written and registered, then the original deleted; the parts' keys. Raises
    ValueError naming why the object stays where it is."""
    import pyarrow

    try:
        parts, nameless = split_by_device(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except (pyarrow.ArrowException, ValueError) as exc:
        raise ValueError(f"not a Parquet object of the table ({exc})") from None
    if nameless:
        raise ValueError(f"{nameless} row(s) name no {DEVICE_FIELD}: Firehose would not partition them")
    folder, name = key.rsplit("/", 1)
    targets = {f"{folder}/{thing}/{name}": part for thing, part in parts.items()}
    if dry_run:
        return list(targets)
    for target, part in targets.items():
        s3.put_object(Bucket=bucket, Key=target, Body=part)
    try:
        register(glue, database, bucket, list(targets))
    except RuntimeError as exc:  # Glue refused a partition: the parts are written, the original kept for a rerun
        raise ValueError(str(exc)) from None
    s3.delete_object(Bucket=bucket, Key=key)
    return list(targets)


def backfill(s3: Any, glue: Any, bucket: str, database: str, done: Backfill, dry_run: bool = False) -> Backfill:
    """Every object of the old layout moved (see the module's docstring), recorded in ``done`` as it goes, so an
    AWS error part way still leaves the record of what moved; ``dry_run``: only where each would go."""
    for key in legacy_keys(s3, bucket):
        try:
            targets = _move(s3, glue, bucket, database, key, dry_run)
        except ValueError as exc:
            done.left[key] = str(exc)
            log_event(logger, "backfill.left", level=logging.ERROR, key=key, why=str(exc))
            continue
        done.moved.append(key)
        done.written += targets
        log_event(logger, "backfill.moved", key=key, devices=len(targets), dry_run=dry_run)
    return done
