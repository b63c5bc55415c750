"""A ledger written before the tables were partitioned by device, moved into the layout they read now.

A stack from before the partitioning (stop 40) had Firehose write each hour's Parquet straight under the hour,
``fleet/parquet/<table>/YYYY/MM/DD/HH/<object>``. The tables now read ``.../HH/<device>/<object>`` through partitions
registered per device-hour (odshared.fleet.partitions), so those objects are in no partition: after the upgrade the
queries no longer see the history they hold. This splits each such object by its rows' ``thing`` (what Firehose's
partitioning reads, ``DEVICE_QUERY``) into one object per device under the same name, the rows and the file's schema
as they were, registers their partitions, and only then deletes the original. Run twice, or cut short and run again,
it writes the same objects again and counts nothing twice: the original is in no partition, and each part replaces
its own copy. An object with rows of no thing (which Firehose would now refuse whole) is left where it is, named.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from odshared.core.log import log_event
from odshared.fleet.ledger import DEVICE_QUERY, PARTITION_FORMAT, TABLES
from odshared.fleet.partitions import HOUR_PARTS, register

logger = logging.getLogger(__name__)
THING = DEVICE_QUERY.removeprefix(".")  # the column the device's folder is named after


@dataclass
class Backfill:
    """What a run moved (``written``: the new objects), found to move (a dry run), and left."""

    moved: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    left: dict[str, str] = field(default_factory=dict)  # key: why


def legacy_keys(s3: Any, bucket: str) -> Iterator[str]:
    """The objects straight under an arrival hour of a converted table's folder: the layout before the partitioning."""
    paginator = s3.get_paginator("list_objects_v2")
    for table in TABLES:
        for page in paginator.paginate(Bucket=bucket, Prefix=table.prefix):
            for item in page.get("Contents", []):
                parts = item["Key"][len(table.prefix) :].split("/")
                if len(parts) == HOUR_PARTS + 1 and parts[-1] and _is_hour("/".join(parts[:HOUR_PARTS])):
                    yield item["Key"]


def _is_hour(text: str) -> bool:
    try:
        datetime.strptime(text, PARTITION_FORMAT)
    except ValueError:
        return False
    return True


def split_by_device(data: bytes) -> tuple[dict[str, bytes], int]:
    """The Parquet object's rows per device (each part a Parquet file with the object's own schema, snappy as
    Firehose writes it), and how many rows name no thing."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rows = pq.read_table(io.BytesIO(data))
    things = rows.column(THING)
    nameless = int(pc.sum(pc.or_kleene(pc.is_null(things), pc.equal(things, "")).fill_null(True)).as_py() or 0)
    parts = {}
    for thing in sorted(t for t in pc.unique(things).to_pylist() if t):
        out = io.BytesIO()
        pq.write_table(rows.filter(pc.equal(things, thing)), out, compression="snappy")
        parts[thing] = out.getvalue()
    return parts, nameless


def backfill(s3: Any, glue: Any, bucket: str, database: str, dry_run: bool = False) -> Backfill:
    """Every object of the old layout split by device, its partitions registered, then the original deleted (see
    the module's docstring); ``dry_run``: only what would move, and what would be left."""
    done = Backfill()
    for key in legacy_keys(s3, bucket):
        parts, nameless = split_by_device(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        if nameless:
            done.left[key] = f"{nameless} row(s) name no {THING}: Firehose would not partition them"
            log_event(logger, "backfill.left", level=logging.ERROR, key=key, rows=nameless)
            continue
        folder, name = key.rsplit("/", 1)
        targets = {f"{folder}/{thing}/{name}": part for thing, part in parts.items()}
        done.moved.append(key)
        if dry_run:
            continue
        for target, part in targets.items():
            s3.put_object(Bucket=bucket, Key=target, Body=part)
        register(glue, database, bucket, list(targets))
        s3.delete_object(Bucket=bucket, Key=key)
        done.written += targets
        log_event(logger, "backfill.moved", key=key, devices=len(targets))
    return done
