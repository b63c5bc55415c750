"""The ledger's named queries without Athena: DuckDB over the same messages, in the same tables.

Messages come from local JSON Lines (what ``odctl detect --out`` and ``odctl watch --out`` write) or from the
stack's bucket through the S3 API (the Firehose layout: the partition ``dt`` is the object's arrival hour). The
query text is the one Athena runs; sqlglot transpiles its Trino functions to DuckDB's. DuckDB (an embedded engine
with JSON and the SQL the queries use, no server, one wheel) was chosen over SQLite, which has no structs, maps,
``max_by`` or time zones.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from odshared.core.errors import InputDataError
from odshared.fleet.ledger import COUNTS, HEALTH, PARTITION_FORMAT, TABLES, Table, query

Record = tuple[dict[str, Any], str]  # a message and its arrival partition
KINDS = {"crossing": COUNTS.name, "health": HEALTH.name}
SIMPLE = {"string": "VARCHAR", "bigint": "BIGINT", "double": "DOUBLE", "boolean": "BOOLEAN"}


def duckdb_type(glue: str) -> str:
    """A Glue (Hive) column type as DuckDB spells it: the tables are declared once, in odshared.fleet.ledger."""
    if glue in SIMPLE:
        return SIMPLE[glue]
    kind, inner = re.fullmatch(r"(struct|map)<(.*)>", glue).groups()  # type: ignore[union-attr]
    parts, depth, start = [], 0, 0
    for index, char in enumerate(inner):
        depth += {"<": 1, ">": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(inner[start:index])
            start = index + 1
    parts.append(inner[start:])
    if kind == "map":
        return f"MAP({duckdb_type(parts[0])}, {duckdb_type(parts[1])})"
    fields = (part.split(":", 1) for part in parts)
    return "STRUCT(" + ", ".join(f'"{name}" {duckdb_type(kind)}' for name, kind in fields) + ")"


def records_from_jsonl(paths: Sequence[str]) -> dict[str, list[Record]]:
    """Crossings and health messages from JSON Lines files; the arrival partition is the message's own hour."""
    tables: dict[str, list[Record]] = {t.name: [] for t in TABLES}
    for path in paths:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError as exc:
            raise InputDataError(f"{path}: {exc.strerror or exc}") from None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputDataError(f"{path}:{number}: not JSON ({exc.msg}); a file of odctl detect --out") from None
            message = record.get("message", record) if isinstance(record, dict) else None
            table = KINDS.get(message.get("type", "")) if isinstance(message, dict) else None
            if table and isinstance(message, dict):
                hour = datetime.fromisoformat(message["timestamp"].replace("Z", "+00:00")).astimezone(UTC)
                tables[table].append((message, hour.strftime(PARTITION_FORMAT)))
    return tables


def records_from_s3(s3: Any, bucket: str) -> dict[str, list[Record]]:
    """Every object under the tables' prefixes, as Firehose wrote them (``<prefix>YYYY/MM/DD/HH/<object>``)."""
    tables: dict[str, list[Record]] = {t.name: [] for t in TABLES}
    for table in TABLES:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=table.prefix):
            for item in page.get("Contents", []):
                dt = "/".join(item["Key"][len(table.prefix) :].split("/")[:4])
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
                tables[table.name] += [(json.loads(line), dt) for line in body.splitlines() if line.strip()]
    return tables


def _load(connection: Any, table: Table, records: Iterable[Record], folder: Path) -> None:
    columns = {name: duckdb_type(glue) for name, glue in table.columns} | {"dt": "VARCHAR"}
    declared = ", ".join(f'"{name}" {kind}' for name, kind in columns.items())
    connection.execute(f"CREATE TABLE {table.name} ({declared})")
    path = folder / f"{table.name}.jsonl"
    path.write_text("".join(json.dumps({**message, "dt": dt}) + "\n" for message, dt in records))
    if path.stat().st_size:
        spec = "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items()) + "}"
        connection.execute(f"INSERT INTO {table.name} SELECT * FROM read_json('{path}', columns = {spec})")


def run_query(name: str, parameters: Sequence[str], tables: dict[str, list[Record]]) -> list[dict[str, Any]]:
    """The named query ``name`` on these records; rows as dicts, in the query's column order."""
    import duckdb
    import sqlglot

    sql = sqlglot.transpile(query(name).sql, read="trino", write="duckdb")[0]
    with tempfile.TemporaryDirectory(prefix="odctl-ledger-") as folder:
        connection = duckdb.connect()
        connection.execute("SET TimeZone = 'UTC'")
        for table in TABLES:
            _load(connection, table, tables.get(table.name, []), Path(folder))
        cursor = connection.execute(sql, list(parameters))
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        connection.close()
    return rows
