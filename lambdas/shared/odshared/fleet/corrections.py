"""Corrections of the counts ledger: a person's record that a crossing was wrong, never an edit of the device's events.

A business reconciling stock needs a count it can amend and an audit of who amended it, when and why, while the
device's own record stays as it was sent (the ledger's events are evidence too). So a correction is a record of its
own (``correction_id``), naming the ``event_id`` it amends; the named queries (``corrected_balance``,
``crossings_for_review``) give the totals as counted and as corrected side by side. Per event the latest correction
wins (its ``recorded_at``, then its ``correction_id``): a second look overrides the first, and a correction applies
once however many times the device's event was delivered (the queries count each event once first).

Each record states the crossing as it should be counted (thing, line, class, direction, timestamp), copied from the
device's event and changed where the kind says, so the queries apply it without knowing what the device said; a
``not_a_crossing`` removes the event. A ``missed`` adds one under a new ``event_id`` (``added-<id>``), which
later corrections may amend like any other. On AWS each record is one object, ``corrections/<yyyy/MM/dd/HH of
recorded_at>/<correction_id>.json`` (the Glue table ``corrections``, the ledger's ``dt`` projection); offline, lines
of a JSON Lines file read with the ledger's ``--from`` files.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from odshared.core.errors import InputDataError
from odshared.fleet.ledger import ARRIVAL_SLACK, CORRECTION_KINDS, CORRECTIONS, PARTITION_FORMAT, iso_utc

DIRECTIONS = ("in", "out")
ADDED_PREFIX = "added-"  # the event_id of a crossing a correction added: never a device's <stream>-<seq>
CROSSING_FIELDS = ("thing", "line", "class", "direction", "timestamp")  # what a record says is to be counted


def check_kind(kind: str) -> None:
    """Refused before the ledger is read: a typo must not cost a query."""
    if kind not in CORRECTION_KINDS:
        raise InputDataError(f"--kind {kind!r}: one of {', '.join(CORRECTION_KINDS)}")


def correct(
    kind: str,
    crossing: Mapping[str, Any] | None,
    recorded_by: str,
    reason: str,
    now: datetime,
    changes: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """The correction record of ``kind`` for ``crossing`` (the event as the ledger lists it: thing, line, class,
    direction, timestamp, event_id; for ``missed``: ``None``, the crossing is ``changes``). Refuses, naming
    the option to fix, what would record a correction that changes nothing or cannot be counted."""
    given: dict[str, str] = {k: v for k, v in (changes or {}).items() if v}
    check_kind(kind)
    if not recorded_by.strip() or not reason.strip():
        raise InputDataError("--by and --why: say who records the correction and why (neither may be empty)")
    correction_id = uuid.uuid4().hex
    if kind == "missed":
        missing = [f"--{name}" for name in CROSSING_FIELDS if not given.get(name)]
        if missing:
            raise InputDataError(f"--kind missed: give {', '.join(missing)} (the crossing to add)")
        stated: dict[str, Any] = {name: given[name] for name in CROSSING_FIELDS}
        event_id = ADDED_PREFIX + correction_id
    else:
        assert crossing is not None
        stated = {name: crossing.get(name) for name in CROSSING_FIELDS}
        event_id = str(crossing["event_id"])
        stated |= _changed(kind, stated, given)
    moment = _checked_crossing(stated)
    stated["timestamp"] = iso_utc(moment)
    if kind == "missed" and moment > now + ARRIVAL_SLACK:
        # the queries read a period's corrections from its arrival floor: one recorded earlier is never read
        raise InputDataError(
            f"--timestamp {stated['timestamp']}: more than {ARRIVAL_SLACK.total_seconds() / 3600:.0f} hours after "
            "now; a missed crossing has happened (give its time, with its time zone)"
        )
    record = {"type": CORRECTIONS.message_type, "correction_id": correction_id, "event_id": event_id, "kind": kind}
    if kind == "not_a_crossing":
        stated = {"thing": stated["thing"], "timestamp": stated["timestamp"]}
    return record | stated | {"recorded_at": iso_utc(now), "recorded_by": recorded_by, "reason": reason}


def _changed(kind: str, stated: Mapping[str, Any], changes: Mapping[str, str]) -> dict[str, Any]:
    """What the kind changes in the device's crossing; an option that does not belong to the kind is refused, so
    nobody believes a --class went into a wrong_direction record."""
    allowed = {"wrong_class": {"class"}, "wrong_direction": set(), "not_a_crossing": set()}[kind]
    stray = sorted(set(changes) - allowed)
    if stray:
        raise InputDataError(f"--kind {kind} takes no --{stray[0]} (it amends an event the ledger holds)")
    if kind == "wrong_class":
        if not changes.get("class"):
            raise InputDataError("--kind wrong_class: give --class, the class the object really is")
        if changes["class"] == stated["class"]:
            raise InputDataError(f"--class {changes['class']!r}: the device already counted it as that class")
        return {"class": changes["class"]}
    if kind == "wrong_direction":
        return {"direction": "out" if stated["direction"] == "in" else "in"}
    return {}


def _checked_crossing(stated: Mapping[str, Any]) -> datetime:
    """The crossing's time (written as the ledger's pattern takes it: ``iso_utc``), once its direction and time
    hold."""
    if stated.get("direction") not in DIRECTIONS:
        raise InputDataError(f"--direction {stated.get('direction')!r}: in or out")
    text = str(stated.get("timestamp") or "")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputDataError(f"--timestamp {text!r}: an ISO 8601 time, e.g. 2026-11-22T09:15:00Z") from None
    if moment.tzinfo is None:
        raise InputDataError(f"--timestamp {text!r}: say its time zone (Z for UTC)")
    return moment


def object_key(record: Mapping[str, Any]) -> str:
    """Where the record lives in the data bucket: the hour it was recorded, as the table's ``dt`` projects it."""
    recorded = datetime.fromisoformat(str(record["recorded_at"]).replace("Z", "+00:00"))
    return f"{CORRECTIONS.prefix}{recorded.astimezone(UTC).strftime(PARTITION_FORMAT)}/{record['correction_id']}.json"


def line(record: Mapping[str, Any]) -> str:
    """The record as one JSON Lines line (and as the S3 object's whole text: Athena reads it as one line)."""
    return json.dumps(record, separators=(",", ":")) + "\n"
