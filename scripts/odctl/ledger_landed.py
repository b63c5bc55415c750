"""The ledger as the stack's bucket holds it, in DuckDB's tables as Athena has them: the Parquet Firehose converted
(its Glue columns, its partitions ``dt`` and ``device``, ``$path`` its S3 object), the records Firehose could not
convert or partition (its error documents, by ledger, error type and hour), and the corrections' lines.

Only the tests read a bucket this way (``odctl counts`` asks Athena, or reads local files): they fetch the objects
to local files (``tests.rehearsal.ledger_objects``) and the named queries run on them unchanged.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odctl.ledger_lines import Record, load_records, quoted
from odshared.fleet.columns import hive_parts
from odshared.fleet.ledger import CORRECTIONS, REJECTED, REJECTED_FIELDS, REJECTED_PARTITIONS, SOURCE, TABLES

Placed = tuple[Path, Mapping[str, str], str]  # a fetched object, its partitions' values (by key), its S3 object
HIVE_SCALARS = {"string": "VARCHAR", "bigint": "BIGINT", "double": "DOUBLE", "boolean": "BOOLEAN"}


@dataclass
class Landed:
    """What a bucket's ledger holds, fetched to local files."""

    columns: dict[str, list[tuple[str, str]]]  # each converted table's Glue columns (name, Hive type)
    parquet: dict[str, list[Placed]] = field(default_factory=dict)  # each converted table's objects
    rejected: dict[str, list[Placed]] = field(default_factory=dict)  # per ledger, Firehose's error documents
    lines: dict[str, list[Record]] = field(default_factory=dict)  # each lines table's lines (corrections)


def duckdb_type(hive: str) -> str:
    """A Glue column's Hive type as DuckDB's: ``struct<a:string>`` is ``STRUCT("a" VARCHAR)``."""
    kind, parts = hive_parts(hive)
    if kind in HIVE_SCALARS:
        return HIVE_SCALARS[kind]
    if kind == "struct":
        return "STRUCT(" + ", ".join(f'"{name}" {duckdb_type(part)}' for name, part in parts) + ")"
    if kind == "map":
        return f"MAP(VARCHAR, {duckdb_type(parts[0][1])})"
    if kind == "array":
        return f"{duckdb_type(parts[0][1])}[]"
    raise ValueError(f"{hive}: not a Hive type this ledger uses")


def _partitions(values: Mapping[str, str]) -> str:
    return "".join(f", {quoted(value)} AS {key}" for key, value in values.items())


def _load_parquet(
    connection: Any, name: str, keys: tuple[str, ...], columns: list[tuple[str, str]], placed: list[Placed]
) -> None:
    declared = ", ".join([*(f'"{n}" {duckdb_type(t)}' for n, t in columns), *(f"{key} VARCHAR" for key in keys)])
    connection.execute(f'CREATE TABLE {name} ({declared}, "{SOURCE}" VARCHAR)')
    for path, values, source in placed:  # by name: a file written before a column was added lacks it, as on Athena
        connection.execute(
            f'INSERT INTO {name} BY NAME SELECT *{_partitions(values)}, {quoted(source)} AS "{SOURCE}" '
            f"FROM read_parquet({quoted(str(path))})"
        )


def load_rejected(connection: Any, rejected: dict[str, list[Placed]]) -> None:
    """The table of records Firehose could not convert or partition, from its error documents (none: empty),
    whose keys Athena's JSON SerDe matches to the columns whatever their case (``ErrorCode``, ``errorCode``)."""
    declared = ", ".join(f"{n.lower()} {duckdb_type(t)}" for n, t in REJECTED_FIELDS)
    partitions = ", ".join(f"{key} VARCHAR" for key in REJECTED_PARTITIONS)
    connection.execute(f'CREATE TABLE {REJECTED} ({declared}, {partitions}, "{SOURCE}" VARCHAR)')
    keys = "{" + ", ".join(f"{quoted(n.lower())}: {quoted(duckdb_type(t))}" for n, t in REJECTED_FIELDS) + "}"
    with tempfile.TemporaryDirectory(prefix="odctl-rejected-") as folder:
        for number, (path, values, source) in enumerate(p for placed in rejected.values() for p in placed):
            lowered = Path(folder) / f"{number}.jsonl"
            documents = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
            lowered.write_text("".join(json.dumps({k.lower(): v for k, v in d.items()}) + "\n" for d in documents))
            connection.execute(
                f'INSERT INTO {REJECTED} BY NAME SELECT *{_partitions(values)}, {quoted(source)} AS "{SOURCE}" '
                f"FROM read_json({quoted(str(lowered))}, format = 'newline_delimited', columns = {keys})"
            )


def load_landed(connection: Any, landed: Landed) -> None:
    """Every ledger table from what landed in the bucket."""
    for table in TABLES:
        placed = landed.parquet.get(table.name, [])
        _load_parquet(connection, table.name, table.partition_keys, landed.columns[table.name], placed)
    load_rejected(connection, landed.rejected)
    load_records(connection, CORRECTIONS, landed.lines.get(CORRECTIONS.name, []))
