"""The converted ledger tables' partitions in Glue: each object Firehose writes names its partition in its key,
``fleet/parquet/<table>/YYYY/MM/DD/HH/<device>/<object>``, and this registers it as it lands.

Why registered, not projected: Athena's projection of a device needs either every device's name in the table
(``enum``) or a fixed device in every query (``injected``), which the fleet-wide named queries cannot give. A
partition registered twice is one partition (Glue says it exists: nothing to do), so a redelivered event, two
objects of one partition and a replay of every event are all harmless. A key this cannot read (an object a stack
from before the partitioning wrote straight under its hour, which no partition can name) fails loudly: Lambda
retries, then its dead-letter queue keeps the event (an alarm says so), so no object is left unread without a
word.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from odshared.core.log import log_event
from odshared.fleet.ledger import PARTITION_FORMAT, TABLES

logger = logging.getLogger(__name__)
HOUR_PARTS = PARTITION_FORMAT.count("/") + 1  # YYYY/MM/DD/HH: four folders
BATCH = 100  # Glue's BatchCreatePartition takes at most 100 partitions a call


class UnknownObject(ValueError):
    """A key under the ledger's Parquet folders that is no partition's object."""


@dataclass(frozen=True)
class Partition:
    table: str
    dt: str  # the arrival hour, yyyy/MM/dd/HH
    device: str
    folder: str  # the partition's key prefix in the bucket, ending in /

    @property
    def values(self) -> list[str]:
        """Its values in the tables' partition key order (``Table.partition_keys``)."""
        return [self.dt, self.device]


def partition_of(key: str) -> Partition:
    """The partition an object Firehose wrote belongs to, from its key."""
    for table in TABLES:
        if not key.startswith(table.prefix):
            continue
        parts = key[len(table.prefix) :].split("/")
        dt, device = "/".join(parts[:HOUR_PARTS]), "/".join(parts[HOUR_PARTS:-1])
        try:
            datetime.strptime(dt, PARTITION_FORMAT)
        except ValueError:
            raise UnknownObject(f"{key}: no arrival hour (YYYY/MM/DD/HH) after {table.prefix}") from None
        if not device or not parts[-1]:
            raise UnknownObject(f"{key}: no device folder after the hour {dt}")
        return Partition(table.name, dt, device, f"{table.prefix}{dt}/{device}/")
    raise UnknownObject(f"{key}: under no converted table's folder ({', '.join(t.prefix for t in TABLES)})")


def _storage(glue: Any, database: str, table: str) -> dict[str, Any]:
    """The table's storage descriptor: a partition reads its objects as the table does (columns, SerDe)."""
    return dict(glue.get_table(DatabaseName=database, Name=table)["Table"]["StorageDescriptor"])


def register(glue: Any, database: str, bucket: str, keys: Iterable[str]) -> list[Partition]:
    """Each object's partition registered in Glue (those Glue already holds left as they are); the partitions
    this call created."""
    wanted: dict[str, dict[str, Partition]] = {}
    for key in keys:
        partition = partition_of(key)
        wanted.setdefault(partition.table, {})[partition.folder] = partition
    created = []
    for table, partitions in wanted.items():
        listed = list(partitions.values())
        template = _storage(glue, database, table)
        for first in range(0, len(listed), BATCH):
            batch = listed[first : first + BATCH]
            inputs = [
                {"Values": p.values, "StorageDescriptor": {**template, "Location": f"s3://{bucket}/{p.folder}"}}
                for p in batch
            ]
            answer = glue.batch_create_partition(DatabaseName=database, TableName=table, PartitionInputList=inputs)
            errors = answer.get("Errors", [])
            unexpected = [e for e in errors if e["ErrorDetail"].get("ErrorCode") != "AlreadyExistsException"]
            if unexpected:
                detail = unexpected[0]["ErrorDetail"]
                raise RuntimeError(
                    f"Glue refused partition {unexpected[0]['PartitionValues']} of {table}: "
                    f"{detail.get('ErrorCode')}: {detail.get('ErrorMessage')}"
                )
            existing = {tuple(e["PartitionValues"]) for e in errors}
            created += [p for p in batch if tuple(p.values) not in existing]
    for partition in created:
        log_event(
            logger, "ledger.partition_registered", table=partition.table, dt=partition.dt, device=partition.device
        )
    return created


def keys_of_event(event: dict[str, Any]) -> tuple[str, list[str]]:
    """The bucket and object key of an EventBridge "Object Created" event from S3. The key is URL-decoded whether or
    not S3 encoded it ([U]): a thing name (``[a-zA-Z0-9:_-]``) and Firehose's object names hold no ``%`` or ``+``,
    so decoding a key written as it is changes nothing."""
    detail = event.get("detail") or {}
    try:
        return detail["bucket"]["name"], [unquote_plus(detail["object"]["key"])]
    except (KeyError, TypeError):
        raise UnknownObject(f"not an S3 Object Created event: {str(event)[:200]}") from None
