"""Local files read by DuckDB's reader accept exactly what Athena's parse of the same lines accepts: the same totals
from good messages, and each spoilt one refused locally for the reason ``malformed_records`` gives it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from odshared.core.errors import InputDataError
from odshared.fleet.ledger import period_parameters

ARRIVAL = datetime(2026, 12, 5, 9, tzinfo=UTC)
ALL_TIME = period_parameters(datetime(2026, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


@pytest.fixture
def crossings(tmp_path):
    """The real device's crossings, as its transport delivered them ({"topic", "message"} per line)."""
    from tests.rehearsal.outbox_device import OutboxDevice

    device = OutboxDevice(tmp_path / "device")
    device.cross(4)
    device.deliver()
    return [r["message"] for r in device.delivered()]


def _both(tmp_path, messages: list[str]):
    """The net balance from a local file of these lines (wrapped as odctl writes them) and from the same lines sent
    through Firehose to Athena's tables (converted as Firehose converts them); the local error's text, if the local
    read refused."""
    from odctl.ledger_local import run_query, run_query_files
    from tests.rehearsal.ledger_objects import land_lines

    local = tmp_path / "local.jsonl"
    local.write_text("".join(f'{{"topic":"od/x/counts","message":{m}}}\n' for m in messages))
    landed = land_lines(tmp_path / "bucket", {"counts": messages}, ARRIVAL)
    athena = run_query("net_balance", ALL_TIME, landed)
    bad = run_query("malformed_records", ALL_TIME[:1] * 3, landed)
    try:
        return run_query_files("net_balance", ALL_TIME, [local]), athena, bad, ""
    except InputDataError as exc:
        return None, athena, bad, str(exc)


def test_a_local_file_counts_what_athena_counts_and_refuses_what_athena_calls_malformed(tmp_path, crossings):
    good = [json.dumps(m, separators=(",", ":")) for m in crossings]
    local, athena, bad, _ = _both(tmp_path, good)
    assert local == athena and sum(r["crossed_in"] + r["crossed_out"] for r in athena) == 4 and bad == []
    first = crossings[0]
    escaped = {**first, "line": 'do"or\\'}  # escapes in a string: unescaped alike
    local, athena, _, _ = _both(tmp_path, [json.dumps(escaped), *good[1:]])
    assert local == athena and {r["line"] for r in athena} == {'do"or\\', "door"}
    spoilt = {
        "an object where a string is": {**first, "class": {"name": "car"}},
        "an array where an integer is": {**first, "seq": [1]},
        "null where a string is required": {**first, "line": None},
        "a seq with a fraction": {**first, "seq": 1.5},
        "a seq as a string of digits": {**first, "seq": str(first["seq"])},
        "a time with another offset": {**first, "timestamp": first["timestamp"].replace("Z", "+02:00")},
        "a time that is no time": {**first, "timestamp": "yesterday"},
    }
    for what, message in spoilt.items():
        local, athena, bad, error = _both(tmp_path, [json.dumps(message), *good[1:]])
        if bad:
            (row,) = bad
            assert local is None and f"({row['reason']})" in error, what
        else:
            assert local == athena, what
    assert not _both(tmp_path, [json.dumps({**first, "seq": str(first["seq"])})])[2]  # both take "1" as the seq 1


def test_a_local_health_report_firehose_would_refuse_is_refused_and_every_named_query_runs_offline(tmp_path):
    """A report whose ``counts`` (a struct column on Athena) is no object: Firehose rejects the record whole, so
    the local read refuses it, naming why; and malformed_records, which reads Firehose's rejected records too, runs
    on local files (none rejected there)."""
    from odctl.ledger_local import run_query_files
    from tests.rehearsal.outbox_device import OutboxDevice

    device = OutboxDevice(tmp_path / "device")
    device.cross(2)
    device.deliver()
    report = device.health()
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"topic": "od/camera-07/health", "message": report}) + "\n")
    assert [r["thing"] for r in run_query_files("last_health", ALL_TIME[:1], [good])] == ["camera-07"]
    assert run_query_files("malformed_records", ALL_TIME[:1] * 3, [good]) == []
    spoilt = tmp_path / "spoilt.jsonl"
    spoilt.write_text(json.dumps({"topic": "od/camera-07/health", "message": {**report, "counts": "six"}}) + "\n")
    with pytest.raises(InputDataError, match="Firehose would not convert it: counts is not an object"):
        run_query_files("last_health", ALL_TIME[:1], [spoilt])
