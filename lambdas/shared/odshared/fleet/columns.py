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
    ``additionalProperties``. A path no column reaches as a string is an error, not a column Athena lacks."""
    read = [p.removeprefix("$.").split(".") for p in paths]
    properties = dict(schema.get("properties", {}))
    for key in dict.fromkeys(p[0] for p in read):
        if key not in properties and isinstance(schema.get("additionalProperties"), Mapping):
            properties[key] = schema["additionalProperties"]
    columns = [
        (name, hive_type(value, [".".join(p[1:]) for p in read if p[0] == name and len(p) > 1]))
        for name, value in properties.items()
    ]
    for path in read:
        if reached(dict(columns), path) != SCALAR:
            raise ValueError(f"$.{'.'.join(path)}: the message schema has no such value for a column to hold")
    return columns


def hive_parts(hive: str) -> tuple[str, list[tuple[str, str]]]:
    """A Hive type's kind and its parts: a struct's (name, type) pairs, a map's ("", value type), an array's
    ("", item type); a scalar has none."""
    if "<" not in hive:
        return hive, []
    kind, inner = hive[: hive.index("<")], hive[hive.index("<") + 1 : -1]
    parts, depth, start = [], 0, 0
    for i, char in enumerate(inner + ","):
        depth += {"<": 1, ">": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    if kind == "struct":
        return kind, [(part[: part.index(":")], part[part.index(":") + 1 :]) for part in parts]
    return kind, [("", parts[-1])]


def reached(columns: Mapping[str, str], path: list[str]) -> str | None:
    """The Hive type a path (``["counts", "seq"]``) reaches through the columns' structs, or None."""
    hive = columns.get(path[0])
    for part in path[1:]:
        kind, parts = hive_parts(hive or "")
        hive = dict(parts).get(part) if kind == "struct" else None
    return hive
