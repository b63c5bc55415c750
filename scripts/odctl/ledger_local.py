"""The ledger's named queries without Athena: DuckDB over the same messages, in the same tables.

The named queries read each field's text and check it (odshared.fleet.ledger); odctl.ledger_lines reads local
files into those texts, odctl.ledger_landed loads what a bucket holds (the tests' fetched objects). Here: which
local files ``--from`` names (files, folders, globs), and the query text Athena runs, run by DuckDB (sqlglot
transpiles Athena's Trino functions to DuckDB's).
DuckDB (an embedded engine with JSON and the SQL the queries use, no server, one wheel) was chosen over SQLite,
which has no ``max_by``, JSON paths or time zones.

Local files are read by DuckDB itself (``read_json`` into the messages' keys, each line parsed once), never line
by line in Python on a good run: that way a device-year took 24.8 s and 2.9 GB (issue 35). The fields' text is
then checked and cast by the queries' own parse, so a local count accepts what Athena accepts. A local line that is
not JSON, or a message the queries cannot count, fails the load with its file and line named and all of them
counted: a local count is never silently short. A query's parameters are written into its text as literals:
DuckDB's Python client imports pandas for a query given parameters, a second of every ``odctl counts``.
"""

from __future__ import annotations

import glob
import json
import logging
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from odctl.ledger_landed import Landed, load_landed, load_rejected
from odctl.ledger_lines import HINT, check_malformed, duckdb_dialect, parse_once, quoted, with_literals
from odshared.core.errors import InputDataError
from odshared.core.log import log_event
from odshared.fleet.ledger import QUERIED, REJECTED, Table, query

logger = logging.getLogger(__name__)

SUFFIXES = (".jsonl", ".json")  # what a folder given to --from contributes
MEMORY_LIMIT = "512MB"  # DuckDB's own, not the process's: the interpreter and the results come on top
DUCKDB_PLACE = re.compile(r'in file "(?P<file>.+)", in line (?P<line>[0-9]+): (?P<why>.+)$')
SOURCE_HINT = "--from takes files, folders and globs of what odctl detect --out or odctl watch --out wrote"
__all__ = ["columns_of", "expand_sources", "run_query", "run_query_files", "tables_of"]


# --- what --from names -------------------------------------------------------------------------------------------


def _under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in SUFFIXES and p.is_file())


def _expand(source: str) -> list[Path]:
    """One --from value's files: a file as it is, a folder's *.jsonl and *.json (recursively), a glob's matches
    (a matched folder as a folder). An existing path is never read as a glob: a name may hold ``[``."""
    path = Path(source).expanduser()
    if path.is_dir():
        found = _under(path)
        if not found:
            raise InputDataError(f"--from {source}: no *.jsonl or *.json file under this folder; {SOURCE_HINT}")
        return found
    if path.exists():
        return [path]
    if not any(char in source for char in "*?["):
        raise InputDataError(f"--from {source}: No such file or directory; {SOURCE_HINT}")
    hits = [Path(hit) for hit in sorted(glob.glob(str(path), recursive=True))]
    found = [file for hit in hits for file in (_under(hit) if hit.is_dir() else [hit])]
    if not found:
        raise InputDataError(f"--from {source}: the pattern matches no file; {SOURCE_HINT}")
    return found


def expand_sources(sources: Sequence[str]) -> list[Path]:
    """Every file the --from values name, each once (a folder and a glob over it overlap; a redelivered message in
    two files is still counted once, by its ``event_id``: that is the queries' own rule)."""
    files: dict[Path, None] = {}
    for source in sources:
        files.update(dict.fromkeys(file.resolve() for file in _expand(source)))
    return list(files)


# --- what a query reads and returns ------------------------------------------------------------------------------


def tables_of(name: str) -> list[str]:
    """The ledger tables the named query reads: only their lines are loaded (a crossings query never holds the
    year of health reports beside them)."""
    import sqlglot
    from sqlglot import exp

    unparsed = query(name).over({t.name: t.name for t in QUERIED})  # each table by its name: a short text to parse
    read = {t.name for t in sqlglot.parse_one(unparsed, read="trino").find_all(exp.Table)}
    return [name for name in (*(t.name for t in QUERIED), REJECTED) if name in read]


def columns_of(name: str) -> list[str]:
    """The named query's output columns, in order: an empty result is still a table with a header."""
    import sqlglot

    parsed = sqlglot.parse_one(query(name).sql, read="trino")
    assert isinstance(parsed, sqlglot.exp.Query)  # every named query is a SELECT
    return list(parsed.named_selects)


# --- local files, read by DuckDB ---------------------------------------------------------------------------------


def _bad_lines(path: Path) -> Iterator[tuple[int, str]]:
    """A file's lines that are not JSON: (line number, why). A ``.json`` file that is one document is whole."""
    if path.suffix == ".json":
        try:
            json.loads(path.read_bytes())
            return
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                json.loads(raw)
            except json.JSONDecodeError as exc:
                yield number, f"not JSON ({exc.msg})"
            except UnicodeDecodeError:
                yield number, "not UTF-8 text"


def _unreadable(files: Sequence[Path], error: Exception) -> InputDataError:
    """Why DuckDB's scan failed, in one line. The scan stops at the first line that is not JSON and names neither
    its number nor the others, so only now (never on a good run) are the files read line by line in Python: the
    first bad line named, all of them counted, none skipped. Else DuckDB's own reason, which names the file."""
    bad = [(path, number, why) for path in files for number, why in _bad_lines(path)]
    if not bad:
        reason = str(error).splitlines()[0].removeprefix("Invalid Input Error: ")
        placed = DUCKDB_PLACE.search(reason)
        if placed:  # DuckDB's reader names the file and line of a JSON line that is no message object
            return InputDataError(f"{placed['file']}:{placed['line']}: not a message ({placed['why']}) ({HINT})")
        return InputDataError(f"--from: {reason} ({HINT})")
    path, number, why = bad[0]
    spread = len({b[0] for b in bad})
    log_event(logger, "ledger.not_json", level=logging.WARNING, lines=len(bad), files=spread, first=f"{path}:{number}")
    return InputDataError(
        f"{path}:{number}: {why}; {len(bad)} such line(s) in {spread} file(s), none skipped: fix or remove them "
        f"({HINT})"
    )


def _load_files(connection: Any, table: Table, files: Sequence[Path]) -> str:
    """``table`` from the local files (odctl.ledger_lines: which messages, their fields read by DuckDB), parsed
    once; a message the queries could not count fails the load, naming it. The parsed table's name."""
    import duckdb

    try:
        parsed = parse_once(connection, table, files)
    except duckdb.Error as exc:
        raise _unreadable(files, exc) from None
    check_malformed(connection, table, parsed)
    return parsed


# --- the named queries -------------------------------------------------------------------------------------------


@contextmanager
def _connect() -> Iterator[Any]:
    """DuckDB in memory, held to ``MEMORY_LIMIT``: past it DuckDB spills to a folder of its own, removed after, so a
    fleet's years of history need no more memory than a month's (bench.ledger_bench measures both)."""
    import duckdb

    with tempfile.TemporaryDirectory(prefix="odctl-ledger-spill-") as spill:
        connection = duckdb.connect()
        try:
            connection.execute("SET TimeZone = 'UTC'")
            connection.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
            # no row order to keep: every named query orders its rows, the check orders what it names; kept, the
            # parsed table's build held a device-year's load a quarter longer
            connection.execute("SET preserve_insertion_order = false")
            connection.execute(f"SET temp_directory = {quoted(spill)}")
            yield connection
        finally:
            connection.close()


def _execute(
    connection: Any, name: str, parameters: Sequence[str], parsed: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """The named query's Trino text, transpiled for DuckDB, its parameters written in as literals (a parameter
    passed to DuckDB's Python client makes it import pandas: a second of every ``odctl counts``); ``parsed``: tables
    already parsed (``parse_once``)."""
    import sqlglot

    text = with_literals(query(name).over(parsed or {}), parameters)
    sql = sqlglot.transpile(text, read="trino", write=duckdb_dialect())
    cursor = connection.execute(sql[0])
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def run_query(name: str, parameters: Sequence[str], landed: Landed) -> list[dict[str, Any]]:
    """The named query ``name`` on what landed in a bucket (the Parquet Firehose wrote, its rejected records, the
    corrections: the tests' ``tests.rehearsal.ledger_objects``); rows as dicts, in the query's column order."""
    with _connect() as connection:
        load_landed(connection, landed)
        return _execute(connection, name, parameters)


def run_query_files(name: str, parameters: Sequence[str], files: Sequence[Path]) -> list[dict[str, Any]]:
    """The named query ``name`` over local JSON Lines (``expand_sources``' files), read by DuckDB itself; only the
    tables the query reads are loaded."""
    wanted = tables_of(name)
    with _connect() as connection:
        parsed = {t.name: _load_files(connection, t, files) for t in QUERIED if t.name in wanted}
        if REJECTED in wanted:  # Firehose's: local files have none
            load_rejected(connection, {})
        rows = _execute(connection, name, parameters, parsed)
    log_event(logger, "ledger.query", query=name, files=len(files), rows=len(rows))
    return rows
