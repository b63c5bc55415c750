"""The ledger tables' Glue columns, from the device's message schemas: what Firehose's record format conversion
writes to Parquet and what Athena reads.

Each top-level property of the message schema is a column. Every value is kept as its text (``string``), never
typed: the queries check and cast each field's text (``odshared.fleet.ledger.PATTERNS``) alike on every engine, so
what counts is decided by the queries, not by the conversion's own coercions, and a value of a wrong kind lands as
text the queries call malformed instead of failing the record. An object is a struct of its properties only where
the ledger reads into it (health's ``runtime``, ``camera``, ``counts``): everywhere else it is kept as its JSON
text, so an odd value the ledger never reads (a crossing's ``totals``) cannot cost the record. The OpenX
deserializer gives a string column a JSON value's text, an object's included [U: AWS does not say so for
Firehose's conversion; the tests' stand-in does the same].
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SCALAR = "string"


def hive_type(schema: Mapping[str, Any], read: Iterable[str] = ()) -> str:
    """The Hive type of a value the JSON schema describes; ``read``: the paths under it the ledger reads
    (``a.b``), which make it a struct of its properties."""
    paths = [p.split(".") for p in read]
    properties = schema.get("properties") or {}
    if not paths or not properties:
        return SCALAR
    fields = []
    for name, value in properties.items():
        under = [".".join(p[1:]) for p in paths if p[0] == name and len(p) > 1]
        fields.append(f"{name}:{hive_type(value, under)}")
    return "struct<" + ",".join(fields) + ">"


def glue_columns(schema: Mapping[str, Any], paths: Iterable[str] = ()) -> list[tuple[str, str]]:
    """The table's columns: each top-level property of the message schema, in its order, then each top-level key of
    ``paths`` (the fields the ledger reads, ``$.a.b``) that the schema admits only through
    ``additionalProperties``."""
    read = [p.removeprefix("$.").split(".") for p in paths]
    properties = dict(schema.get("properties", {}))
    for key in dict.fromkeys(p[0] for p in read):
        if key not in properties and isinstance(schema.get("additionalProperties"), Mapping):
            properties[key] = schema["additionalProperties"]
    return [
        (name, hive_type(value, [".".join(p[1:]) for p in read if p[0] == name and len(p) > 1]))
        for name, value in properties.items()
    ]
