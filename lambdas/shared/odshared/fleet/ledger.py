"""The counts ledger: what the IoT rules' Firehose streams write, the Glue tables over it, the named queries.

Each stream converts the device's messages to Parquet (Firehose's record format conversion) against its Glue table
and writes them under ``fleet/parquet/<table>/`` by arrival hour, ``YYYY/MM/DD/HH/`` (UTC), then by device
(``<thing>/``, Firehose's dynamic partitioning on the message's ``thing``): the partitions ``dt``
(``yyyy/MM/dd/HH``) and ``device``, which odshared.fleet.partitions registers in Glue as each object lands, so a
query for one device reads that device's objects only. The table's columns are the
device's message schema's properties (odshared.fleet.columns), each value kept as its text, so the queries read
each field's text and decide in SQL whether it is a message they can count, as they did when the tables were the
lines as strings: a field is checked against a pattern before it is cast, so every engine accepts exactly the same
values (their casts differ: DuckDB takes ``'5.0'`` as a bigint). The ones the queries cannot count are never
dropped unseen: ``malformed_records`` names each (its S3 object, ``$path``; why; its fields), and a record
Firehose could not partition (not JSON; no ``thing``) or convert (no object where a column is a struct) is in the
stream's error output, the ``rejected`` table, named by the same query. Every message is in exactly one of the
two.

Corrections, which odctl writes (one JSON object per S3 object), are a lines table: one string column ``body``
read by the Regex SerDe (``(?s)(.*)``: the whole line, DOTALL so a JSON string's raw U+2028 stays in it), which
the queries parse with Trino's JSON functions. A JSON SerDe cannot be exact here: the OpenX SerDe with
``ignore.malformed.json`` skips bad lines and Athena's own page for it says its results "can be
non-deterministic"; the Hive JSON SerDe, which that page recommends, has no such option and fails the whole query
on one malformed line.

The queries are Athena's SQL (Trino) in ``queries/``; ``{counts}``, ``{health}`` and ``{corrections}`` in them stand
for the parsed table (``parsed_sql``), so the checks are written once, from the fields declared here,
``{rejected}`` for what Firehose refused, and ``{crossings}`` for the counts table's crossings each once
(``CROSSINGS``), so the rule of which copy counts is written once too. ``odctl counts`` runs the same text offline
through DuckDB (transpiled by sqlglot). A crossing arrives at or after it happened, so a period's queries bound
``dt`` from below only (a day before ``since``, for device clocks running ahead), and count each crossing once by
``event_id``, then apply the period and the filters to that one copy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

RAW_PREFIX = "fleet"
# the converted tables' folder: a stack from before the conversion wrote JSON Lines to fleet/<table>/, which a
# Parquet table over the same folder could not read (that JSON stays, unread, until it expires)
PARQUET_ROOT = f"{RAW_PREFIX}/parquet"
DEVICE = "device"  # a converted table's second partition: the message's thing, as Firehose's partitioning read it
DEVICE_FIELD = "thing"  # the message's field (and converted column) a device's partition is named after
DEVICE_QUERY = f".{DEVICE_FIELD}"  # the jq expression Firehose's dynamic partitioning evaluates for it
# S3's EventBridge detail types on which a partition is registered, or dropped once its folder is empty
OBJECT_CREATED, OBJECT_DELETED = "Object Created", "Object Deleted"
# the data bucket's prefix of the crossings' evidence, evidence/<thing>/<event_id>/ (odedge.evidence.PREFIX: the
# device package imports nothing of odshared, so a test holds the two equal)
EVIDENCE_PREFIX = "evidence"
PARTITION_FORMAT = "%Y/%m/%d/%H"  # Firehose's default prefix, as strftime
PARTITION_PROJECTION_FORMAT = "yyyy/MM/dd/HH"  # the same, as Athena's projection writes it
QUERIES = Path(__file__).with_name("queries")
PERIODS = ("minute", "hour", "day")  # date_trunc units of crossings_by_period.sql
BODY = "body"  # a lines table's one column, the line; in a parsed table, what the row holds, as text
SOURCE = "$path"  # Athena's hidden column: the S3 object a row was read from (offline: the file and line)
SERDE = "org.apache.hadoop.hive.serde2.RegexSerDe"  # the lines tables' (corrections)
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"  # what Firehose converts to
JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"  # Firehose's own JSON: the records it could not convert
REJECTED = "rejected"  # the table of those records, every ledger's, by ``ledger``
REJECTED_PREFIX = f"{RAW_PREFIX}/errors/"  # <ledger>/<error type>/<dt>/: kept as long as fleet/
CONVERSION_FAILED = "format-conversion-failed"  # Firehose's error output type for a record it could not convert
PARTITIONING_FAILED = "partitioning-failed"  # ... and for one whose partition key it could not read (no thing)
# ... and for one over the stream's active partitions quota (its "Buffer data for dynamic partitioning" page names
# the folder so; [U] not seen written)
PARTITIONS_EXCEEDED = "activePartitionExceeded"
ERROR_TYPES = (CONVERSION_FAILED, PARTITIONING_FAILED, PARTITIONS_EXCEEDED)  # the rejected table's error_type
REJECTED_PARTITIONS = ("ledger", "error_type", "dt")  # its folders' order: <ledger>/<error type>/<hour>/
# the JSON document Firehose writes for each (its "Handling errors for data format conversion" page): the key as
# written, its column (Hive type); rawData is the record's bytes, base64
REJECTED_FIELDS = (
    ("attemptsMade", "bigint"),
    ("arrivalTimestamp", "bigint"),
    ("ErrorCode", "string"),
    ("ErrorMessage", "string"),
    ("attemptEndingTimestamp", "bigint"),
    ("rawData", "string"),
    ("sequenceNumber", "string"),
    ("subSequenceNumber", "bigint"),
)
LINE_REGEX = "(?s)(.*)"  # the whole line; (?s): a raw U+2028/U+0085 in a JSON string is not a line's end to Java
LINE_BREAK = re.compile(r"\r\n|\r|\n")  # where Hadoop's LineRecordReader (TextInputFormat) ends a line
# how far a device's clock may run ahead of the hour its messages arrive in (and a missed crossing's time ahead of
# its correction's recording): a period's queries read arrival partitions from its start less this
ARRIVAL_SLACK = timedelta(days=1)
DELIVERY_SETTLE = timedelta(minutes=10)  # twice the streams' 300 s buffering: a report older than this is landed
# a field's text, as json_extract_scalar gives it, that both engines cast alike ({0,1}: no ? in the SQL's text)
PATTERNS = {
    "bigint": r"^-{0,1}[0-9]{1,18}$",
    "double": r"^-{0,1}[0-9]+(\.[0-9]+){0,1}([eE][-+]{0,1}[0-9]+){0,1}$",
    "boolean": r"^(true|false)$",
    "timestamp": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6}){0,1}(Z|[-+][0-9]{2}:[0-9]{2})$",
}


@dataclass(frozen=True)
class Field:
    """A column of the parsed table: the message's value at ``path``, of ``kind`` (string, bigint, double, boolean,
    timestamp). A value of another kind makes the line malformed, as does a ``required`` one missing."""

    name: str
    path: str
    kind: str = "string"
    required: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    topic_filter: str  # the IoT rule's topic
    message_type: str  # the messages' "type"
    fields: tuple[Field, ...]
    derived: tuple[tuple[str, str], ...] = ()  # (column, SQL over the fields' text columns)
    checks: tuple[tuple[str, str], ...] = ()  # (SQL over the text columns, true when wrong; the reason)
    root: str = RAW_PREFIX  # the bucket's folder above the table's ('': none): what Firehose writes expires with fleet/
    schema: str = ""  # the device's message schema (edge_component/schemas/<schema>.schema.json): Parquet; '': lines
    # the field whose hour stands for the arrival partition (dt) of a message read from a local file, where nothing
    # arrived: the device's time for what Firehose delivers, the recording's for a correction (its object's hour)
    arrival: str = "timestamp"

    @property
    def prefix(self) -> str:
        return f"{self.root}/{self.name}/" if self.root else f"{self.name}/"

    @property
    def partition_keys(self) -> tuple[str, ...]:
        """Its partitions: the arrival hour, and for a table Firehose converts the device."""
        return ("dt", DEVICE) if self.schema else ("dt",)

    @property
    def rejected_prefix(self) -> str:
        """Where Firehose writes the records it could not partition or convert (``REJECTED``)."""
        return f"{REJECTED_PREFIX}{self.name}/"


_LAST_DASH = "strpos(reverse(\"event_id_text\"), '-')"  # the last '-' of event_id, from its end (0: none)
COUNTS = Table(
    "counts",
    "od/+/counts",
    "crossing",
    schema="counts",
    root=PARQUET_ROOT,
    fields=(
        Field("thing", "$.thing", required=True),
        Field("type", "$.type", required=True),
        Field("event_id", "$.event_id", required=True),
        Field("seq", "$.seq", "bigint", required=True),
        Field("timestamp", "$.timestamp", required=True),
        Field("sent_at", "$.timestamp", "timestamp"),
        Field("line", "$.line", required=True),
        Field("class", "$.class", required=True),
        Field("direction", "$.direction", required=True),
        Field("track_id", "$.track_id", "bigint"),
        Field("camera", "$.camera"),  # absent: the camera was OK when the crossing was counted
    ),
    derived=(("stream", f'substr("event_id_text", 1, length("event_id_text") - {_LAST_DASH})'),),
    checks=(
        ("\"direction_text\" NOT IN ('in', 'out')", "direction is neither in nor out"),
        (
            # not ^.+-([0-9]+)$ with the seq's text as the digits (that text is an integer's here): string
            # functions, not a regular expression, which took a device-year's load a third longer
            f'{_LAST_DASH} = 0 OR length("event_id_text") = {_LAST_DASH} '
            f'OR substr("event_id_text", length("event_id_text") - {_LAST_DASH} + 2) <> "seq_text"',
            "event_id is not <stream>-<seq>",
        ),
    ),
)
HEALTH = Table(
    "health",
    "od/+/health",
    "health",
    schema="health",
    root=PARQUET_ROOT,
    fields=(
        Field("thing", "$.thing", required=True),
        Field("type", "$.type", required=True),
        Field("timestamp", "$.timestamp", required=True),
        Field("sent_at", "$.timestamp", "timestamp"),
        Field("model", "$.model"),
        Field("model_component", "$.model_component"),
        Field("fps", "$.fps", "double"),
        Field("backend", "$.runtime.backend"),
        Field("precision", "$.runtime.precision"),
        Field("camera_state", "$.camera.state"),
        Field("counts_seq", "$.counts.seq", "bigint"),
        Field("counts_stream", "$.counts.stream"),
        Field("outbox_pending", "$.counts.outbox.pending", "bigint"),
        Field("outbox_capacity", "$.counts.outbox.capacity", "bigint"),
        Field("outbox_oldest_seq", "$.counts.outbox.oldest_seq", "bigint"),
        Field("outbox_full", "$.counts.outbox.full", "boolean"),
        Field("outbox_lost", "$.counts.outbox.lost", "bigint"),
        Field("publish_errors", "$.publish_errors", "bigint"),  # devices before publish_retries/delivery_failures
        Field("publish_retries", "$.publish_retries", "bigint"),
        Field("delivery_failures", "$.delivery_failures", "bigint"),
        Field("counts_lost", "$.counts_lost", "bigint"),
    ),
)
TABLES = (COUNTS, HEALTH)  # what the devices send: a Firehose stream and an IoT rule each
# A person's amendment of a crossing (odshared.fleet.corrections), never an edit of the device's events: one JSON
# object per S3 object, written by odctl under corrections/ (kept: not under fleet/, which expires), in the hour it
# was recorded (the same dt projection). Each states the crossing as it should be counted (its thing, line, class,
# direction, time) but for ``not_a_crossing``, so the queries need not know what the device said to apply it.
CORRECTION_KINDS = ("not_a_crossing", "wrong_class", "wrong_direction", "missed")
CORRECTIONS = Table(
    "corrections",
    "",
    "correction",
    (
        Field("type", "$.type", required=True),
        Field("correction_id", "$.correction_id", required=True),
        Field("event_id", "$.event_id", required=True),
        Field("kind", "$.kind", required=True),
        Field("thing", "$.thing", required=True),
        Field("line", "$.line"),
        Field("class", "$.class"),
        Field("direction", "$.direction"),
        Field("timestamp", "$.timestamp"),
        Field("sent_at", "$.timestamp", "timestamp"),
        Field("recorded_at", "$.recorded_at", "timestamp", required=True),
        Field("recorded_by", "$.recorded_by", required=True),
        Field("reason", "$.reason", required=True),
    ),
    checks=(
        (
            '"kind_text" NOT IN (' + ", ".join(f"'{k}'" for k in CORRECTION_KINDS) + ")",
            "kind is none of " + ", ".join(CORRECTION_KINDS),
        ),
        (
            '"kind_text" <> \'not_a_crossing\' AND ("line_text" IS NULL OR "class_text" IS NULL '
            'OR "direction_text" IS NULL OR "timestamp_text" IS NULL)',
            "a correction that counts a crossing names its line, class, direction and timestamp",
        ),
        (
            "\"kind_text\" <> 'not_a_crossing' AND \"direction_text\" NOT IN ('in', 'out')",
            "direction is neither in nor out",
        ),
    ),
    root="",  # corrections/ in the data bucket, beside fleet/
    arrival="recorded_at",
)
QUERIED = (*TABLES, CORRECTIONS)  # every table a named query may read


def _typed(field: Field) -> str:
    text = f'"{field.name}_text"'
    if field.kind == "string":
        return text
    pattern = PATTERNS[field.kind]
    value = f"try(from_iso8601_timestamp({text}))" if field.kind == "timestamp" else f"CAST({text} AS {field.kind})"
    return f"CASE WHEN regexp_like({text}, '{pattern}') THEN {value} END"


def _wrong(table: Table) -> str:
    """The fields missing or mistyped, listed (``''``: none); over the texts and the typed columns. The list is made
    only where something is wrong: one condition is cheaper than a list for every good line."""
    conditions = [(f'"{f.name}_text" IS NULL', f.path[2:]) for f in table.fields if f.required]
    mistyped = [f for f in table.fields if f.kind != "string"]
    conditions += [(f'("{f.name}_text" IS NOT NULL AND "{f.name}" IS NULL)', f.path[2:]) for f in mistyped]
    listed = ", ".join(f"CASE WHEN {condition} THEN '{path}' END" for condition, path in conditions)
    anything = " OR ".join(condition for condition, _ in conditions)
    return f"CASE WHEN {anything} THEN concat_ws(', ', {listed}) ELSE '' END"


def _malformed(table: Table) -> str:
    """Why a row is not a message of the table the queries can count (NULL when it is): the first reason that
    holds."""
    cases = [
        "WHEN refused IS NOT NULL THEN refused",
        f"WHEN \"type_text\" IS DISTINCT FROM '{table.message_type}' THEN 'type is not {table.message_type}'",
        "WHEN wrong <> '' THEN concat('missing or mistyped: ', wrong)",
        *(f"WHEN {condition} THEN '{reason}'" for condition, reason in table.checks),
    ]
    return "CASE " + " ".join(cases) + " END"


def _column(path: str) -> str:
    """A field's column in a Parquet table: ``$.counts.seq`` is the struct ``counts``' field ``seq``."""
    return ".".join(f'"{part}"' for part in path[2:].split("."))


def _converted_texts_sql(table: Table) -> str:
    """``texts_sql`` for a table Firehose converted: its columns already hold each field's text; ``body`` shows the
    fields a row has (``path=text, ...``), for naming a malformed row."""
    paths = list(dict.fromkeys(f.path for f in table.fields))
    shown = ", ".join(f"CASE WHEN {_column(p)} IS NOT NULL THEN concat('{p[2:]}=', {_column(p)}) END" for p in paths)
    texts = ", ".join(f'{_column(f.path)} AS "{f.name}_text"' for f in table.fields)
    return (
        f"(SELECT dt, {DEVICE}, \"{SOURCE}\" AS source, concat_ws(', ', {shown}) AS {BODY}, "
        f"CAST(NULL AS varchar) AS refused, {texts} FROM {table.name})"
    )


def rejected_sql() -> str:
    """The records Firehose could not convert or partition, as a subquery: ``ledger`` (counts, health), ``dt``,
    ``source``, ``reason`` (Firehose's error) and ``body`` (the record as it was sent)."""
    failed = f"CASE WHEN error_type = '{CONVERSION_FAILED}' THEN 'convert' ELSE 'partition' END"
    return (
        f'(SELECT ledger, dt, "{SOURCE}" AS source, '
        f"concat('Firehose could not ', {failed}, ' it (', coalesce(errorcode, 'no code'), ': ', "
        "coalesce(errormessage, 'no message'), ')') AS reason, "
        f"from_utf8(from_base64(rawdata)) AS {BODY} FROM {REJECTED})"
    )


def texts_sql(table: Table) -> str:
    """Each of a lines table's lines with its fields' text as Trino's ``json_extract_scalar`` gives it (NULL for
    a missing field, a JSON null, an object or an array), as a subquery: ``dt``, ``source`` (the S3 object), ``body``
    (the line), ``refused`` (why the line is no message at all: not JSON; NULL else), and ``<field>_text`` for
    each field. The JSON is parsed once. A table Firehose
    converted to Parquet holds the texts as its columns (``odshared.fleet.columns``: an object's or an array's
    JSON text where the message has one), and ``refused`` is NULL: Firehose kept what it could not convert apart."""
    if table.schema:
        return _converted_texts_sql(table)
    texts = ", ".join(f"json_extract_scalar(doc, '{f.path}') AS \"{f.name}_text\"" for f in table.fields)
    return (
        f"(SELECT dt, source, {BODY}, CASE WHEN doc IS NULL THEN 'not JSON' END AS refused, {texts} "
        f'FROM (SELECT dt, "{SOURCE}" AS source, {BODY}, try(json_parse({BODY})) AS doc FROM {table.name}))'
    )


def parsed_sql(table: Table, texts: str = "") -> str:
    """The table's messages parsed, as a subquery: its partitions (``dt``; ``device`` for a converted table),
    ``source`` (the S3 object), ``body`` (the line; for a converted table the fields it holds), each field
    typed (NULL where its text is not of its kind), the derived columns, and ``malformed`` (why; NULL for a good
    line). ``texts``: the relation of the fields' text (``texts_sql``'s columns) where it is not the lines' own
    parse (odctl reads local files' fields with DuckDB's reader); every engine then checks and casts them alike.
    Each level computes a thing once: the typed values, then what is wrong, then why."""
    typed = ", ".join(f'{_typed(f)} AS "{f.name}"' for f in table.fields)
    columns = [f'"{f.name}"' for f in table.fields] + [f'{sql} AS "{name}"' for name, sql in table.derived]
    return (
        f"(SELECT {', '.join(table.partition_keys)}, source, {BODY}, {', '.join(columns)}, "
        f"{_malformed(table)} AS malformed "
        f"FROM (SELECT *, {_wrong(table)} AS wrong FROM (SELECT *, {typed} FROM {texts or texts_sql(table)})))"
    )


# The counts table's good messages, each crossing once (by event_id: its first copy to arrive, then the least by time,
# line, class, direction and text, so two copies that disagree choose alike wherever the text is not kept): a
# relation of every field and derived column. Its parameters: the arrival partition from (a period's first), then
# the device twice ('' = every one; the device partition is the crossing's thing, so a device's query reads its
# objects only and its crossings are the same).
_COPIES = ", ".join(f'"{name}"' for name in (*(f.name for f in COUNTS.fields), *(n for n, _ in COUNTS.derived)))
CROSSINGS = (
    f"(SELECT {_COPIES} FROM (SELECT {_COPIES}, "
    f'row_number() OVER (PARTITION BY thing, event_id ORDER BY dt, "timestamp", line, "class", direction, {BODY}) '
    "AS copy "
    f"FROM {{{COUNTS.name}}} WHERE dt >= ? AND (? = '' OR {DEVICE} = ?) AND malformed IS NULL) WHERE copy = 1)"
)


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    sql: str
    template: str = ""  # the file's text, ``{counts}``, ``{crossings}`` and the other places unfilled

    def over(self, relations: Mapping[str, str]) -> str:
        """The query with each table's place filled by the relation named (a table already parsed by
        ``parsed_sql``: the offline route parses once what Athena parses in the query), the others parsed here."""
        return _expand(self.template, relations)


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
    found = [
        NamedQuery(name, text.splitlines()[0].removeprefix("--").strip(), _expand(text), text) for name, text in texts
    ]
    return tuple(sorted(found, key=lambda q: q.name))


def _expand(text: str, relations: Mapping[str, str] | None = None) -> str:
    """``text`` with ``{crossings}`` written out, then each table's place filled: by the relation ``relations``
    names for it, else by its parse."""
    text = text.replace("{crossings}", CROSSINGS).replace("{" + REJECTED + "}", rejected_sql())
    for table in QUERIED:
        place = "{" + table.name + "}"
        if place in text:
            text = text.replace(place, (relations or {}).get(table.name) or parsed_sql(table))
    return text


def query(name: str) -> NamedQuery:
    return next(q for q in named_queries() if q.name == name)


def split_lines(text: str) -> list[str]:
    """A Firehose object's lines as Athena reads them (TextInputFormat: ``\\n``, ``\\r`` or ``\\r\\n`` ends a line;
    no row after a final break), so offline rows are Athena's rows."""
    lines = LINE_BREAK.split(text)
    return lines[:-1] if lines and lines[-1] == "" else lines


def arrival_floor(since: datetime) -> str:
    """The lowest arrival partition a period starting at ``since`` can have rows in: a device's clock is taken to
    run at most ``ARRIVAL_SLACK`` ahead of the hour its message arrives in."""
    return (since.astimezone(UTC) - ARRIVAL_SLACK).strftime(PARTITION_FORMAT)


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _crossings_parameters(since: datetime, thing: str) -> list[str]:
    """``CROSSINGS``' own, first in every crossings query: the arrival floor, the device partition."""
    return [arrival_floor(since), thing, thing]


def _period_filter(since: datetime, until: datetime, thing: str, line: str) -> list[str]:
    return [iso_utc(since), iso_utc(until), thing, thing, line, line]


def period_parameters(since: datetime, until: datetime, thing: str = "", line: str = "") -> list[str]:
    """The crossings queries' parameters, in their order (``CROSSINGS``' first)."""
    return [*_crossings_parameters(since, thing), *_period_filter(since, until, thing, line)]


def corrected_parameters(since: datetime, until: datetime, thing: str = "", line: str = "") -> list[str]:
    """The parameters of the queries that also read corrections (``corrected_balance``; ``review_parameters``):
    the crossings', the corrections' arrival floor (the same: a correction is recorded after the crossing it amends
    arrived, a missed one no later than ``ARRIVAL_SLACK`` before its time, so Athena reads the period's partitions
    of corrections, not every hour since the first), then the period's filter."""
    return [*_crossings_parameters(since, thing), arrival_floor(since), *_period_filter(since, until, thing, line)]


def parameters_of(name: str, since: datetime, until: datetime, thing: str = "", line: str = "") -> list[str]:
    """A period query's parameters, told by its text: ``corrected_parameters`` for one that reads corrections, else
    ``period_parameters``."""
    reads_corrections = "{" + CORRECTIONS.name + "}" in query(name).template
    return (corrected_parameters if reads_corrections else period_parameters)(since, until, thing, line)


def review_parameters(
    since: datetime, until: datetime, thing: str = "", line: str = "", event_id: str = ""
) -> list[str]:
    """``crossings_for_review``'s parameters: ``corrected_parameters``, then the one event (``''``: every one)."""
    return [*corrected_parameters(since, until, thing, line), event_id, event_id]


def gap_parameters(until: datetime, thing: str = "", settle: timedelta = DELIVERY_SETTLE) -> list[str]:
    """``crossing_gaps``' parameters: health reports sent before ``until - settle`` count, so that the crossings
    a report says were delivered have left Firehose's buffer (offline, nothing buffers: ``settle`` 0)."""
    return [thing, thing, iso_utc(until - settle), thing, thing, thing, thing]
