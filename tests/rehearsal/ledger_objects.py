"""The ledger as the stack's bucket holds it, fetched for the offline queries; and lines landed as Firehose lands
them, for tests that spoil a message on purpose.

Only tests read the ledger this way (``odctl counts`` asks Athena, or reads local files): each test that lands the
devices' messages in a bucket (moto's Firehose, then ``firehose_conversion``) fetches them here and runs the named
queries on them with ``odctl.ledger_local.run_query``, so its totals are Athena's rows' totals.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from infra.fleet_data import DEVICE_KEYS, delivery_prefixes, table_columns
from odctl.ledger_landed import Landed, Placed
from odshared.fleet.ledger import CORRECTIONS, DEVICE, ERROR_TYPES, PARTITION_FORMAT, TABLES, Table, split_lines
from odshared.fleet.partitions import partition_of
from tests.rehearsal.firehose_conversion import deliver, evaluate_prefix, write_local

BUCKET = "ledger"
DATABASE = "fleet"  # the Glue database the tests create the stack's tables in


def stack_columns() -> dict[str, list[tuple[str, str]]]:
    """Each converted table's Glue columns, as the stack declares them."""
    return {t.name: table_columns(t) for t in TABLES}


def _objects(s3: Any, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _hour(key: str, prefix: str) -> str:
    return "/".join(key[len(prefix) :].split("/")[:4])


def _fetch(s3: Any, bucket: str, folder: Path, key: str, partitions: dict[str, str]) -> Placed:
    return (
        write_local(folder, key, s3.get_object(Bucket=bucket, Key=key)["Body"].read()),
        partitions,
        f"s3://{bucket}/{key}",
    )


def _registered(s3: Any, glue: Any, bucket: str, folder: Path, table: Table) -> list[Placed]:
    """The objects Athena reads of a table whose partitions are registered: those under a partition Glue holds
    (``glue``: the registered ones), each with its partition's values."""
    pages = glue.get_paginator("get_partitions").paginate(DatabaseName=DATABASE, TableName=table.name)
    placed = []
    for partition in (p for page in pages for p in page["Partitions"]):
        location = partition["StorageDescriptor"]["Location"].removeprefix(f"s3://{bucket}/")
        values = dict(zip(table.partition_keys, partition["Values"], strict=True))
        placed += [_fetch(s3, bucket, folder, key, values) for key in _objects(s3, bucket, location)]
    return placed


def landed_from_s3(
    s3: Any, bucket: str, folder: Path, columns: dict[str, list[tuple[str, str]]], glue: Any = None
) -> Landed:
    """Every object under the tables' prefixes and Firehose's error output, fetched to ``folder``; the corrections'
    lines split where Athena splits them. ``glue``: the converted tables' objects are those under the partitions
    registered in it (database ``DATABASE``), as Athena reads them; else every one, its partition read from its
    key."""
    landed = Landed(columns)
    for table in TABLES:
        if glue is not None:
            landed.parquet[table.name] = _registered(s3, glue, bucket, folder, table)
        else:
            landed.parquet[table.name] = [
                _fetch(s3, bucket, folder, key, dict(zip(table.partition_keys, p.values, strict=True)))
                for key in _objects(s3, bucket, table.prefix)
                for p in [partition_of(key)]
            ]
        landed.rejected[table.name] = [
            _fetch(s3, bucket, folder, key, {"ledger": table.name, "error_type": kind, "dt": _hour(key, prefix)})
            for kind in ERROR_TYPES
            for prefix in [f"{table.rejected_prefix}{kind}/"]
            for key in _objects(s3, bucket, prefix)
        ]
    landed.lines[CORRECTIONS.name] = [
        (line, _hour(key, CORRECTIONS.prefix), f"s3://{bucket}/{key}")
        for key in _objects(s3, bucket, CORRECTIONS.prefix)
        for line in split_lines(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode(errors="replace"))
    ]
    return landed


def land_lines(
    folder: Path, lines: dict[str, list[str]], arrival: datetime, leaf: str = "object-1", into: Landed | None = None
) -> Landed:
    """Each table's lines as one Firehose buffer that arrived at ``arrival``, partitioned and converted as Firehose
    does it: the Parquet objects and the refused records at the keys the stack's streams write them
    (``s3://ledger/<key>``), added to ``into`` when given."""
    columns = stack_columns()
    landed = into or Landed(columns)
    for table in TABLES:
        records = [line.encode() + b"\n" for line in lines.get(table.name, [])]
        objects, failed = deliver(records, columns[table.name], arrival, DEVICE_KEYS)
        dt = arrival.strftime(PARTITION_FORMAT)
        prefix, rejected_prefix = delivery_prefixes(table)
        for keys, parquet in objects.items():
            key = evaluate_prefix(prefix, arrival, keys=dict(keys)) + leaf
            partitions = dict(zip(table.partition_keys, (dt, dict(keys)[DEVICE]), strict=True))
            landed.parquet.setdefault(table.name, []).append(
                (write_local(folder, key, parquet), partitions, f"s3://{BUCKET}/{key}")
            )
        for kind, documents in failed.items():
            key = evaluate_prefix(rejected_prefix, arrival, kind) + leaf
            body = "".join(json.dumps(d) + "\n" for d in documents)
            partitions = {"ledger": table.name, "error_type": kind, "dt": dt}
            landed.rejected.setdefault(table.name, []).append(
                (write_local(folder, key, body), partitions, f"s3://{BUCKET}/{key}")
            )
    return landed
