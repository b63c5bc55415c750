"""`odctl counts backfill`: the Parquet a stack from before the partitioning by device wrote straight under each hour
(no partition names it, so the upgraded tables do not read it) moved into the device folders, its partitions
registered in the template's own Glue tables (moto server), with the real devices' messages converted as Firehose
converts them; the named queries then give every device's totals again, the parts keep the file's schema, a second
run and a run cut short before the delete count nothing twice, and an object Firehose could not have partitioned, or
one that is no Parquet, is left where it is, named, with a non-zero exit, the others moved."""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest

from odctl.cli import main
from odshared.fleet.ledger import COUNTS, PARTITION_FORMAT, period_parameters
from tests.infra.test_fleet_data import ALL_TIME, _catalog_from_template

ARRIVAL = datetime(2026, 3, 1, 9, tzinfo=UTC)


def _legacy_objects(tmp_path) -> tuple[dict[str, bytes], Counter]:
    """Two devices' real crossings in one object of the old layout, and one crossing whose thing was lost on the
    way in another; the crossings per device."""
    from tests.rehearsal.firehose_conversion import deliver
    from tests.rehearsal.ledger_objects import stack_columns
    from tests.rehearsal.outbox_device import OutboxDevice

    messages = []
    for thing in ("camera-01", "camera-02"):
        device = OutboxDevice(tmp_path / thing, thing=thing)
        device.cross(3 if thing == "camera-01" else 2)
        device.deliver()
        messages += [r["message"] for r in device.delivered()]
    hour = f"{COUNTS.prefix}{ARRIVAL.strftime(PARTITION_FORMAT)}/"
    objects = {}
    for name, batch in (("stream-1", messages), ("stream-2", [{**messages[0], "thing": None}])):
        converted, failed = deliver(
            [(json.dumps(m) + "\n").encode() for m in batch], stack_columns()["counts"], ARRIVAL, {}
        )
        assert not failed
        objects[hour + name] = converted[()]
    return objects, Counter(m["thing"] for m in messages)


def _backfill(capsys, *extra: str) -> tuple[int, dict, list[str]]:
    capsys.readouterr()
    code = main(["counts", "backfill", *extra])
    out, err = capsys.readouterr()
    return code, json.loads(out), [line for line in err.splitlines() if not line.startswith("{")]


@pytest.mark.integration
def test_backfill_moves_the_old_layout_into_device_partitions_once_and_leaves_what_it_cannot(
    synthesized, bucket, tmp_path, capsys
):
    import boto3

    from odctl.ledger_local import run_query
    from tests.rehearsal.deployed_stack import deployed_stack
    from tests.rehearsal.ledger_objects import DATABASE, landed_from_s3, stack_columns

    _, template = synthesized
    glue, _, _ = _catalog_from_template(template, bucket)
    deployed_stack({"DataBucketName": bucket, "FleetDatabase": DATABASE})
    s3 = boto3.client("s3")
    objects, crossings = _legacy_objects(tmp_path)
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    moved_key, nameless_key = sorted(objects)
    junk_key = moved_key.rsplit("/", 1)[0] + "/stream-3"  # no Parquet at all
    s3.put_object(Bucket=bucket, Key=junk_key, Body=b"not parquet")
    left = {nameless_key: "1 row(s) name no thing", junk_key: "not a Parquet object of the table"}
    folder, name = moved_key.rsplit("/", 1)
    parts = [f"{folder}/{thing}/{name}" for thing in ("camera-01", "camera-02")]

    def keys() -> list[str]:
        return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=COUNTS.prefix).get("Contents", []))

    def totals() -> Counter:
        landed = landed_from_s3(s3, bucket, tmp_path / "landed", stack_columns(), glue=glue)
        rows = run_query("net_balance", period_parameters(*ALL_TIME), landed)
        return Counter({r["thing"]: r["crossed_in"] + r["crossed_out"] for r in rows})

    def moved(*extra: str) -> dict:
        code, summary, (error,) = _backfill(capsys, *extra)
        assert code == 2 and f"s3://{bucket}/{nameless_key}: 1 row(s) name no thing" in error
        assert {k: why.split(" (")[0].split(":")[0] for k, why in summary["left"].items()} == left
        return summary

    assert totals() == Counter()  # the upgraded tables read none of it
    before = keys()
    summary = moved("--dry-run")  # where each would go; nothing changed
    assert (summary["moved"], summary["written"], keys()) == ([moved_key], parts, before)
    summary = moved()
    assert (summary["moved"], summary["written"]) == ([moved_key], parts)
    assert keys() == sorted([nameless_key, junk_key, *parts])
    assert totals() == crossings == Counter({"camera-01": 3, "camera-02": 2})
    partitions = glue.get_partitions(DatabaseName=DATABASE, TableName=COUNTS.name)["Partitions"]
    assert sorted(p["Values"][1] for p in partitions) == ["camera-01", "camera-02"]
    original = pq.read_schema(io.BytesIO(objects[moved_key]))
    for part in parts:
        written = pq.read_schema(io.BytesIO(s3.get_object(Bucket=bucket, Key=part)["Body"].read()))
        assert written.equals(original, check_metadata=False)  # the file's schema as Firehose wrote it
    assert moved()["moved"] == [] and totals() == crossings  # again: nothing more to move
    # cut short after the parts were written, before the original was deleted: a rerun counts nothing twice
    s3.put_object(Bucket=bucket, Key=moved_key, Body=objects[moved_key])
    assert moved()["moved"] == [moved_key] and totals() == crossings and len(keys()) == 4


@pytest.mark.integration
def test_backfill_moves_the_health_reports_too_and_exits_0_when_nothing_is_left(synthesized, bucket, tmp_path, capsys):
    """Two devices' real health reports in one object of the old layout: after the backfill the fleet's last health
    names both (the query reads the registered partitions only), and with nothing left the exit is 0."""
    import boto3

    from odctl.ledger_local import run_query
    from odshared.fleet.ledger import HEALTH
    from tests.rehearsal.deployed_stack import deployed_stack
    from tests.rehearsal.firehose_conversion import deliver
    from tests.rehearsal.ledger_objects import DATABASE, landed_from_s3, stack_columns
    from tests.rehearsal.outbox_device import OutboxDevice

    _, template = synthesized
    glue, _, _ = _catalog_from_template(template, bucket)
    deployed_stack({"DataBucketName": bucket, "FleetDatabase": DATABASE})
    reports = [OutboxDevice(tmp_path / thing, thing=thing).health() for thing in ("camera-01", "camera-02")]
    records = [(json.dumps(report) + "\n").encode() for report in reports]
    converted, failed = deliver(records, stack_columns()["health"], ARRIVAL, {})
    assert not failed
    s3 = boto3.client("s3")
    s3.put_object(
        Bucket=bucket, Key=f"{HEALTH.prefix}{ARRIVAL.strftime(PARTITION_FORMAT)}/stream-1", Body=converted[()]
    )

    def devices() -> list[str]:
        landed = landed_from_s3(s3, bucket, tmp_path / "landed", stack_columns(), glue=glue)
        return sorted(row["thing"] for row in run_query("last_health", ["2026/01/01/00"], landed))

    assert devices() == []
    capsys.readouterr()
    assert main(["counts", "backfill"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert len(summary["moved"]) == 1 and len(summary["written"]) == 2 and summary["left"] == {}
    assert devices() == ["camera-01", "camera-02"]
