"""`odctl counts` and `odctl fleet` offline on what `odctl detect` wrote, and the Athena request they make."""

from __future__ import annotations

import json

import pytest

from odctl.cli import main

LINE = "middle:0.5,0,0.5,1"


@pytest.fixture(scope="module")
def detected(scene, tmp_path_factory):
    """The device loop's messages on a generated crossings video, as `odctl detect --out` writes them."""
    from odctl.synth_video import SynthSpec, write_video

    folder = tmp_path_factory.mktemp("counts-cli")
    video, _ = write_video(
        SynthSpec("mixed_boxes_8", ("blue box", "yellow box"), frames=300, seed=8, scenario="crossings"), folder
    )
    out = folder / "messages.jsonl"
    argv = ["detect", str(video), "--model", str(scene["package"]), "--line", LINE, "--threshold", "0.4"]
    assert main([*argv, "--out", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    health = [r["message"] for r in records if r["message"].get("type") == "health"][-1]
    return out, health["counts"]["lines"]["middle"]


def _run(argv: list[str], capsys) -> str:
    capsys.readouterr()
    assert main(argv) == 0, argv
    return capsys.readouterr().out


@pytest.mark.integration
def test_counts_offline_are_the_devices_totals_and_a_redelivery_changes_nothing(detected, tmp_path, capsys):
    out, totals = detected
    rows = json.loads(_run(["counts", "--from", str(out), "--since", "2026-01-01", "--format", "json"], capsys))
    got = {(r["class"], "in"): r["crossed_in"] for r in rows} | {(r["class"], "out"): r["crossed_out"] for r in rows}
    want = {(c, way): n for way in ("in", "out") for c, n in totals[way].items()}
    assert {k: v for k, v in got.items() if v} == {k: v for k, v in want.items() if v}
    assert all(r["net"] == r["crossed_in"] - r["crossed_out"] for r in rows)
    redelivered = tmp_path / "again" / "deep" / "messages-redelivered.jsonl"  # every crossing a second time
    redelivered.parent.mkdir(parents=True)
    redelivered.write_text(out.read_text())
    again = ["counts", "--from", str(out), "--from", str(tmp_path / "again"), "--since", "2026-01-01"]
    assert json.loads(_run([*again, "--format", "json"], capsys)) == rows  # the same totals
    lines = _run(["counts", "--from", str(out), "--since", "2026-01-01", "--by", "hour"], capsys).splitlines()
    assert lines[0] == "thing,line,direction,class,period,crossings"
    assert sum(int(line.rsplit(",", 1)[1]) for line in lines[1:]) == sum(want.values())
    minutes = json.loads(_run(["counts", "--from", str(out), "--by", "minute", "--format", "json"], capsys))
    assert sum(r["crossings"] for r in minutes) == sum(want.values())  # the demo report's chart, from the CLI
    device = json.loads(_run(["fleet", "--from", str(out), "--format", "json"], capsys))
    assert [(d["thing"], d["last_seq"], d["stale"]) for d in device] == [("local", sum(want.values()), False)]


@pytest.mark.integration
def test_from_takes_files_folders_and_globs(detected, tmp_path, capsys):
    """Several paths after one --from, a folder (every *.jsonl and *.json under it, however deep: a pretty-printed
    document is one message), a glob; each file once however many of them name it."""
    out, totals = detected
    lines = out.read_text().splitlines()
    crossings = [line for line in lines if json.loads(line)["message"].get("type") == "crossing"]
    half = len(crossings) // 2
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "first.jsonl").write_text("\n".join(crossings[:half]) + "\n")
    (tmp_path / "a" / "b" / "second.jsonl").write_text("\n".join(crossings[half:]) + "\n")
    health = [json.loads(line)["message"] for line in lines if json.loads(line)["message"].get("type") == "health"]
    (tmp_path / "a" / "b" / "health.json").write_text(json.dumps(health[-1], indent=2))  # one bare message
    (tmp_path / "a" / "notes.txt").write_text("not a message: a folder reads only *.jsonl and *.json\n")
    whole = _run(["counts", "--from", str(out), "--since", "2026-01-01"], capsys)
    for sources in (
        [str(tmp_path / "a")],
        [str(tmp_path / "a" / "first.jsonl"), str(tmp_path / "a" / "b" / "second.jsonl")],
        [str(tmp_path / "a" / "**" / "*.jsonl")],
        # a glob matching a folder (read as one), and a file named twice
        [str(tmp_path / "a" / "f*"), str(tmp_path / "a" / "[b]"), str(tmp_path / "a" / "b" / "second.jsonl")],
    ):
        assert _run(["counts", "--from", *sources, "--since", "2026-01-01"], capsys) == whole, sources
    (device,) = json.loads(_run(["fleet", "--from", str(tmp_path / "a"), "--format", "json"], capsys))
    assert device["last_seq"] == sum(n for way in totals.values() for n in way.values())


@pytest.mark.integration
def test_no_crossings_is_an_empty_table_and_exit_0(detected, tmp_path, capsys):
    out, _ = detected
    header = "thing,line,class,crossed_in,crossed_out,net"
    nobody = ["counts", "--from", str(out), "--since", "2026-01-01", "--thing", "nobody"]
    assert _run(nobody, capsys).splitlines() == [header]
    assert json.loads(_run([*nobody, "--format", "json"], capsys)) == []
    assert _run([*nobody, "--by", "day"], capsys).splitlines() == ["thing,line,direction,class,period,crossings"]
    quiet = tmp_path / "crossings-only.jsonl"  # no device sent health: an empty fleet, not an error
    quiet.write_text("".join(line + "\n" for line in out.read_text().splitlines() if '"type":"crossing"' in line))
    from odctl.ledger_local import columns_of

    fleet = ",".join([*columns_of("last_health"), "stale"])
    assert fleet.startswith("thing,last_seen,")
    assert _run(["fleet", "--from", str(quiet)], capsys).splitlines() == [fleet]


@pytest.mark.integration
def test_counts_bad_input_is_one_line_and_exit_2(detected, tmp_path, capsys):
    out, _ = detected
    lines = out.read_text().splitlines()
    broken = tmp_path / "broken.jsonl"
    broken.write_text(lines[0] + "\n{not json\n" + lines[1] + "\n" + lines[2][:20] + "\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "many").mkdir()
    (tmp_path / "many" / "good.jsonl").write_text(out.read_text())
    (tmp_path / "many" / "cut.jsonl").write_text(lines[0][:-5] + "\n")  # a line cut short, as by a crash
    shaped = tmp_path / "shaped.jsonl"
    shaped.write_text(lines[0] + "\n[1, 2]\n")  # JSON, but not a message
    crossing = next(json.loads(line) for line in lines if '"type":"crossing"' in line)
    crossing["message"].pop("timestamp")
    undated = tmp_path / "undated.jsonl"
    undated.write_text(json.dumps(crossing) + "\n")
    cases = [
        (["--from", str(out), "--since", "yesterday"], "--since 'yesterday': an ISO 8601 date or time"),
        (["--from", str(out), "--since", "2026-12-02", "--until", "2026-12-01"], "is not before --until"),
        (["--from", str(tmp_path / "missing.jsonl")], "missing.jsonl: No such file or directory"),
        (["--from", str(out), str(tmp_path / "nothing-*.jsonl")], "nothing-*.jsonl: the pattern matches no file"),
        (["--from", str(tmp_path / "empty")], "empty: no *.jsonl or *.json file under this folder"),
        (["--from", str(broken)], f"{broken}:2: not JSON (Expecting property name enclosed in double quotes); 2 "),
        (["--from", str(tmp_path / "many")], "cut.jsonl:1: not JSON"),
        (["--from", str(tmp_path / "many")], "1 such line(s) in 1 file(s), none skipped"),
        (["--from", str(shaped)], "shaped.jsonl"),
        (["--from", str(undated), "--since", "2026-01-01"], "cannot be counted (missing or mistyped: timestamp)"),
    ]
    for argv, message in cases:
        capsys.readouterr()
        assert main(["counts", *argv]) == 2, argv
        errors = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("{")]
        assert len(errors) == 1 and message in errors[0], (argv, errors)


def test_a_query_loads_only_the_tables_it_reads_and_an_empty_result_keeps_its_columns():
    """A crossings query never holds the health reports; a header for zero rows, whichever engine ran the query."""
    from odctl.ledger_local import columns_of, tables_of

    assert tables_of("net_balance") == ["counts"] and tables_of("last_health") == ["health"]
    assert tables_of("crossings_by_minute") == ["counts"]
    assert columns_of("net_balance") == ["thing", "line", "class", "crossed_in", "crossed_out", "net"]
    assert columns_of("crossings_by_minute")[-2:] == ["period", "crossings"]


def test_the_athena_request_passes_botocores_model(aws):
    """What `odctl counts` sends the stack's workgroup (moto's Athena answers; boto3 validates every request)."""
    import boto3

    from odctl.ledger_athena import run_athena
    from odshared.fleet.ledger import period_parameters

    athena = boto3.client("athena", region_name="us-east-1")
    athena.create_work_group(Name="fleet", Configuration={"ResultConfiguration": {"OutputLocation": "s3://r/"}})
    from datetime import UTC, datetime

    parameters = period_parameters(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC), "cam's")
    rows = run_athena("net_balance", parameters, "fleet", "edgeobjectdetector_fleet", athena, poll_s=0.01)
    assert isinstance(rows, list)
    (execution,) = athena.list_query_executions(WorkGroup="fleet")["QueryExecutionIds"]
    sent = athena.get_query_execution(QueryExecutionId=execution)["QueryExecution"]
    assert sent["Query"].startswith("-- The net balance") and sent["QueryExecutionContext"]["Database"].endswith(
        "_fleet"
    )
