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

from infra.fleet_data import delivery_prefixes, table_columns
from odctl.ledger_landed import Landed, Placed
from odshared.fleet.ledger import CONVERSION_FAILED, CORRECTIONS, PARTITION_FORMAT, TABLES, split_lines
from tests.rehearsal.firehose_conversion import convert, evaluate_prefix, write_local

BUCKET = "ledger"


def stack_columns() -> dict[str, list[tuple[str, str]]]:
    """Each converted table's Glue columns, as the stack declares them."""
    return {t.name: table_columns(t) for t in TABLES}


def _objects(s3: Any, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _hour(key: str, prefix: str) -> str:
    return "/".join(key[len(prefix) :].split("/")[:4])


def _fetched(s3: Any, bucket: str, folder: Path, prefix: str) -> list[Placed]:
    """Every object under ``prefix`` (``<prefix>YYYY/MM/DD/HH/<object>``) fetched to ``folder``."""
    return [
        (
            write_local(folder, key, s3.get_object(Bucket=bucket, Key=key)["Body"].read()),
            _hour(key, prefix),
            f"s3://{bucket}/{key}",
        )
        for key in _objects(s3, bucket, prefix)
    ]


def landed_from_s3(s3: Any, bucket: str, folder: Path, columns: dict[str, list[tuple[str, str]]]) -> Landed:
    """Every object under the tables' prefixes and Firehose's error output, fetched to ``folder``; the corrections'
    lines split where Athena splits them."""
    landed = Landed(columns)
    for table in TABLES:
        landed.parquet[table.name] = _fetched(s3, bucket, folder, table.prefix)
        landed.rejected[table.name] = _fetched(s3, bucket, folder, f"{table.rejected_prefix}{CONVERSION_FAILED}/")
    landed.lines[CORRECTIONS.name] = [
        (line, _hour(key, CORRECTIONS.prefix), f"s3://{bucket}/{key}")
        for key in _objects(s3, bucket, CORRECTIONS.prefix)
        for line in split_lines(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode(errors="replace"))
    ]
    return landed


def land_lines(
    folder: Path, lines: dict[str, list[str]], arrival: datetime, leaf: str = "object-1", into: Landed | None = None
) -> Landed:
    """Each table's lines as one Firehose object that arrived at ``arrival``, converted as Firehose converts it:
    the Parquet and the rejected records at the keys the stack's streams write them (``s3://ledger/<key>``), added
    to ``into`` when given."""
    columns = stack_columns()
    landed = into or Landed(columns)
    for table in TABLES:
        records = [line.encode() + b"\n" for line in lines.get(table.name, [])]
        parquet, failed = convert(records, columns[table.name], arrival)
        dt = arrival.strftime(PARTITION_FORMAT)
        prefix, rejected_prefix = delivery_prefixes(table)
        key = evaluate_prefix(prefix, arrival) + leaf
        if parquet:
            landed.parquet.setdefault(table.name, []).append(
                (write_local(folder, key, parquet), dt, f"s3://{BUCKET}/{key}")
            )
        key = evaluate_prefix(rejected_prefix, arrival, CONVERSION_FAILED) + leaf
        body = "".join(json.dumps(f) + "\n" for f in failed)
        if failed:
            landed.rejected.setdefault(table.name, []).append(
                (write_local(folder, key, body), dt, f"s3://{BUCKET}/{key}")
            )
    return landed
