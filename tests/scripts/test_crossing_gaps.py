"""`odctl counts --gaps` (the named query crossing_gaps, offline through DuckDB) names the seq ranges a device's
stream is missing, from the real device's crossings and health: a gap in the middle, at the start, and after an
outbox overflow, where the crossings still pending are the OLDEST (the newest were lost) and none where there is
none. odctl.crossing_sequence, the same rule over messages in memory, agrees on every case."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from odctl.cli import main
from odctl.crossing_sequence import crossing_streams
from odedge.publishers import OutboxSender, Transport
from odshared.fleet.ledger import gap_parameters, query
from tests.rehearsal.outbox_device import OutboxDevice


def _gaps(records: list[dict[str, Any]], folder: Path, capsys, *extra: str) -> list[dict[str, Any]]:
    """`odctl counts --gaps` over the ledger's messages (as odctl detect --out writes them); its rows, checked
    against crossing_sequence's ranges for the same messages."""
    ledger = folder / "ledger.jsonl"
    ledger.write_text("".join(json.dumps(r) + "\n" for r in records))
    capsys.readouterr()
    assert main(["counts", "--gaps", "--from", str(ledger), "--format", "json", *extra]) == 0
    rows = json.loads(capsys.readouterr().out)
    thing = extra[extra.index("--thing") + 1] if "--thing" in extra else None
    streams = {key: report for key, report in crossing_streams(records).items() if thing in (None, key[0])}
    assert sorted((r["stream"], r["first_missing"], r["last_missing"]) for r in rows) == sorted(
        (stream, first, last) for (_, stream), report in streams.items() for first, last in report.ranges
    )
    return rows


def _ranges(rows: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [(r["first_missing"], r["last_missing"]) for r in rows]


@pytest.fixture
def device(tmp_path: Path) -> OutboxDevice:
    """Eight crossings, all delivered, then the health message that says so (nothing pending)."""
    made = OutboxDevice(tmp_path / "device")
    assert made.cross(8) == list(range(1, 9))
    made.deliver()
    assert made.health()["counts"]["outbox"]["pending"] == 0
    return made


def test_no_gap_where_there_is_none_and_a_redelivery_is_no_crossing(device, tmp_path, capsys):
    assert _gaps(device.ledger(), tmp_path, capsys) == []
    assert _gaps(device.ledger(again={1, 5, 8}), tmp_path, capsys) == []


def test_a_gap_in_the_middle_at_the_start_and_at_the_end(device, tmp_path, capsys):
    """Lost on the way to the ledger: 3-5 in the middle; 1-2 at the start (beside the first seq received); 8, the
    last, which only the health message's seq reveals; all eight, which only health reveals."""
    (row,) = _gaps(device.ledger(drop={3, 4, 5}), tmp_path, capsys)
    assert (row["thing"], row["first_missing"], row["last_missing"], row["missing"]) == ("camera-07", 3, 5, 3)
    assert row["reported_seq"] == 8 and row["reported_pending"] == 0 and row["stream"] == device.counter.stream
    assert _ranges(_gaps(device.ledger(drop={1, 2}), tmp_path, capsys)) == [(1, 2)]
    assert _ranges(_gaps(device.ledger(drop={8}), tmp_path, capsys)) == [(8, 8)]
    assert _ranges(_gaps(device.ledger(drop={1, 4, 8}), tmp_path, capsys)) == [(1, 1), (4, 4), (8, 8)]
    # none of the stream's crossings reached the ledger: health alone names them all
    assert _ranges(_gaps(device.ledger(drop=set(range(1, 9))), tmp_path, capsys)) == [(1, 8)]
    assert _gaps(device.ledger(drop={3}), tmp_path, capsys, "--thing", "someone-else") == []


def test_after_an_overflow_the_pending_crossings_are_the_oldest(tmp_path, capsys):
    """Capacity 2 and the broker away: six crossings, 1-2 kept on disk, 3-4 held in memory, 5-6 lost (counts_lost
    2). Health then says 4 pending, the oldest 1, the last 6: nothing is missing yet (1-4 are still coming; a report
    that took the pending for the newest would have named 1-2). The broker back, 1-4 delivered and two more
    crossings with them: 5-6 are missing, and the device said it lost 2."""
    device = OutboxDevice(tmp_path / "device", capacity=2)
    assert device.cross(6) == [1, 2, 3, 4, 5, 6]
    outbox = device.health()["counts"]["outbox"]
    assert (outbox["pending"], outbox["oldest_seq"], device.counter.seq) == (4, 1, 6)
    assert sorted(device.outbox.entries) == [1, 2, 3, 4]  # the oldest kept, not the newest
    newest_assumed = set(range(1, device.counter.seq - outbox["pending"] + 1))
    assert newest_assumed == {1, 2} and newest_assumed <= set(device.outbox.entries)
    assert _gaps(device.ledger(), tmp_path, capsys) == []
    device.deliver()
    assert device.cross(2) == [7, 8]
    device.deliver()
    health = device.health()
    assert health["counts"]["outbox"]["pending"] == 0 and health["counts_lost"] == 2
    (row,) = _gaps(device.ledger(), tmp_path, capsys)
    assert (row["first_missing"], row["last_missing"], row["reported_seq"], row["reported_lost"]) == (5, 6, 8, 2)
    assert _ranges(_gaps(device.ledger(drop={2}), tmp_path, capsys)) == [(2, 2), (5, 6)]


class _Away(Transport):
    """The broker away: every delivery fails, as the real transports' do while the network is down."""

    def deliver(self, topic: str, payload: bytes) -> None:
        raise ConnectionError("not connected to the MQTT broker")


def test_after_an_overflow_and_a_restart_the_crossings_held_in_memory_are_missing(tmp_path, capsys):
    """Capacity 2, the broker away, six crossings (1-2 on disk, 3-4 in memory, 5-6 lost), then the process stops
    before the broker is back: the real sender's close loses 3-4 as well (counted). After the restart the outbox
    holds 1-2 and health says seq 6 with 1 the oldest pending: nothing is missing yet. Once 1-2 and a new crossing
    are delivered, 3-6 are: the gap the stop and the overflow made together, and the device says it lost those
    four, though its process has lost none."""
    first = OutboxDevice(tmp_path / "device", capacity=2)
    assert first.cross(6) == [1, 2, 3, 4, 5, 6]
    OutboxSender(first.outbox, _Away(), first.counters).close(timeout=0.2)
    assert first.counters.get("counts_lost") == 4  # 5-6 past the memory bound, 3-4 held in memory at stop
    device = OutboxDevice(tmp_path / "device", capacity=2)  # the restart: the same work folder
    assert sorted(device.outbox.entries) == [1, 2] and device.counter.seq == 6
    outbox = device.health()["counts"]["outbox"]
    assert (outbox["pending"], outbox["oldest_seq"]) == (2, 1)
    assert _gaps(device.ledger(), tmp_path, capsys) == []
    device.deliver()
    assert device.cross(3)[0] == 7
    device.deliver()
    device.health()
    (row,) = _gaps(device.ledger(), tmp_path, capsys)
    assert (row["first_missing"], row["last_missing"], row["missing"]) == (3, 6, 4)
    assert row["reported_seq"] == device.counter.seq and row["reported_pending"] == 0
    # what the device lost before the restart is still said beside the gap (its outbox's tally, not the process's)
    assert device.counters.get("counts_lost") == 0 and row["reported_lost"] == 4


def test_a_health_report_counts_once_its_crossings_can_have_landed(device):
    """On AWS a report sent in the last 10 minutes (twice the streams' buffering) is not yet used: the crossings it
    says were delivered may still be in Firehose's buffer. Offline nothing buffers."""
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    assert gap_parameters(now)[2] == "2026-12-05T11:50:00Z"
    assert gap_parameters(now, "cam", timedelta(0)) == ["cam", "cam", "2026-12-05T12:00:00Z", *["cam"] * 4]


def test_gaps_reads_the_whole_ledger(device, tmp_path, capsys):
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text("".join(json.dumps(r) + "\n" for r in device.ledger()))
    for extra in (["--since", "2026-01-01"], ["--line", "door"], ["--by", "hour"]):
        capsys.readouterr()
        assert main(["counts", "--gaps", "--from", str(ledger), *extra]) == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("{")]
        assert len(errors) == 1 and "--gaps reads the whole ledger" in errors[0]
    capsys.readouterr()
    assert main(["counts", "--gaps", "--from", str(ledger)]) == 0  # no gap: the header alone
    assert capsys.readouterr().out.splitlines() == [
        "thing,stream,first_missing,last_missing,missing,reported_seq,reported_pending,reported_lost"
    ]


def test_on_athena_the_gap_report_is_the_same_text(aws):
    """What `odctl counts --gaps` sends the stack's workgroup: crossing_gaps' text, unchanged (moto's Athena
    answers; boto3 validates the request)."""
    from datetime import UTC, datetime

    import boto3

    from odctl.ledger_athena import run_athena

    athena = boto3.client("athena", region_name="us-east-1")
    athena.create_work_group(Name="fleet", Configuration={"ResultConfiguration": {"OutputLocation": "s3://r/"}})
    parameters = gap_parameters(datetime(2026, 12, 5, tzinfo=UTC), "cam's")
    assert isinstance(run_athena("crossing_gaps", parameters, "fleet", "x_fleet", athena, poll_s=0.01), list)
    (execution,) = athena.list_query_executions(WorkGroup="fleet")["QueryExecutionIds"]
    sent = athena.get_query_execution(QueryExecutionId=execution)["QueryExecution"]
    assert sent["Query"] == query("crossing_gaps").sql
    assert sent["ExecutionParameters"] == ["'cam''s'"] * 2 + ["'2026-12-04T23:50:00Z'"] + ["'cam''s'"] * 4
