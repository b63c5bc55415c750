"""The ledger as the stack's bucket holds it, in DuckDB's tables as Athena has them: the Parquet Firehose converted
(its Glue columns, ``dt`` its arrival hour, ``$path`` its S3 object), the records Firehose could not convert (its
error documents, by ledger and hour), and the corrections' lines.

Only the tests read a bucket this way (``odctl counts`` asks Athena, or reads local files): they fetch the objects
to local files (``tests.rehearsal.ledger_objects``) and the named queries run on them unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odctl.ledger_lines import Record, load_records, quoted
from odshared.fleet.columns import hive_parts
from odshared.fleet.ledger import CORRECTIONS, REJECTED, REJECTED_FIELDS, SOURCE, TABLES

Placed = tuple[Path, str, str]  # a fetched object, its arrival partition (dt), its S3 object
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


def _load_parquet(connection: Any, name: str, columns: list[tuple[str, str]], placed: list[Placed]) -> None:
    declared = ", ".join(f'"{n}" {duckdb_type(t)}' for n, t in columns)
    connection.execute(f'CREATE TABLE {name} ({declared}, dt VARCHAR, "{SOURCE}" VARCHAR)')
    for path, dt, source in placed:  # by name: a file written before a column was added lacks it, as on Athena
        connection.execute(
            f'INSERT INTO {name} BY NAME SELECT *, {quoted(dt)} AS dt, {quoted(source)} AS "{SOURCE}" '
            f"FROM read_parquet({quoted(str(path))})"
        )


def load_rejected(connection: Any, rejected: dict[str, list[Placed]]) -> None:
    """The table of records Firehose could not convert, from its error documents (none: empty)."""
    declared = ", ".join(f"{n.lower()} {duckdb_type(t)}" for n, t in REJECTED_FIELDS)
    connection.execute(f'CREATE TABLE {REJECTED} ({declared}, ledger VARCHAR, dt VARCHAR, "{SOURCE}" VARCHAR)')
    keys = "{" + ", ".join(f"{quoted(n)}: {quoted(duckdb_type(t))}" for n, t in REJECTED_FIELDS) + "}"
    names = ", ".join(f'"{n}" AS {n.lower()}' for n, _ in REJECTED_FIELDS)
    for ledger, placed in rejected.items():
        for path, dt, source in placed:
            connection.execute(
                f"INSERT INTO {REJECTED} BY NAME SELECT {names}, {quoted(ledger)} AS ledger, {quoted(dt)} AS dt, "
                f'{quoted(source)} AS "{SOURCE}" '
                f"FROM read_json({quoted(str(path))}, format = 'newline_delimited', columns = {keys})"
            )


def load_landed(connection: Any, landed: Landed) -> None:
    """Every ledger table from what landed in the bucket."""
    for table in TABLES:
        _load_parquet(connection, table.name, landed.columns[table.name], landed.parquet.get(table.name, []))
    load_rejected(connection, landed.rejected)
    load_records(connection, CORRECTIONS, landed.lines.get(CORRECTIONS.name, []))
