"""The ledger's lines as the stack's bucket holds them, read back through the S3 API for the offline queries.

Only tests read the ledger this way (``odctl counts`` asks Athena, or reads local files): each test that lands the
devices' messages in a bucket (moto's Firehose, or objects put as Firehose writes them) reads them back here and
runs the named queries on them with ``odctl.ledger_local.run_query``, so its totals are Athena's rows' totals.
"""

from __future__ import annotations

from typing import Any

from odctl.ledger_lines import Record
from odshared.fleet.ledger import QUERIED, split_lines


def records_from_s3(s3: Any, bucket: str) -> dict[str, list[Record]]:
    """Every line of every object under the tables' prefixes, as Firehose wrote them
    (``<prefix>YYYY/MM/DD/HH/<object>``), split where Athena splits them; none parsed, none dropped."""
    tables: dict[str, list[Record]] = {t.name: [] for t in QUERIED}
    for table in QUERIED:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=table.prefix):
            for item in page.get("Contents", []):
                dt = "/".join(item["Key"][len(table.prefix) :].split("/")[:4])
                text = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode(errors="replace")
                source = f"s3://{bucket}/{item['Key']}"
                tables[table.name] += [(line, dt, source) for line in split_lines(text)]
    return tables
