"""The ledger's messages in DuckDB as the named queries read them: each field's text, then the queries' own checks.

On Athena the converted tables hold each field's text (odshared.fleet.columns) and the corrections table its lines
as strings, which the queries parse (``odshared.fleet.ledger``). Here: local files (``odctl detect --out``,
``odctl watch --out``) read by DuckDB's own reader into the same texts (``texts_view_sql``), the same checks and
casts after; a lines table from lines kept as they are (``load_records``); and the DuckDB dialect that gives
Trino's JSON functions their Trino meaning. A malformed local message fails the load with its file named: a local
count is never silently short.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from odshared.core.errors import InputDataError
from odshared.fleet.ledger import (
    BODY,
    DEVICE,
    DEVICE_FIELD,
    DEVICE_QUERY,
    PARTITION_FORMAT,
    QUERIED,
    SOURCE,
    Table,
    parsed_sql,
)

Record = tuple[str, str, str]  # a line as Firehose wrote it, its arrival partition, its S3 object
KINDS = {t.name: t.message_type for t in QUERIED}  # the message type each table holds
COLUMNS = f'{BODY} VARCHAR, dt VARCHAR, "{SOURCE}" VARCHAR'
HINT = "each line is one JSON message, as odctl detect --out and odctl watch --out write them"


@cache
def duckdb_dialect() -> Any:
    """sqlglot's DuckDB dialect, but for Trino's ``json_extract_scalar``: NULL for an object or an array, as
    Trino gives it (DuckDB's ``->>`` gives their JSON text), so a line that Athena calls malformed is malformed here."""
    from sqlglot import exp
    from sqlglot.dialects.duckdb import DuckDB

    def scalar(generator: Any, node: Any) -> str:
        value, path = generator.sql(node, "this"), generator.sql(node, "expression")
        return f"CASE WHEN json_type({value}, {path}) NOT IN ('OBJECT', 'ARRAY') THEN {value} ->> {path} END"

    class TrinoOnDuckDB(DuckDB):
        class Generator(DuckDB.Generator):
            TRANSFORMS = {**DuckDB.Generator.TRANSFORMS, exp.JSONExtractScalar: scalar}

    TrinoOnDuckDB.generator_class.TRY_SUPPORTED = True  # sqlglot allows TRY for the dialects it knows by name only
    return TrinoOnDuckDB


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


def quoted(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def with_literals(text: str, parameters: Sequence[str]) -> str:
    """The query with each ``?`` replaced by its parameter as a string literal, in the text's order (a query's only
    ``?`` are its parameters: its patterns write ``{0,1}``)."""
    pieces = text.split("?")
    if len(pieces) != len(parameters) + 1:
        raise ValueError(f"the query takes {len(pieces) - 1} parameter(s), given {len(parameters)}")
    return pieces[0] + "".join(quoted(value) + piece for value, piece in zip(parameters, pieces[1:], strict=True))


def _key_types(table: Table) -> dict[str, str]:
    """How DuckDB's reader reads each top-level key the fields read: as text (``VARCHAR``: a JSON value's text, an
    object's or an array's JSON, NULL for null) where that is what Athena's table holds, the key of a converted
    table with no field under it (the conversion writes the same text into a string column); as ``JSON`` else."""
    paths = [f.path.removeprefix("$.").split(".") for f in table.fields]
    nested = {p[0] for p in paths if len(p) > 1}
    return {p[0]: "VARCHAR" if table.schema and p[0] not in nested else "JSON" for p in paths}


def _field_text(path: str, converted: bool, key_type: str) -> str:
    """DuckDB's text of the field at ``path`` from its message's top-level key (``m_<key>``, read as ``key_type``),
    as Athena's table holds it: for a table Firehose converts, a JSON value's text (an object's or an array's
    JSON, as the conversion writes it into a string column); for a lines table, as Trino's ``json_extract_scalar``
    gives it (NULL for an object or an array). NULL for a JSON null either way. A top-level JSON value is told by
    its first character (DuckDB's JSON values are minified) and only a string unescaped: a device-year's load was
    a quarter longer asking DuckDB its JSON type."""
    top, *rest = path.removeprefix("$.").split(".")
    value = f'"m_{top}"'
    if key_type == "VARCHAR":
        return value
    if rest:
        inner = quoted("$." + ".".join(rest))
        kind = f"json_type({value}, {inner})"
        whole = f"WHEN {kind} IN ('OBJECT', 'ARRAY') THEN CAST({value} -> {inner} AS VARCHAR) " if converted else ""
        return f"CASE {whole}WHEN {kind} NOT IN ('OBJECT', 'ARRAY') THEN {value} ->> {inner} END"
    text = f"CAST({value} AS VARCHAR)"
    others = "('n')" if converted else "('{', '[', 'n')"
    return (
        f"CASE WHEN starts_with({text}, '\"') THEN (CASE WHEN contains({text}, '\\') THEN {value} ->> '$' "
        f"ELSE {text}[2:-2] END) WHEN left({text}, 1) NOT IN {others} THEN {text} END"
    )


def _refused(table: Table) -> str:
    """Why Firehose would refuse the message whole (NULL: it would not), from the ``m_<key>`` values: it partitions
    a converted table's messages by their thing (``DEVICE_QUERY``), which a message must have; and an object the
    fields read into is a struct column, which only an object (or null) fills."""
    if not table.schema:
        return "CAST(NULL AS VARCHAR)"
    paths = [f.path.removeprefix("$.").split(".") for f in table.fields]
    structs = dict.fromkeys(tuple(p[:depth]) for p in paths for depth in range(1, len(p)))
    key = f'"m_{DEVICE_FIELD}"'  # a top-level key of no struct: read as its text
    cases = [f"WHEN {key} IS NULL OR {key} = '' THEN 'Firehose would not partition it: no {DEVICE_QUERY}'"]
    for struct in structs:
        inner = f", {quoted('$.' + '.'.join(struct[1:]))}" if len(struct) > 1 else ""
        kind = f'json_type("m_{struct[0]}"{inner})'
        why = f"Firehose would not convert it: {'.'.join(struct)} is not an object"
        cases.append(f"WHEN {kind} NOT IN ('OBJECT', 'NULL') THEN {quoted(why)}")
    return "CASE " + " ".join(cases) + " END"


def texts_view_sql(table: Table, files: Sequence[Path]) -> str:
    """DuckDB's SELECT of ``table``'s messages in local files, in ``texts_sql``'s columns (the fields' text, ``dt``
    the hour of its ``Table.arrival`` field, ``device`` its thing's text as Firehose's partitioning reads it,
    ``source`` the file; no ``body``: a local message the queries could not count fails the load by its file, never
    a row): read by DuckDB's own reader, each line parsed once into the message's top-level keys.
    A line is ``{"topic", "message"}`` (odctl detect --out, odctl watch --out) or the bare message (as the IoT
    rule sends it); a ``.json`` file is one document or an array of them. A line that is JSON but no object fails
    the read, naming its file and line."""
    types = _key_types(table)
    keys = list(types)
    struct = ", ".join(f'"{key}" {kind}' for key, kind in types.items())
    columns = "{" + ", ".join([f"'message': 'STRUCT({struct})'", *(f"{quoted(k)}: '{t}'" for k, t in types.items())])
    columns += "}"
    jsonl = [str(f) for f in files if f.suffix != ".json"]
    documents = [str(f) for f in files if f.suffix == ".json"]
    reads = [(paths, form) for paths, form in ((jsonl, "newline_delimited"), (documents, "auto")) if paths]
    union = " UNION ALL ".join(
        f"SELECT * FROM read_json([{', '.join(map(quoted, paths))}], format = '{form}', columns = {columns}, "
        "filename = true)"
        for paths, form in reads
    )
    tops = ", ".join(f'CASE WHEN message IS NULL THEN "{key}" ELSE message."{key}" END AS "m_{key}"' for key in keys)
    paths = {f.path: f'"{f.name}_text"' for f in reversed(table.fields)}  # each path read once, as its first field
    texts = ", ".join(
        f"{_field_text(path, bool(table.schema), types[path[2:].split('.')[0]])} AS {name}"
        for path, name in paths.items()
    )
    copies = "".join(
        f', {paths[f.path]} AS "{f.name}_text"' for f in table.fields if paths[f.path] != f'"{f.name}_text"'
    )
    # the hour of a UTC time is in its text (the device writes UTC); another offset's is cast (a quarter of the load's
    # time, were every line cast)
    arrival = paths["$." + table.arrival]
    hour = (
        f"CASE WHEN {arrival} LIKE '____-__-__T__:%Z' THEN translate(left({arrival}, 13), '-T', '//') "
        f"ELSE strftime(TRY_CAST({arrival} AS TIMESTAMPTZ), '{PARTITION_FORMAT}') END"
    )
    device = f"{paths['$.' + DEVICE_FIELD]} AS {DEVICE}, " if table.schema else ""
    return (
        f"SELECT {hour} AS dt, {device}filename AS source, CAST(NULL AS VARCHAR) AS {BODY}, * "
        f"EXCLUDE (filename){copies} FROM (SELECT filename, {_refused(table)} AS refused, {texts} "
        f"FROM (SELECT filename, {tops} FROM ({union}))) "
        f"WHERE type_text = {quoted(KINDS[table.name])}"
    )


def parse_once(connection: Any, table: Table, files: Sequence[Path]) -> str:
    """``table``'s messages in local files parsed by the queries' own checks and casts (``parsed_sql``) into a
    table of their fields, in one pass of DuckDB's reader: the checks and the query then read columns. Its name,
    for ``NamedQuery.over``."""
    import sqlglot

    texts, parsed = f"{table.name}_texts", f"{table.name}_parsed"
    connection.execute(f"CREATE VIEW {texts} AS {texts_view_sql(table, files)}")
    select = sqlglot.transpile(f"SELECT * FROM {parsed_sql(table, texts)}", read="trino", write=duckdb_dialect())[0]
    connection.execute(f"CREATE TABLE {parsed} AS {select}")
    connection.execute(f"DROP VIEW {texts}")
    return parsed


def check_malformed(connection: Any, table: Table, parsed: str) -> None:
    """Local messages the queries could not count (in ``parsed``, ``parse_once``'s table): the first named (its
    file, why), how many in all."""
    malformed = f"FROM {parsed} WHERE malformed IS NOT NULL"
    (count,) = connection.execute(f"SELECT count(*) {malformed}").fetchone()
    if count:  # the rows have no order: the first file's, the first reason's
        source, why = connection.execute(f"SELECT source, malformed {malformed} ORDER BY 1, 2 LIMIT 1").fetchone()
        raise InputDataError(
            f"{source}: a {KINDS[table.name]} message that cannot be counted ({why}); {count} in all, none "
            f"skipped: fix or remove them ({HINT})"
        )
