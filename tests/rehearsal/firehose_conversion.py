"""Firehose's record format conversion, which moto's Firehose does not do: each record moto delivered, converted
to Parquet against its stream's Glue columns as the stream's description says, at the key Firehose would write, and
each record it could not convert written as Firehose's error document under the error output prefix.

How AWS behaves where it decides the outcome: a record that is not one JSON object fails the whole record (AWS's
"Handling errors for data format conversion" page: its document, with the record's bytes in ``rawData``, under
``!{firehose:error-output-type}`` = ``format-conversion-failed``); the OpenX deserializer matches keys to columns
without regard to case unless its ``CaseInsensitive`` is false (the stack's) and keeps the columns a record lacks
null; prefixes' ``!{timestamp:...}`` is the arrival time (UTC) of the object's oldest record. Choices where AWS
does not document the case, marked [U] where they are made: a scalar into a string column is its JSON text (``5``,
``2.5``, ``true``); an object or an array into a string column is its JSON text; anything but an object into a
struct or map column, or but an array into an array column, fails the record.
"""

from __future__ import annotations

import base64
import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from odshared.fleet.columns import hive_parts
from odshared.fleet.ledger import CONVERSION_FAILED, PARTITION_FORMAT

ERROR_CODE = "DataFormatConversion.MalformedData"  # [U] the stand-in's code; the queries report whatever AWS gives
JAVA_FORMAT = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}
EXPRESSION = re.compile(r"!\{(?P<namespace>[a-zA-Z]+):(?P<value>[^}]+)\}")


class Unconvertible(ValueError):
    """A record the conversion cannot write: Firehose's error output takes it."""


def evaluate_prefix(prefix: str, arrival: datetime, error_type: str = "") -> str:
    """A prefix's expressions as Firehose evaluates them (only those the stack uses: anything else fails loudly)."""

    def value(match: re.Match[str]) -> str:
        namespace, text = match["namespace"], match["value"]
        if namespace == "timestamp":
            pattern = re.sub("|".join(JAVA_FORMAT), lambda m: JAVA_FORMAT[m.group(0)], text)
            return arrival.astimezone(UTC).strftime(pattern)
        if namespace == "firehose" and text == "error-output-type" and error_type:
            return error_type
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
    milliseconds = int(arrival.timestamp() * 1000)
    for number, record in enumerate(records):
        try:
            message = json.loads(record)
            if not isinstance(message, dict):
                raise Unconvertible("a JSON object expected")
            given = {k.lower(): v for k, v in message.items()} if case_insensitive else message
            rows.append({name: to_column(given.get(name), hive, name) for name, hive in columns})
        except (ValueError, UnicodeDecodeError) as exc:  # json's errors are ValueErrors, as is Unconvertible
            failed.append(
                {
                    "attemptsMade": 1,
                    "arrivalTimestamp": milliseconds,
                    "ErrorCode": ERROR_CODE,
                    "ErrorMessage": str(exc),
                    "attemptEndingTimestamp": milliseconds,
                    "rawData": base64.b64encode(record).decode(),
                    "sequenceNumber": f"{milliseconds}{number:08d}",
                    "subSequenceNumber": None,
                }
            )
    if not rows:
        return b"", failed
    schema = pa.schema([(name, arrow_type(hive)) for name, hive in columns])
    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), out, compression="snappy")
    return out.getvalue(), failed


def _records(data: bytes) -> list[bytes]:
    """A moto object's records: the IoT rule ends each with its separator, a newline."""
    return [line + b"\n" for line in data.split(b"\n")[:-1]]


def convert_landed(s3: Any, firehose: Any, bucket: str, columns: dict[str, list[tuple[str, str]]]) -> int:
    """Every object moto's Firehose delivered for a stream that converts, replaced by what Firehose writes: the
    Parquet object under the prefix evaluated at its hour, and its rejected records under the error prefix.
    How many objects it converted."""
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
                parquet, failed = convert(_records(data), columns[table], arrival, openx.get("CaseInsensitive", True))
                s3.delete_object(Bucket=bucket, Key=item["Key"])
                if parquet:
                    s3.put_object(Bucket=bucket, Key=evaluate_prefix(prefix, arrival) + leaf, Body=parquet)
                if failed:
                    key = evaluate_prefix(destination["ErrorOutputPrefix"], arrival, CONVERSION_FAILED) + leaf
                    s3.put_object(Bucket=bucket, Key=key, Body="".join(json.dumps(f) + "\n" for f in failed))
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
