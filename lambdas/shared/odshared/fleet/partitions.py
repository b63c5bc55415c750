"""The converted ledger tables' partitions in Glue: each object Firehose writes names its partition in its key,
``fleet/parquet/<table>/YYYY/MM/DD/HH/<device>/<object>``, and this registers it as it lands, and drops it once
the lifecycle rule has expired the last object in its folder (else Glue would keep a partition per device-hour
forever, and every fleet-wide query would list them).

Why registered, not projected: Athena's projection of a device needs either every device's name in the table
(``enum``) or a fixed device in every query (``injected``), which the fleet-wide named queries cannot give. A
partition registered twice is one partition (Glue says it exists: nothing to do), so a redelivered event, two
objects of one partition and a replay of every event are all harmless. A key this cannot read (an object a stack
from before the partitioning wrote straight under its hour, which no partition can name: odctl counts backfill
moves those) fails loudly: Lambda retries, then its dead-letter queue keeps the event (an alarm says so), so no
object is left unread without a word.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from odshared.core.log import log_event
from odshared.fleet.ledger import OBJECT_CREATED, OBJECT_DELETED, PARTITION_FORMAT, TABLES, Table

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


def _is_hour(text: str) -> bool:
    try:
        datetime.strptime(text, PARTITION_FORMAT)
    except ValueError:
        return False
    return True


def _under_table(key: str) -> tuple[Table, list[str]] | None:
    """The converted table whose folder holds ``key``, and the key's folders and name below it."""
    for table in TABLES:
        if key.startswith(table.prefix):
            return table, key[len(table.prefix) :].split("/")
    return None


def unpartitioned(key: str) -> bool:
    """Whether ``key`` is an object straight under an arrival hour of a converted table's folder: the layout of a
    stack from before the partitioning by device (odctl counts backfill moves those)."""
    found = _under_table(key)
    if found is None:
        return False
    parts = found[1]
    return len(parts) == HOUR_PARTS + 1 and bool(parts[-1]) and _is_hour("/".join(parts[:HOUR_PARTS]))


def partition_of(key: str) -> Partition:
    """The partition an object Firehose wrote belongs to, from its key."""
    found = _under_table(key)
    if found is None:
        raise UnknownObject(f"{key}: under no converted table's folder ({', '.join(t.prefix for t in TABLES)})")
    table, parts = found
    dt, device = "/".join(parts[:HOUR_PARTS]), "/".join(parts[HOUR_PARTS:-1])
    if not _is_hour(dt):
        raise UnknownObject(f"{key}: no arrival hour (YYYY/MM/DD/HH) after {table.prefix}")
    if not device or not parts[-1]:
        raise UnknownObject(f"{key}: no device folder after the hour {dt}")
    return Partition(table.name, dt, device, f"{table.prefix}{dt}/{device}/")


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


def drop_emptied(glue: Any, s3: Any, database: str, bucket: str, keys: Iterable[str]) -> list[Partition]:
    """Each deleted object's partition dropped from Glue once no object is left in its folder (the lifecycle rule
    expires a device's hour object by object); the partitions dropped. A key that names no partition had none to
    drop (an object a stack from before the partitioning wrote): logged, nothing else."""
    partitions: dict[str, Partition] = {}
    for key in keys:
        try:
            partition = partition_of(key)
        except UnknownObject as exc:
            log_event(logger, "ledger.partition_unknown_deleted", level=logging.WARNING, why=str(exc))
            continue
        partitions[partition.folder] = partition
    dropped = []
    for partition in partitions.values():
        if s3.list_objects_v2(Bucket=bucket, Prefix=partition.folder, MaxKeys=1).get("KeyCount", 0):
            continue  # another object of the hour is still there
        try:
            glue.delete_partition(DatabaseName=database, TableName=partition.table, PartitionValues=partition.values)
        except glue.exceptions.EntityNotFoundException:
            continue  # dropped already (a redelivered event), or never registered
        dropped.append(partition)
        log_event(logger, "ledger.partition_dropped", table=partition.table, dt=partition.dt, device=partition.device)
    return dropped


def apply_event(event: dict[str, Any], glue: Any, s3: Any, database: str) -> dict[str, list[str]]:
    """An S3 EventBridge event on the ledger's Parquet: an object created registers its partition, one deleted
    drops a partition left empty. The partitions' folders registered or dropped."""
    kind, bucket, keys = keys_of_event(event)
    if kind == OBJECT_DELETED:
        return {"dropped": [p.folder for p in drop_emptied(glue, s3, database, bucket, keys)]}
    return {"registered": [p.folder for p in register(glue, database, bucket, keys)]}


def keys_of_event(event: dict[str, Any]) -> tuple[str, str, list[str]]:
    """The detail type, bucket and object key of an EventBridge "Object Created" or "Object Deleted" event from S3.
    The key is URL-decoded whether or not S3 encoded it ([U]): a thing name (``[a-zA-Z0-9:_-]``) and Firehose's
    object names hold no ``%`` or ``+``, so decoding a key written as it is changes nothing."""
    detail = event.get("detail") or {}
    kind = event.get("detail-type")
    try:
        if kind not in (OBJECT_CREATED, OBJECT_DELETED):
            raise KeyError(kind)
        return kind, detail["bucket"]["name"], [unquote_plus(detail["object"]["key"])]
    except (KeyError, TypeError):
        raise UnknownObject(f"not an S3 Object Created or Object Deleted event: {str(event)[:200]}") from None
