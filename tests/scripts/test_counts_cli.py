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


@pytest.mark.integration
def test_counts_offline_are_the_devices_totals_and_a_redelivery_changes_nothing(detected, capsys):
    out, totals = detected
    capsys.readouterr()
    assert main(["counts", "--from", str(out), "--since", "2026-01-01", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    got = {(r["class"], "in"): r["crossed_in"] for r in rows} | {(r["class"], "out"): r["crossed_out"] for r in rows}
    want = {(c, way): n for way in ("in", "out") for c, n in totals[way].items()}
    assert {k: v for k, v in got.items() if v} == {k: v for k, v in want.items() if v}
    assert all(r["net"] == r["crossed_in"] - r["crossed_out"] for r in rows)
    assert main(["counts", "--from", str(out), "--from", str(out), "--since", "2026-01-01", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == rows  # every crossing twice: the same totals
    assert main(["counts", "--from", str(out), "--since", "2026-01-01", "--by", "hour"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "thing,line,direction,class,period,crossings"
    assert sum(int(line.rsplit(",", 1)[1]) for line in lines[1:]) == sum(want.values())
    assert main(["fleet", "--from", str(out), "--format", "json"]) == 0
    (device,) = json.loads(capsys.readouterr().out)
    assert device["thing"] == "local" and device["last_seq"] == sum(want.values()) and device["stale"] is False


@pytest.mark.integration
def test_counts_bad_input_is_one_line_and_exit_2(detected, tmp_path, capsys):
    out, _ = detected
    broken = tmp_path / "broken.jsonl"
    broken.write_text(out.read_text().splitlines()[0] + "\n{not json\n")
    cases = [
        (["--from", str(out), "--since", "yesterday"], "--since 'yesterday': an ISO 8601 date or time"),
        (["--from", str(out), "--since", "2026-12-02", "--until", "2026-12-01"], "is not before --until"),
        (["--from", str(tmp_path / "missing.jsonl")], "missing.jsonl: No such file or directory"),
        (["--from", str(broken)], f"{broken}:2: not JSON"),
        (["--from", str(out), "--since", "2026-01-01", "--thing", "nobody"], "no crossings between"),
    ]
    for argv, message in cases:
        capsys.readouterr()
        assert main(["counts", *argv]) == 2, argv
        errors = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("{")]
        assert len(errors) == 1 and message in errors[0], (argv, errors)


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
