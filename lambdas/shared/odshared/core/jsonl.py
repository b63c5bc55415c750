"""JSON Lines manifests: streaming reads that keep every bad line with its location, and atomic writes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from odshared.core import storage
from odshared.core.errors import InvalidLine, LineError, ManifestError

T = TypeVar("T")


def iter_records(uri: str) -> Iterator[tuple[int, str, dict[str, Any] | InvalidLine]]:
    """Yield (line number, raw text, parsed object or InvalidLine) for every non-blank line."""
    for number, raw in enumerate(storage.iter_lines(uri), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield number, raw, InvalidLine(uri, number, f"malformed JSON: {exc.msg} at column {exc.colno}", raw)
            continue
        if not isinstance(obj, dict):
            yield number, raw, InvalidLine(uri, number, "a manifest line must be a JSON object", raw)
            continue
        yield number, raw, obj


def parse_manifest(
    uri: str, parse: Callable[[dict[str, Any]], T]
) -> tuple[list[tuple[str, int, str, T]], list[InvalidLine]]:
    """Parse every line with ``parse``; return the valid items (file, line, raw text, item) and the invalid lines."""
    valid: list[tuple[str, int, str, T]] = []
    invalid: list[InvalidLine] = []
    for number, raw, obj in iter_records(uri):
        if isinstance(obj, InvalidLine):
            invalid.append(obj)
            continue
        try:
            valid.append((uri, number, raw, parse(obj)))
        except LineError as exc:
            invalid.append(InvalidLine(uri, number, str(exc), raw))
    return valid, invalid


def check_invalid(invalid: list[InvalidLine], skip_invalid: bool) -> None:
    """Stop before anything is written unless the caller chose to keep the valid lines."""
    if invalid and not skip_invalid:
        raise ManifestError(invalid)


def dumps_line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def write_lines(uri: str, records: Iterable[dict[str, Any]]) -> int:
    """Write records as JSON Lines (atomically for local files); returns the count."""
    count = 0
    with storage.open_writer(uri) as handle:
        for record in records:
            handle.write(dumps_line(record) + "\n")
            count += 1
    return count


def write_rejected(uri: str, invalid: list[InvalidLine]) -> None:
    write_lines(uri, (item.to_record() for item in invalid))
