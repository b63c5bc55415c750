"""The counts ledger: what the IoT rules' Firehose streams write, the Glue tables over it, the named queries.

Each stream writes the device's messages as JSON Lines (the rule's action appends the newline) under
``fleet/<table>/`` in Firehose's default layout, ``YYYY/MM/DD/HH/`` of the arrival hour (UTC): the tables project
that as the partition ``dt`` (``yyyy/MM/dd/HH``), so nothing registers partitions. The queries are Athena's SQL
(Trino) in ``queries/``; ``odctl counts`` runs the same text offline through DuckDB (transpiled by sqlglot). A
crossing arrives at or after it happened, so a period's queries bound ``dt`` from below only (a day before ``since``,
for device clocks running ahead), and count each crossing once by ``event_id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

RAW_PREFIX = "fleet"
PARTITION_FORMAT = "%Y/%m/%d/%H"  # Firehose's default prefix, as strftime
PARTITION_PROJECTION_FORMAT = "yyyy/MM/dd/HH"  # the same, as Athena's projection writes it
QUERIES = Path(__file__).with_name("queries")
PERIODS = ("minute", "hour", "day")  # date_trunc units of crossings_by_period.sql


@dataclass(frozen=True)
class Table:
    name: str
    topic_filter: str  # the IoT rule's topic
    columns: tuple[tuple[str, str], ...]  # Glue (Hive) types

    @property
    def prefix(self) -> str:
        return f"{RAW_PREFIX}/{self.name}/"


TOTALS = "struct<in:map<string,bigint>,out:map<string,bigint>>"
COUNTS = Table(
    "counts",
    "od/+/counts",
    (
        ("thing", "string"),
        ("type", "string"),
        ("event_id", "string"),
        ("seq", "bigint"),
        ("timestamp", "string"),
        ("line", "string"),
        ("class", "string"),
        ("direction", "string"),
        ("track_id", "bigint"),
        ("totals", TOTALS),
    ),
)
HEALTH = Table(
    "health",
    "od/+/health",
    (
        ("thing", "string"),
        ("type", "string"),
        ("timestamp", "string"),
        ("model", "string"),
        ("fps", "double"),
        ("uptime_s", "double"),
        ("runtime", "struct<backend:string,precision:string,fallback:string>"),
        (
            "counts",
            f"struct<lines:map<string,{TOTALS}>,seq:bigint,stream:string,"
            "outbox:struct<pending:bigint,capacity:bigint,full:boolean>>",
        ),
        ("frames_in", "bigint"),
        ("frames_processed", "bigint"),
        ("frames_dropped", "bigint"),
        ("published", "bigint"),
        ("publish_dropped", "bigint"),
        ("publish_errors", "bigint"),
        ("counts_lost", "bigint"),
        ("source_connected", "bigint"),
    ),
)
TABLES = (COUNTS, HEALTH)


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    sql: str


def named_queries() -> tuple[NamedQuery, ...]:
    """Every query in ``queries/``: its name is the file's stem, its description the first comment line.
    ``crossings_by_period.sql`` is one query per period of ``PERIODS`` (``crossings_by_hour``, ...)."""
    texts = []
    for path in sorted(QUERIES.glob("*.sql")):
        text = path.read_text()
        if path.stem == "crossings_by_period":
            texts += [(f"crossings_by_{p}", text.replace("{period}", p)) for p in PERIODS]
        else:
            texts.append((path.stem, text))
    found = [NamedQuery(name, text.splitlines()[0].removeprefix("--").strip(), text) for name, text in texts]
    return tuple(sorted(found, key=lambda q: q.name))


def query(name: str) -> NamedQuery:
    return next(q for q in named_queries() if q.name == name)


def arrival_floor(since: datetime) -> str:
    """The lowest arrival partition a period starting at ``since`` can have rows in."""
    return (since.astimezone(UTC) - timedelta(days=1)).strftime(PARTITION_FORMAT)


def period_parameters(since: datetime, until: datetime, thing: str = "", line: str = "") -> list[str]:
    """The crossings queries' parameters, in their order."""
    iso = [t.astimezone(UTC).isoformat().replace("+00:00", "Z") for t in (since, until)]
    return [arrival_floor(since), *iso, thing, thing, line, line]
