"""`odctl counts review` and `odctl counts correct`: corrections of the device loop's real crossings, made by the real
command, change the totals as corrected and never as counted, survive a redelivery, and the latest wins; offline
through DuckDB, the same query text parsed as Trino; on AWS one S3 object per correction (moto server)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from odctl.cli import main
from tests.scripts.test_counts_cli import detected  # noqa: F401  (the device loop's messages on a crossings video)

SINCE = ["--since", "2026-01-01"]
CLASSES = ("blue box", "yellow box")


def _run(argv: list[str], capsys) -> str:
    capsys.readouterr()
    assert main(argv) == 0, (argv, capsys.readouterr().err)
    return capsys.readouterr().out


def _json(argv: list[str], capsys) -> object:
    return json.loads(_run([*argv, "--format", "json"] if argv[1] != "correct" else argv, capsys))


def _expected(rows: list[dict], corrections: list[dict]) -> dict[tuple, dict]:
    """The corrected totals worked out from the review's rows and the records `odctl counts correct` returned:
    per event the last record wins, a not_a_crossing removes it, the others state the crossing to count."""
    crossings = {(r["thing"], r["event_id"]): r for r in rows}
    for record in corrections:
        key = (record["thing"], record["event_id"])
        crossings[key] = None if record["kind"] == "not_a_crossing" else record
    tally: Counter = Counter()
    for c in filter(None, crossings.values()):
        tally[(c["thing"], c["line"], c["class"], c["direction"])] += 1
    groups = {(t, li, c) for t, li, c, _ in tally}
    return {
        g: {"corrected_in": tally[(*g, "in")], "corrected_out": tally[(*g, "out")]}
        for g in groups
        if any(tally[(*g, d)] for d in ("in", "out"))
    }


@pytest.mark.integration
@pytest.mark.slow
def test_corrections_change_the_corrected_totals_and_not_the_counted_ones(detected, tmp_path, capsys):  # noqa: F811
    out, totals = detected
    rows = _json(["counts", "review", "--from", str(out), *SINCE], capsys)
    assert len(rows) == sum(n for way in totals.values() for n in way.values())
    assert all(r["origin"] == "device" and r["correction_id"] is None and r["evidence"] is None for r in rows)
    file = tmp_path / "corrections.jsonl"
    base = ["counts", "correct", "--from", str(out), "--to", str(file), "--by", "reviewer"]
    a, b, c = rows[:3]
    other = next(k for k in CLASSES if k != a["class"])
    made = [
        _json([*base, a["event_id"], "--kind", "wrong_class", "--class", other, "--why", "x"], capsys),
        _json([*base, b["event_id"], "--kind", "not_a_crossing", "--why", "a shadow"], capsys),
        _json([*base, c["event_id"], "--kind", "wrong_direction", "--why", "frame 3"], capsys),
    ]
    missed = ["--thing", a["thing"], "--line", a["line"], "--class", a["class"], "--direction", "in"]
    made.append(_json([*base, "--kind", "missed", *missed, "--timestamp", a["timestamp"], "--why", "y"], capsys))
    records = [m["correction"] for m in made]
    assert [m["written"] for m in made] == [str(file)] * 4 and len(file.read_text().splitlines()) == 4
    assert records[0]["class"] == other and records[2]["direction"] != c["direction"]
    assert records[3]["event_id"] == "added-" + records[3]["correction_id"]
    counted = _json(["counts", "--from", str(out), *SINCE], capsys)
    _check(
        _json(["counts", "--by", "corrected", "--from", str(out), str(file), *SINCE], capsys), counted, rows, records
    )
    redelivered = tmp_path / "again" / "messages.jsonl"  # every crossing delivered a second time
    redelivered.parent.mkdir()
    redelivered.write_text(out.read_text())
    twice = ["counts", "--by", "corrected", "--from", str(out), str(redelivered), str(file), *SINCE]
    _check(_json(twice, capsys), counted, rows, records)
    # a second look: the latest wins (a is no crossing after all), and an added crossing is amended like any other
    again = [*base, a["event_id"], "--kind", "not_a_crossing", "--why", "second look"]
    records.append(_json(again, capsys)["correction"])
    added = [*base, records[3]["event_id"], "--kind", "wrong_direction", "--why", "it went out"]
    records.append(_json(added, capsys)["correction"])
    _check(_json(twice, capsys), counted, rows, records)
    reviewed = {r["event_id"]: r for r in _json(["counts", "review", "--from", str(out), str(file), *SINCE], capsys)}
    assert reviewed[a["event_id"]]["correction"] == "not_a_crossing" and reviewed[a["event_id"]]["class"] == a["class"]
    assert reviewed[records[3]["event_id"]]["origin"] == "correction"
    assert reviewed[records[3]["event_id"]]["corrected_direction"] == "out"


def _check(result: list[dict], counted: list[dict], rows: list[dict], records: list[dict]) -> None:
    as_counted = {(r["thing"], r["line"], r["class"]): (r["crossed_in"], r["crossed_out"], r["net"]) for r in counted}
    got = {(r["thing"], r["line"], r["class"]): r for r in result}
    assert {
        k: (r["counted_in"], r["counted_out"], r["counted_net"])
        for k, r in got.items()
        if r["counted_in"] or r["counted_out"]
    } == as_counted
    want = _expected(rows, records)
    assert {
        k: {"corrected_in": r["corrected_in"], "corrected_out": r["corrected_out"]}
        for k, r in got.items()
        if r["corrected_in"] or r["corrected_out"]
    } == want
    for r in result:
        assert r["corrected_net"] == r["corrected_in"] - r["corrected_out"]
        assert r["difference"] == r["corrected_net"] - r["counted_net"]
    assert any(r["difference"] for r in result)


@pytest.mark.integration
@pytest.mark.slow
def test_review_names_each_crossings_evidence(detected, tmp_path, capsys):  # noqa: F811
    """A folder of the device's items (<event_id>/) or a copy of the bucket's prefix (<thing>/<event_id>/)."""
    out, _ = detected
    rows = _json(["counts", "review", "--from", str(out), *SINCE], capsys)
    first, second = rows[0], rows[1]
    (tmp_path / "ev" / first["event_id"]).mkdir(parents=True)
    (tmp_path / "ev" / second["thing"] / second["event_id"]).mkdir(parents=True)
    listed = _json(["counts", "review", "--from", str(out), "--evidence", str(tmp_path / "ev"), *SINCE], capsys)
    found = {r["event_id"]: r["evidence"] for r in listed if r["evidence"]}
    assert found == {
        first["event_id"]: str(tmp_path / "ev" / first["event_id"]),
        second["event_id"]: str(tmp_path / "ev" / second["thing"] / second["event_id"]),
    }
    header = _run(["counts", "review", "--from", str(out), "--thing", "nobody"], capsys).splitlines()
    assert header[0].startswith("event_id,thing,line,class,direction,timestamp,camera,") and len(header) == 1


@pytest.mark.integration
@pytest.mark.slow
def test_correct_and_review_bad_input_is_one_line_exit_2_and_nothing_written(detected, tmp_path, capsys):  # noqa: F811
    out, _ = detected
    row = _json(["counts", "review", "--from", str(out), *SINCE], capsys)[0]
    file = tmp_path / "corrections.jsonl"
    file.write_text("")
    cut = tmp_path / "cut.jsonl"
    cut.write_text('{"type": "correction"')
    base = ["counts", "correct", "--from", str(out), "--to", str(file), "--why", "r"]
    event = [row["event_id"]]
    drop = [*event, "--kind", "not_a_crossing"]
    missed = ["--kind", "missed", "--thing", row["thing"], "--class", row["class"]]
    cases = [
        ([*base, "nosuch-1", "--kind", "not_a_crossing"], "EVENT_ID nosuch-1: no such crossing"),
        ([*base, *event, "--kind", "typo"], "--kind 'typo': one of not_a_crossing, wrong_class"),
        ([*base, *event, "--kind", "wrong_class"], "--kind wrong_class: give --class"),
        ([*base, *event, "--kind", "wrong_class", "--class", row["class"]], "already counted it as that class"),
        ([*base, *event, "--kind", "wrong_direction", "--class", "x"], "--kind wrong_direction takes no --class"),
        ([*base, "--kind", "wrong_direction"], "--kind wrong_direction amends a crossing: give its EVENT_ID"),
        ([*base, *event, "--kind", "missed"], "a missed crossing has none yet"),
        ([*base, *missed], "--kind missed: give --line, --direction, --timestamp"),
        ([*base, *missed, "--line", "l", "--direction", "up", "--timestamp", "2026-11-22T09:00Z"], "--direction 'up'"),
        ([*base, *missed, "--line", "l", "--direction", "in", "--timestamp", "noon"], "--timestamp 'noon': an ISO"),
        ([*base, *missed, "--line", "l", "--direction", "in", "--timestamp", "2026-11-22T09:00"], "its time zone"),
        ([*base, *event, "--kind", "not_a_crossing", "--by", " "], "--by and --why: say who"),
        (
            ["counts", "correct", "--from", str(out), "--why", "r", *event, "--kind", "not_a_crossing"],
            "--from needs --to FILE",
        ),
        ([*base[:4], "--to", str(tmp_path / "no" / "c.jsonl"), "--why", "r", *drop], "no such folder"),
        ([*base[:4], "--to", str(cut), "--why", "r", *event, "--kind", "not_a_crossing"], "cut.jsonl:1: not JSON"),
        (  # a missed crossing needs no lookup: the file is first read when the line is appended
            ["counts", "correct", "--to", str(cut), "--why", "r", *missed[:-2], "--class", "c", "--line", "l"]
            + ["--direction", "in", "--timestamp", "2026-11-22T09:00Z"],
            "last line is cut short",
        ),
        (["counts", "correct", "--to", str(file), "--why", "r", *drop], "give --from the ledger's files too"),
        ([*base[:4], "--to", str(tmp_path), "--why", "r", *drop], "a folder; name the"),
        (["counts", "review", "--evidence", str(tmp_path)], "--evidence applies with --from"),
        (["counts", "review", "--from", str(out), "--evidence", str(tmp_path / "none")], "--evidence"),
        (["counts", "review", "--from", str(out), "--since", "soon"], "--since 'soon': an ISO 8601"),
        (["counts", "--by", "corrected", "--from", str(out), str(cut)], "cut.jsonl:1: not JSON"),
    ]
    for argv, message in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        errors = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("{")]
        assert len(errors) == 1 and message in errors[0], (argv, errors)
    assert file.read_text() == "" and cut.read_text() == '{"type": "correction"'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrections.jsonl", "cut.jsonl"]


def test_a_hand_written_correction_the_queries_cannot_apply_is_named(tmp_path, capsys):
    """A record that is not a correction the ledger can apply fails the local load, naming the file and why."""
    from odshared.fleet.ledger import CORRECTION_KINDS

    bad = tmp_path / "corrections.jsonl"
    record = {"type": "correction", "correction_id": "c1", "event_id": "s-1", "kind": "moved", "thing": "t"}
    bad.write_text(
        json.dumps(record | {"recorded_at": "2026-11-22T09:00:00Z", "recorded_by": "me", "reason": "r"}) + "\n"
    )
    capsys.readouterr()
    assert main(["counts", "--by", "corrected", "--from", str(bad)]) == 2
    (error,) = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("{")]
    assert (
        f"{bad}: a correction message that cannot be counted (kind is none of {', '.join(CORRECTION_KINDS)})" in error
    )


def test_the_corrections_queries_are_trino_and_read_the_corrections_table():
    import sqlglot
    from sqlglot import exp

    from odctl.ledger_local import columns_of, tables_of
    from odshared.fleet.ledger import query

    for name in ("corrected_balance", "crossings_for_review"):
        tree = sqlglot.parse_one(query(name).sql, read="trino", error_level=sqlglot.ErrorLevel.RAISE)
        assert not list(tree.find_all(exp.Anonymous)), name
        assert tables_of(name) == ["counts", "corrections"]
    assert columns_of("corrected_balance")[3:] == [
        "counted_in",
        "counted_out",
        "counted_net",
        "corrected_in",
        "corrected_out",
        "corrected_net",
        "difference",
    ]


def _athena_result(aws: str, rows: list[dict]) -> None:
    """What Athena returns for ``rows`` (strings, a header row first), queued in moto for the next query."""
    import requests

    names = list(rows[0])
    cells = [[{"VarCharValue": n} for n in names]]
    cells += [[{} if r[n] is None else {"VarCharValue": str(r[n])} for n in names] for r in rows]
    result = {"rows": [{"Data": c} for c in cells], "column_info": [{"Name": n, "Type": "varchar"} for n in names]}
    requests.post(
        f"{aws}/moto-api/static/athena/query-results", json={"results": [result]}, timeout=10
    ).raise_for_status()


def _stack(bucket: str) -> None:
    """The stack as `cdk deploy` leaves it, as far as odctl counts is concerned: its outputs and its workgroup."""
    import boto3

    from tests.rehearsal.deployed_stack import deployed_stack

    athena = boto3.client("athena")
    athena.create_work_group(
        Name="fleet", Configuration={"ResultConfiguration": {"OutputLocation": f"s3://{bucket}/r/"}}
    )
    deployed_stack({"FleetWorkGroup": "fleet", "FleetDatabase": "edgeobjectdetector_fleet", "DataBucketName": bucket})


@pytest.mark.integration
@pytest.mark.slow
def test_on_aws_a_correction_is_one_object_the_ledgers_table_reads(detected, bucket, aws, capsys, tmp_path):  # noqa: F811
    """The lookup is the named query (moto's Athena answers with what the same query gave offline); the record lands
    under corrections/<recorded hour>/<correction_id>.json; read back through the S3 route, the corrected totals
    change; the review lists the device's uploaded evidence."""
    import boto3

    from infra.fleet_data import DEVICE_KEYS, delivery_prefixes
    from odctl.ledger_local import run_query, run_query_files
    from odshared.fleet.ledger import COUNTS, corrected_parameters, query, review_parameters
    from tests.rehearsal.firehose_conversion import deliver, evaluate_prefix
    from tests.rehearsal.ledger_objects import landed_from_s3, stack_columns

    out, _ = detected
    _stack(bucket)
    s3 = boto3.client("s3")
    row = _json(["counts", "review", "--from", str(out), *SINCE], capsys)[0]
    from datetime import UTC, datetime, timedelta

    lookup = review_parameters(
        datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(days=1), "", "", row["event_id"]
    )
    _athena_result(aws, run_query_files("crossings_for_review", lookup, [Path(out)]))
    made = _json(["counts", "correct", row["event_id"], "--kind", "not_a_crossing", "--why", "r"], capsys)
    record = made["correction"]
    assert record["recorded_by"] == boto3.client("sts").get_caller_identity()["Arn"]  # no --by: who AWS says
    key = f"corrections/{record['recorded_at'][:13].replace('-', '/').replace('T', '/')}/{record['correction_id']}.json"
    assert made["written"] == f"s3://{bucket}/{key}"
    assert json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) == record
    athena = boto3.client("athena")
    (execution,) = athena.list_query_executions(WorkGroup="fleet")["QueryExecutionIds"]
    sent = athena.get_query_execution(QueryExecutionId=execution)["QueryExecution"]
    assert sent["Query"] == query("crossings_for_review").sql
    assert sent["ExecutionParameters"][-1] == f"'{row['event_id']}'"
    # the device's crossings as Firehose writes them (converted), beside the correction: the corrected totals
    crossings = [json.loads(line)["message"] for line in out.read_text().splitlines()]
    records = [(json.dumps(m) + "\n").encode() for m in crossings if m.get("type") == "crossing"]
    arrival = datetime(2026, 11, 22, 9, tzinfo=UTC)
    objects, failed = deliver(records, stack_columns()["counts"], arrival, DEVICE_KEYS)
    assert not failed
    prefix, _ = delivery_prefixes(COUNTS)
    for keys, parquet in objects.items():
        s3.put_object(Bucket=bucket, Key=evaluate_prefix(prefix, arrival, keys=dict(keys)) + "stream-1", Body=parquet)
    since = datetime(2026, 1, 1, tzinfo=UTC)
    landed = landed_from_s3(s3, bucket, tmp_path, stack_columns())
    totals = run_query("corrected_balance", corrected_parameters(since, datetime.now(UTC)), landed)
    assert sum(r["counted_in"] + r["counted_out"] for r in totals) - 1 == sum(
        r["corrected_in"] + r["corrected_out"] for r in totals
    )
    s3.put_object(Bucket=bucket, Key=f"evidence/{row['thing']}/{row['event_id']}/evidence.json", Body=b"{}")
    _athena_result(
        aws, run_query_files("crossings_for_review", review_parameters(since, datetime.now(UTC)), [Path(out)])
    )
    listed = _json(["counts", "review", *SINCE], capsys)
    found = {r["event_id"]: r["evidence"] for r in listed if r["evidence"]}
    assert found == {row["event_id"]: f"s3://{bucket}/evidence/{row['thing']}/{row['event_id']}/"}


@pytest.mark.integration
@pytest.mark.slow
def test_disputed_crossings_evidence_frames_become_label_studio_tasks(scene, tmp_path, capsys):
    """The real device loop with evidence on: the crossings a correction disputes become one task per evidence frame,
    the image served through Label Studio's local files, the boxes the device drew there as the prediction."""
    from odctl.synth_video import SynthSpec, write_video
    from odedge.app import run
    from odedge.config import EdgeConfig

    spec = SynthSpec("mixed_boxes_5", CLASSES, 200, seed=5, scenario="crossings")
    video, _ = write_video(spec, tmp_path / "video")
    lines = json.dumps([{"name": "middle", "points": [[0.5, 0.0], [0.5, 1.0]], "in": "left-to-right"}])
    config = {"model_dir": str(scene["package"]), "source": str(video), "publisher": "jsonl", "lines": lines}
    config |= {"jsonl": str(tmp_path / "out.jsonl"), "counts_file": str(tmp_path / "work" / "counts.json")}
    run(
        EdgeConfig.from_mapping(config | {"score_threshold": "0.4", "health_interval": "3600", "evidence_max_mb": "5"}),
        install_signals=False,
    )
    out, evidence, file = tmp_path / "out.jsonl", tmp_path / "work" / "evidence", tmp_path / "corrections.jsonl"
    row = _json(["counts", "review", "--from", str(out), *SINCE], capsys)[0]
    correct = ["counts", "correct", row["event_id"], "--kind", "not_a_crossing", "--why", "no box crossed"]
    _json([*correct, "--from", str(out), "--to", str(file)], capsys)
    tasks_file = tmp_path / "tasks.json"
    review = ["counts", "review", "--from", str(out), str(file), "--evidence", str(evidence), "--disputed", *SINCE]
    (listed,) = _json([*review, "--label-studio", str(tasks_file), "--files-root", str(tmp_path)], capsys)
    assert listed["event_id"] == row["event_id"] and listed["evidence"] == str(evidence / row["event_id"])
    meta = json.loads((evidence / row["event_id"] / "evidence.json").read_text())
    tasks = json.loads(tasks_file.read_text())
    assert len(tasks) == len(meta["frames"]) >= 3
    width, height = meta["size"]
    for task, frame in zip(tasks, meta["frames"], strict=True):
        assert task["data"]["image"] == f"/data/local-files/?d=work/evidence/{row['event_id']}/{frame['file']}"
        assert task["data"]["event_id"] == row["event_id"] and task["data"]["correction"] == "not_a_crossing"
        (prediction,) = task["predictions"]
        assert [r["value"]["rectanglelabels"] for r in prediction["result"]] == [[b["label"]] for b in frame["boxes"]]
        for result, box in zip(prediction["result"], frame["boxes"], strict=True):
            assert result["value"]["x"] == pytest.approx(100 * box["box"][0] / width)
            assert result["value"]["height"] == pytest.approx(100 * (box["box"][3] - box["box"][1]) / height)
    bad = [
        (["counts", "review", "--from", str(out), "--label-studio", str(tasks_file)], "--label-studio reads each"),
        ([*review, "--label-studio", str(tmp_path / "no" / "t.json")], "no such folder"),
        ([*review, "--label-studio", str(tasks_file), "--files-root", str(tmp_path / "video")], "local files root"),
    ]
    before = tasks_file.read_text()
    for argv, message in bad:
        capsys.readouterr()
        assert main(argv) == 2, argv
        errors = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("{")]
        assert len(errors) == 1 and message in errors[0], (argv, errors)
    assert tasks_file.read_text() == before and not (tmp_path / "no").exists()


def test_a_period_reads_corrections_from_its_arrival_floor_and_a_missed_crossing_ahead_of_now_is_refused(
    tmp_path, capsys
):
    """Athena reads a period's corrections from the same arrival floor as its crossings (a day before its start), not
    every hour since the first: a correction is recorded after the crossing it amends arrived, so one made now
    applies to a period that began a moment ago, and a record under an hour before the floor is not read (odctl never
    writes one: a missed crossing more than a day ahead of its recording is refused, exit 2, nothing written)."""
    from datetime import UTC, datetime, timedelta

    from tests.rehearsal.outbox_device import OutboxDevice

    device = OutboxDevice(tmp_path / "device")
    device.cross(2)
    device.deliver()
    out = str(device.sent)
    first, second = _json(["counts", "review", "--from", out, *SINCE], capsys)[:2]
    file = tmp_path / "corrections.jsonl"
    base = ["counts", "correct", "--from", out, "--to", str(file), "--by", "reviewer", "--why", "a shadow"]
    record = _json([*base, first["event_id"], "--kind", "not_a_crossing"], capsys)["correction"]
    stale = record | {"correction_id": "stale", "event_id": second["event_id"], "timestamp": second["timestamp"]}
    stale["recorded_at"] = (datetime.now(UTC) - timedelta(days=3)).isoformat().replace("+00:00", "Z")
    with file.open("a") as handle:
        handle.write(json.dumps(stale) + "\n")

    def corrected(since: str) -> int:
        rows = _json(["counts", "--by", "corrected", "--from", out, str(file), "--since", since], capsys)
        assert sum(r["counted_in"] + r["counted_out"] for r in rows) == 2
        return sum(r["corrected_in"] + r["corrected_out"] for r in rows)

    assert corrected(first["timestamp"]) == 1  # the period's own correction, not the one recorded three days before
    assert corrected((datetime.now(UTC) - timedelta(days=5)).isoformat()) == 0  # both, from a floor before both
    ahead = (datetime.now(UTC) + timedelta(days=2)).isoformat(timespec="seconds").replace("+00:00", "Z")
    missed = ["--kind", "missed", "--thing", first["thing"], "--line", first["line"], "--class", first["class"]]
    before = file.read_text()
    capsys.readouterr()
    assert (
        main(["counts", "correct", "--to", str(file), "--why", "r", *missed, "--direction", "in", "--timestamp", ahead])
        == 2
    )
    (error,) = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("{")]
    assert f"--timestamp {ahead}: more than 24 hours after now; a missed crossing has happened" in error
    assert file.read_text() == before
