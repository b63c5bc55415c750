"""The ledger's tables in DuckDB as Athena has them: one row per line, the line as a string.

Athena reads each Firehose object's lines as strings (``odshared.fleet.ledger``: the Regex SerDe) and the named
queries parse them; so the offline tables hold the same thing, ``body`` (the message's JSON text), ``dt`` (its
arrival hour) and ``$path`` (where it was read: an S3 object, a local file), and the same query text decides which
lines count. From the stack's bucket every line is kept as Firehose wrote it, a malformed one included: the
``malformed_records`` query names it, as on Athena. From local files (``odctl detect --out``, ``odctl watch
--out``) a malformed message fails the load with its file named: a local count is never silently short.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from odshared.core.errors import InputDataError
from odshared.fleet.ledger import BODY, COUNTS, QUERIED, SOURCE, Table, parsed_sql

Record = tuple[str, str, str]  # a line as Firehose wrote it, its arrival partition, its S3 object
KINDS = {t.name: t.message_type for t in QUERIED}  # the message type each table holds
COLUMNS = f'{BODY} VARCHAR, dt VARCHAR, "{SOURCE}" VARCHAR'
HINT = "each line is one JSON message, as odctl detect --out and odctl watch --out write them"


def load_records(connection: Any, table: Table, records: Iterable[Record]) -> None:
    """``table`` from lines kept as they are (through a JSON Lines file of strings: DuckDB reads it in one go)."""
    connection.execute(f"CREATE TABLE {table.name} ({COLUMNS})")
    with tempfile.TemporaryDirectory(prefix="odctl-ledger-") as folder:
        path = Path(folder) / f"{table.name}.jsonl"
        rows = (json.dumps({BODY: line, "dt": dt, SOURCE: source}) for line, dt, source in records)
        path.write_text("".join(row + "\n" for row in rows))
        if path.stat().st_size:
            spec = f"{{'{BODY}': 'VARCHAR', 'dt': 'VARCHAR', '{SOURCE}': 'VARCHAR'}}"
            connection.execute(f"INSERT INTO {table.name} SELECT * FROM read_json(?, columns = {spec})", [str(path)])


def scan_sql(table: Table, files: Sequence[Path]) -> tuple[str, list[Any]]:
    """The SELECT that reads ``table``'s lines from local files: a line is ``{"topic", "message"}`` (odctl detect
    --out, odctl watch --out) or the bare message (a Firehose object); a ``.json`` file is one document or an
    array of them. ``body`` is the message's JSON text, ``dt`` its own hour, ``$path`` and ``_file`` the file. A
    line that is JSON but no object goes to ``counts``, where the query's parse calls it malformed."""
    jsonl = [str(f) for f in files if f.suffix != ".json"]
    documents = [str(f) for f in files if f.suffix == ".json"]
    reads = [(paths, form) for paths, form in ((jsonl, "newline_delimited"), (documents, "auto")) if paths]
    union = " UNION ALL ".join(
        f"SELECT json, filename FROM read_json(?, format = '{form}', records = false, "
        "columns = {'json': 'JSON'}, filename = true)"
        for _, form in reads
    )
    message = "CASE WHEN json_type(json, '$.message') = 'OBJECT' THEN json -> '$.message' ELSE json END"
    stray = " OR json_type(message) <> 'OBJECT'" if table is COUNTS else ""
    sql = (
        f'SELECT CAST(message AS VARCHAR) AS {BODY}, dt, filename AS "{SOURCE}", filename AS _file FROM ('
        f"SELECT message, filename, strftime(TRY_CAST(message ->> '$.timestamp' AS TIMESTAMPTZ), '%Y/%m/%d/%H') AS dt "
        f"FROM (SELECT {message} AS message, filename FROM ({union}))) "
        f"WHERE message ->> '$.type' = '{KINDS[table.name]}'{stray}"
    )
    return sql, [paths for paths, _ in reads]


def parse_once(connection: Any, table: Table) -> str:
    """``table``'s lines parsed by the queries' own parse (``parsed_sql``) into a table of their fields, once: the
    checks and the query then read columns instead of parsing every line again. Its name, for ``NamedQuery.over``.
    The lines' table is dropped, so only the parsed one is held."""
    import sqlglot

    parsed = f"{table.name}_parsed"
    select = sqlglot.transpile(f"SELECT * FROM {parsed_sql(table)}", read="trino", write="duckdb")[0]
    connection.execute(f"CREATE TABLE {parsed} AS {select}")
    connection.execute(f"DROP TABLE {table.name}")
    return parsed


def check_malformed(connection: Any, table: Table, parsed: str) -> None:
    """Local messages the queries could not count (in ``parsed``, ``parse_once``'s table): the first named (its
    file, why), how many in all."""
    bad = connection.execute(f"SELECT source, malformed FROM {parsed} WHERE malformed IS NOT NULL").fetchall()
    if bad:
        source, why = bad[0]
        raise InputDataError(
            f"{source}: a {KINDS[table.name]} message that cannot be counted ({why}); {len(bad)} in all, none "
            f"skipped: fix or remove them ({HINT})"
        )
