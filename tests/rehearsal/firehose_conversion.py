"""Firehose's dynamic partitioning and record format conversion, which moto's Firehose does not do: each record moto
delivered, partitioned by its stream's jq query and converted to Parquet against its stream's Glue columns as the
stream's description says, at the key Firehose would write (one object per partition), and each record it could not
partition or convert written as Firehose's error document under the error output prefix.

How AWS behaves where it decides the outcome: a record that is not one JSON object fails the whole record (AWS's
"Handling errors for data format conversion" page: its document, with the record's bytes in ``rawData``, under
``!{firehose:error-output-type}`` = ``format-conversion-failed``); the OpenX deserializer matches keys to columns
without regard to case unless its ``CaseInsensitive`` is false (the stack's) and keeps the columns a record lacks
null; prefixes' ``!{timestamp:...}`` is the arrival time (UTC) of the object's oldest record; a record whose
partition key is missing goes to ``partitioning-failed`` (the CDK's own integration test of dynamic partitioning
expects that folder for a record without its keys). Choices where AWS does not document the case, marked [U] where
they are made: a scalar into a string column is its JSON text (``5``, ``2.5``, ``true``); an object or an array into
a string column is its JSON text; anything but an object into a struct or map column, or but an array into an array
column, fails the record; a partition key is a string's text, or another value's JSON text; a key that is null or
'' fails the record (before it is converted), as does a record that is not JSON; partitioning's error document is
processing's (``errorCode``, ``errorMessage``, ``rawData``). Only a jq query of one top-level key (``.thing``) is
evaluated: anything else fails loudly.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from odshared.fleet.columns import hive_parts
from odshared.fleet.ledger import CONVERSION_FAILED, PARTITION_FORMAT, PARTITIONING_FAILED

ERROR_CODE = "DataFormatConversion.MalformedData"  # [U] the stand-in's code; the queries report whatever AWS gives
PARTITIONING_ERROR_CODE = "DynamicPartitioning.MetadataExtractionFailed"
JAVA_FORMAT = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}
EXPRESSION = re.compile(r"!\{(?P<namespace>[a-zA-Z]+):(?P<value>[^}]+)\}")


class Unconvertible(ValueError):
    """A record the conversion cannot write: Firehose's error output takes it."""


def evaluate_prefix(prefix: str, arrival: datetime, error_type: str = "", keys: Mapping[str, str] | None = None) -> str:
    """A prefix's expressions as Firehose evaluates them (only those the stack uses: anything else fails loudly);
    ``keys``: the object's partition keys."""

    def value(match: re.Match[str]) -> str:
        namespace, text = match["namespace"], match["value"]
        if namespace == "timestamp":
            pattern = re.sub("|".join(JAVA_FORMAT), lambda m: JAVA_FORMAT[m.group(0)], text)
            return arrival.astimezone(UTC).strftime(pattern)
        if namespace == "firehose" and text == "error-output-type" and error_type:
            return error_type
        if namespace == "partitionKeyFromQuery" and keys and text in keys:
            return keys[text]
        raise NotImplementedError(f"the stand-in does not evaluate {match.group(0)}")

    return EXPRESSION.sub(value, prefix)


def to_column(value: Any, hive: str, where: str) -> Any:
    """A JSON value as the column of ``hive`` type holds it."""
    kind, parts = hive_parts(hive)
    if value is None:
        return None
    if kind == "string":
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))  # [U]
    if kind == "struct":
        if not isinstance(value, dict):
            raise Unconvertible(f"{where}: an object expected for a struct column")  # [U]
        return {name: to_column(value.get(name), part, f"{where}.{name}") for name, part in parts}
    if kind == "map":
        if not isinstance(value, dict):
            raise Unconvertible(f"{where}: an object expected for a map column")  # [U]
        return [(k, to_column(v, parts[0][1], f"{where}.{k}")) for k, v in value.items()]
    if kind == "array":
        if not isinstance(value, list):
            raise Unconvertible(f"{where}: an array expected for an array column")  # [U]
        return [to_column(v, parts[0][1], f"{where}[]") for v in value]
    raise NotImplementedError(f"{hive}: a type the stand-in does not convert")


def arrow_type(hive: str) -> Any:
    import pyarrow as pa

    kind, parts = hive_parts(hive)
    if kind == "string":
        return pa.string()
    if kind == "struct":
        return pa.struct([(name, arrow_type(part)) for name, part in parts])
    if kind == "map":
        return pa.map_(pa.string(), arrow_type(parts[0][1]))
    if kind == "array":
        return pa.list_(arrow_type(parts[0][1]))
    raise NotImplementedError(hive)


def convert(
    records: list[bytes], columns: list[tuple[str, str]], arrival: datetime, case_insensitive: bool = False
) -> tuple[bytes, list[dict]]:
    """The records as one Parquet object (snappy; empty bytes when none converted) and the error document of each
    record that could not be converted. ``case_insensitive``: the OpenX deserializer's setting (AWS's default is
    true; the stack sets false)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows, failed = [], []
    for number, record in enumerate(records):
        try:
            message = json.loads(record)
            if not isinstance(message, dict):
                raise Unconvertible("a JSON object expected")
            given = {k.lower(): v for k, v in message.items()} if case_insensitive else message
            rows.append({name: to_column(given.get(name), hive, name) for name, hive in columns})
        except (ValueError, UnicodeDecodeError) as exc:  # json's errors are ValueErrors, as is Unconvertible
            failed.append(_document(record, arrival, number, ERROR_CODE, str(exc), CONVERSION_FAILED))
    if not rows:
        return b"", failed
    schema = pa.schema([(name, arrow_type(hive)) for name, hive in columns])
    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), out, compression="snappy")
    return out.getvalue(), failed


class Unpartitionable(ValueError):
    """A record whose partition keys Firehose cannot read: its error output takes it."""


def partition_keys(record: bytes, queries: Mapping[str, str]) -> dict[str, str]:
    """The record's partition keys, each its jq query's value (a query of one top-level key only)."""
    try:
        message = json.loads(record)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unpartitionable(f"not JSON ({exc})") from None
    keys = {}
    for name, query in queries.items():
        if not re.fullmatch(r"\.[A-Za-z_][A-Za-z0-9_]*", query):
            raise NotImplementedError(f"the stand-in does not evaluate the jq query {query}")
        value = message.get(query[1:]) if isinstance(message, dict) else None
        if value is None or value == "":
            raise Unpartitionable(f"{query} is null")
        keys[name] = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))  # [U]
    return keys


def _document(record: bytes, arrival: datetime, number: int, code: str, message: str, error_type: str) -> dict:
    """Firehose's error document for a record it could not deliver (its keys as each error type writes them)."""
    milliseconds = int(arrival.timestamp() * 1000)
    if error_type == PARTITIONING_FAILED:  # [U] processing's shape
        names = ("errorCode", "errorMessage")
        extra: dict[str, Any] = {}
    else:
        names = ("ErrorCode", "ErrorMessage")
        extra = {"sequenceNumber": f"{milliseconds}{number:08d}", "subSequenceNumber": None}
    return {
        "attemptsMade": 1,
        "arrivalTimestamp": milliseconds,
        names[0]: code,
        names[1]: message,
        "attemptEndingTimestamp": milliseconds,
        "rawData": base64.b64encode(record).decode(),
        **extra,
    }


Partitions = tuple[tuple[str, str], ...]  # an object's partition keys, (name, value) in the prefix's order


def deliver(
    records: list[bytes],
    columns: list[tuple[str, str]],
    arrival: datetime,
    queries: Mapping[str, str],
    case_insensitive: bool = False,
) -> tuple[dict[Partitions, bytes], dict[str, list[dict]]]:
    """What Firehose makes of one buffer of records: a Parquet object per partition (``queries``: the stream's jq
    query per partition key; none: one object), and per error type the documents of the records it refused."""
    groups: dict[Partitions, list[bytes]] = {}
    failed: dict[str, list[dict]] = {}
    for number, record in enumerate(records):
        try:
            keys = partition_keys(record, queries) if queries else {}
        except Unpartitionable as exc:
            document = _document(record, arrival, number, PARTITIONING_ERROR_CODE, str(exc), PARTITIONING_FAILED)
            failed.setdefault(PARTITIONING_FAILED, []).append(document)
            continue
        groups.setdefault(tuple(keys.items()), []).append(record)
    objects = {}
    for keys, grouped in groups.items():
        parquet, refused = convert(grouped, columns, arrival, case_insensitive)
        if parquet:
            objects[keys] = parquet
        failed[CONVERSION_FAILED] = failed.get(CONVERSION_FAILED, []) + refused
    return objects, {kind: documents for kind, documents in failed.items() if documents}


def jq_keys(program: str) -> dict[str, str]:
    """The keys of a jq program that makes an object of top-level paths, ``{device:.thing}``, each key's path; any
    other program fails loudly (the stand-in evaluates no more of jq)."""
    pair = r"([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(\.[A-Za-z_][A-Za-z0-9_]*)"
    if not re.fullmatch(r"\{\s*" + pair + r"(\s*,\s*" + pair + r")*\s*\}", program):
        raise NotImplementedError(f"the stand-in does not evaluate the jq program {program}")
    return dict(re.findall(pair, program))


def metadata_queries(destination: Mapping[str, Any]) -> dict[str, str]:
    """The jq query of each partition key, from a stream's description (none: no dynamic partitioning)."""
    if not destination.get("DynamicPartitioningConfiguration", {}).get("Enabled"):
        return {}
    for processor in destination.get("ProcessingConfiguration", {}).get("Processors", []):
        if processor["Type"] == "MetadataExtraction":
            parameters = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}
            return jq_keys(parameters["MetadataExtractionQuery"])
    raise ValueError("dynamic partitioning with no MetadataExtraction processor")


def _records(data: bytes) -> list[bytes]:
    """A moto object's records: the IoT rule ends each with its separator, a newline."""
    return [line + b"\n" for line in data.split(b"\n")[:-1]]


def convert_landed(s3: Any, firehose: Any, bucket: str, columns: dict[str, list[tuple[str, str]]]) -> int:
    """Every object moto's Firehose delivered for a stream that converts, replaced by what Firehose writes: a
    Parquet object per partition under the prefix evaluated at its hour and keys, and its refused records under the
    error prefix. How many objects it converted."""
    converted = 0
    for name in firehose.list_delivery_streams()["DeliveryStreamNames"]:
        described = firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
        destination = described["Destinations"][0]["ExtendedS3DestinationDescription"]
        conversion = destination.get("DataFormatConversionConfiguration", {})
        if not conversion.get("Enabled"):
            continue
        table = conversion["SchemaConfiguration"]["TableName"]
        prefix = destination["Prefix"]  # moto writes it as it is, then its own YYYY/MM/DD/HH/
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                hour, leaf = item["Key"][len(prefix) :].rsplit("/", 1)
                arrival = datetime.strptime(hour, PARTITION_FORMAT).replace(tzinfo=UTC)
                data = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                openx = conversion["InputFormatConfiguration"]["Deserializer"].get("OpenXJsonSerDe", {})
                objects, failed = deliver(
                    _records(data),
                    columns[table],
                    arrival,
                    metadata_queries(destination),
                    openx.get("CaseInsensitive", True),
                )
                s3.delete_object(Bucket=bucket, Key=item["Key"])
                for keys, parquet in objects.items():
                    key = evaluate_prefix(prefix, arrival, keys=dict(keys)) + leaf
                    s3.put_object(Bucket=bucket, Key=key, Body=parquet)
                for error_type, documents in failed.items():
                    key = evaluate_prefix(destination["ErrorOutputPrefix"], arrival, error_type) + leaf
                    s3.put_object(Bucket=bucket, Key=key, Body="".join(json.dumps(d) + "\n" for d in documents))
                converted += 1
    return converted


def write_local(folder: Path, key: str, body: bytes | str) -> Path:
    path = folder / key
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(body, str):
        path.write_text(body)
    else:
        path.write_bytes(body)
    return path
