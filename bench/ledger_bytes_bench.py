"""What a ledger query scans (issue 35): the bytes DuckDB reads for the net balance per thing, line and class, over
the counts ledger as the stack keeps it (Parquet, Firehose's record format conversion) and as JSON Lines (what it
kept before), and what Athena would bill for it.

The messages are ledger_bench's device-years (the real counter's crossings made into the real counts messages,
1% redelivered later), laid out as Firehose writes the counts stream: ``fleet/counts/YYYY/MM/DD/HH/<thing>/<file>``
by arrival hour (UTC) and device (dynamic partitioning), one file per hour per device (health goes to
``fleet/health/``, another table). As Parquet,
each file is what the stream's conversion writes from those messages against the stack's Glue columns
(``infra.fleet_data.table_columns``: every value as its text, ``totals`` as its JSON text; the conversion as the
tests' stand-in of Firehose does it, tests.rehearsal.firehose_conversion: snappy, one row group per file). As
JSON, each line a counts message as the IoT rule sends it.

Over Parquet the query is the named query ``net_balance`` itself (its Trino text, run by DuckDB as odctl runs it,
over the table as Athena sees it: ``dt`` and ``device`` from the file's folders, ``$path`` the file): each
crossing once by
``event_id`` (its first copy), counted in and out per thing, line and class within ``[since, until)``. It reads
every field's column but ``totals`` (choosing a crossing's first copy names them all). Over JSON the bench's own
query of the same shape reads the files whole, as the lines tables did. Twice: (1) one device's last month
(December 2025, ``camera-01``: the partitions Athena reads for the named query's ``dt >= 2025/12/01/00`` and
``device = 'camera-01'``, that month's folders of that device) and (2) the whole fleet's year.
Bytes are those DuckDB actually reads through a counting fsspec file system (bench/counted_fs.py), each byte once,
not the files' sizes. Parquet is read twice: as DuckDB reads it by default (a file of a few KB whole, with its
footer: so do Trino's readers below their small-file threshold, trinodb/trino#19127), and with DuckDB's
prefetching off, only the footer and the column chunks the query needs.
Both formats must give the same rows, and the year the generator's truth.

Athena's price: USD 5 per TB scanned, rounded up to the megabyte, 10 MB at least per query
(https://aws.amazon.com/athena/pricing/; the minimum and rounding as restated in
https://athena.guide/articles/athena-basics-pricing-model/). TB and MB here are 10^12 and 10^6 bytes.

Run it in the test environment (pyarrow and fsspec are in requirements/dev.in)::

    .venv/bin/python -m bench.ledger_bytes_bench [--devices 10]

It writes about 0.3 GB of JSON and 0.1 GB of Parquet a device-year under bench/out/ledger_bytes/ and deletes
them at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from collections import Counter as Tally
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.ledger_bench import device_year
from bench.measure import REPO

OUT = REPO / "bench" / "out" / "ledger_bytes"
FORMATS = ("json", "parquet")
# how each is read: JSON whole; Parquet as DuckDB reads it by default (a file this small whole, with its footer),
# and with its prefetching off: only the footer and the column chunks the query needs
READINGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "json": ("json", ()),
    "parquet, DuckDB's default": ("parquet", ()),
    "parquet, needed column chunks": ("parquet", ("SET disable_parquet_prefetching = true",)),
}
MONTH = ("2025-12-01T00:00:00Z", "2026-01-01T00:00:00Z", "2025/12/*/*")  # since, until, its hours' folders
YEAR = ("2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "*/*/*/*")
ONE = "camera-01"  # the device the month's query asks for
USD_PER_TB, MIN_MB = 5.0, 10
FIELDS = ("thing", "type", "event_id", "seq", "timestamp", "line", "class", "direction", "track_id", "camera")
JSON_COLUMNS = "{'thing': 'VARCHAR', 'event_id': 'VARCHAR', 'line': 'VARCHAR', 'class': 'VARCHAR', " + (
    "'direction': 'VARCHAR', 'timestamp': 'VARCHAR'}"
)
JSON_SOURCE = (
    "(SELECT *, \"timestamp\"::TIMESTAMPTZ AS ts FROM read_json(?, format = 'newline_delimited', "
    f"columns = {JSON_COLUMNS}, filename = true))"
)
JSON_NET_BALANCE = """
SELECT thing, line, "class", count_if(direction = 'in') AS crossed_in, count_if(direction = 'out') AS crossed_out,
       count_if(direction = 'in') - count_if(direction = 'out') AS net
FROM (
    SELECT thing, line, direction, "class",
           row_number() OVER (PARTITION BY thing, event_id ORDER BY filename) AS copy
    FROM {source}
    WHERE ts >= ?::TIMESTAMPTZ AND ts < ?::TIMESTAMPTZ
)
WHERE copy = 1
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
"""
# the counts table as Athena sees the Parquet: its columns, dt and device (the file's folders) and $path
PARQUET_TABLE = (
    "CREATE VIEW counts AS SELECT * EXCLUDE (filename), "
    "regexp_extract(filename, 'counts/([0-9]{{4}}/[0-9]{{2}}/[0-9]{{2}}/[0-9]{{2}})/', 1) AS dt, "
    "regexp_extract(filename, 'counts/[0-9/]{{13}}/([^/]+)/', 1) AS device, "
    'filename AS "$path" FROM read_parquet({files}, filename = true)'
)


def _hours(raw: Path, thing: str) -> Iterator[tuple[str, list[bytes]]]:
    """The device's counts messages per arrival hour (``YYYY/MM/DD/HH``), in the order they arrived.

    The file is in arrival order, so a message arrives no earlier than the latest timestamp before it: a
    redelivery lands in the hour of what came just before it, as Firehose would put it.
    """
    prefix = b'{"topic":"od/%s/counts","message":' % thing.encode()
    hour, clock = "", ""  # the hour being gathered; the latest timestamp so far
    bodies: list[bytes] = []
    with raw.open("rb") as lines:
        for line in lines:
            if not line.startswith(prefix):
                continue  # health: Firehose's other stream, fleet/health/
            body = line[len(prefix) : -2]  # the message, as the rule sends it (the wrapper's "}\n" off)
            clock = max(clock, json.loads(body)["timestamp"])
            arrived = clock[:13].replace("-", "/").replace("T", "/")
            if arrived != hour and bodies:
                yield hour, bodies
                bodies = []
            hour = arrived
            bodies.append(body)
    if bodies:
        yield hour, bodies


def _parquet(bodies: list[bytes], hour: str, columns: list[tuple[str, str]]) -> bytes:
    """The hour's messages as the counts stream's conversion writes them against ``columns``."""
    from datetime import UTC, datetime

    from odshared.fleet.ledger import PARTITION_FORMAT
    from tests.rehearsal.firehose_conversion import convert

    arrival = datetime.strptime(hour, PARTITION_FORMAT).replace(tzinfo=UTC)
    parquet, failed = convert([body + b"\n" for body in bodies], columns, arrival)
    assert not failed, failed[:1]
    return parquet


def write_device(root: Path, thing: str, seed: int) -> Tally[tuple[str, str, str, str]]:
    """One device-year under ``root/json`` and ``root/parquet`` in Firehose's layout; the generator's truth."""
    from infra.fleet_data import table_columns
    from odshared.fleet.ledger import COUNTS

    columns = table_columns(COUNTS)  # the stack's, read from the schema once, not for every hour's file
    root.mkdir(parents=True, exist_ok=True)
    raw = root / f"{thing}.jsonl"
    truth = device_year(raw, thing, seed)
    for hour, bodies in _hours(raw, thing):
        name = f"counts-1-{hour.replace('/', '-')}-00-00-{thing}"
        folders = {fmt: root / fmt / "fleet" / "counts" / hour / thing for fmt in FORMATS}
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        (folders["json"] / name).write_bytes(b"".join(body + b"\n" for body in bodies))
        (folders["parquet"] / f"{name}.parquet").write_bytes(_parquet(bodies, hour, columns))
    raw.unlink()
    return truth


def scan(root: Path, reading: str, files: str, since: str, until: str, thing: str) -> dict[str, Any]:
    """The net balance over ``files`` (a glob under the format's ``fleet/counts/``: the partitions read), read as
    ``reading`` says, of ``thing`` ('': every device): its rows, the bytes read (each once), and the files' count
    and sizes."""
    import duckdb

    from bench.counted_fs import CountingFileSystem

    fmt, settings = READINGS[reading]
    counted = CountingFileSystem()
    connection = duckdb.connect()  # a fresh database per query: nothing cached from the last
    # DuckDB 1.5.6's top_n_window_elimination fails on this query with an internal error ("Failed to cast
    # expression to type"); it rewrites the window only, not what is read
    connection.execute("SET disabled_optimizers = 'top_n_window_elimination'")
    for setting in settings:
        connection.execute(setting)
    connection.register_filesystem(counted)
    glob = f"counted://{root / fmt / 'fleet' / 'counts'}/{files}"
    if fmt == "json":
        rows = connection.execute(JSON_NET_BALANCE.format(source=JSON_SOURCE), [glob, since, until]).fetchall()
    else:
        rows = _named_net_balance(connection, glob, since, until, thing)
    sizes = [path.stat().st_size for path in (root / fmt / "fleet" / "counts").glob(files)]
    return {"rows": rows, "read": counted.distinct(), "files": len(sizes), "stored": sum(sizes)}


def _named_net_balance(connection: Any, glob: str, since: str, until: str, thing: str) -> list[tuple[Any, ...]]:
    """The named query ``net_balance`` over the Parquet ``glob`` names, as odctl runs a named query in DuckDB."""
    from datetime import datetime

    import sqlglot

    from odctl.ledger_lines import duckdb_dialect, quoted, with_literals
    from odshared.fleet.ledger import period_parameters, query

    connection.execute("SET TimeZone = 'UTC'")
    connection.execute(PARQUET_TABLE.format(files=quoted(glob)))
    parameters = period_parameters(datetime.fromisoformat(since), datetime.fromisoformat(until), thing)
    text = with_literals(query("net_balance").sql, parameters)
    return list(connection.execute(sqlglot.transpile(text, read="trino", write=duckdb_dialect())[0]).fetchall())


def athena_usd(scanned: int) -> tuple[int, float]:
    """Athena's bill for a query that scans ``scanned`` bytes: the megabytes billed and the dollars."""
    megabytes = max(MIN_MB, math.ceil(scanned / 1e6))
    return megabytes, megabytes * 1e6 / 1e12 * USD_PER_TB


def _exact(rows: list[tuple[Any, ...]], truth: Tally[tuple[str, str, str, str]]) -> bool:
    counted: Tally[tuple[str, str, str, str]] = Tally()
    for thing, line, label, crossed_in, crossed_out, _net in rows:
        counted.update({(thing, line, label, "in"): crossed_in, (thing, line, label, "out"): crossed_out})
    return +counted == +truth


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger_bytes_bench", description=__doc__)
    parser.add_argument("--devices", type=int, default=10, help="devices in the fleet, a year each")
    args = parser.parse_args(argv)
    shutil.rmtree(OUT, ignore_errors=True)
    try:
        truth: Tally[tuple[str, str, str, str]] = Tally()
        for device in range(args.devices):
            truth += write_device(OUT, f"camera-{device + 1:02d}", seed=device)
        _report(args.devices, truth)
    finally:
        shutil.rmtree(OUT, ignore_errors=True)


def _report(devices: int, truth: Tally[tuple[str, str, str, str]]) -> None:
    """Both queries, each reading, as a Markdown table."""
    queries = (
        ("one device, December", MONTH[0], MONTH[1], f"{MONTH[2]}/{ONE}/*", ONE),
        (f"{devices} devices, 2025", YEAR[0], YEAR[1], f"{YEAR[2]}/*/*", ""),
    )
    print(f"{sum(truth.values())} crossings in {devices} device-years\n")
    print("| query | read as | files | stored MB | read MB | Athena bills | USD per query | same rows |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, since, until, files, thing in queries:
        results = {reading: scan(OUT, reading, files, since, until, thing) for reading in READINGS}
        rows = results["json"]["rows"]
        for reading, result in results.items():
            same = result["rows"] == rows and (since != YEAR[0] or _exact(rows, truth))
            billed, usd = athena_usd(result["read"])
            print(
                f"| {name} | {reading} | {result['files']} | {result['stored'] / 1e6:.1f} "
                f"| {result['read'] / 1e6:.1f} | {billed} MB | {usd:.5f} | {same} |"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
