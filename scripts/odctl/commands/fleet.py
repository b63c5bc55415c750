"""Fleet commands: the counts ledger (odctl counts; its review and corrections: odctl counts review, odctl counts
correct) and every device's last health (odctl fleet)."""

from __future__ import annotations

import argparse
import csv
import getpass
import io
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from odctl.cli_types import positive_float, positive_int
from odctl.ledger_local import columns_of
from odshared.core.errors import OdError
from odshared.core.log import log_event
from odshared.fleet.ledger import PERIODS

from .common import Command, add_stack

logger = logging.getLogger(__name__)
# every period the ledger has a named query for (crossings_by_period.sql), so the CLI offers what Athena has
QUERY_BY = {"total": "net_balance"} | {period: f"crossings_by_{period}" for period in PERIODS}
QUERY_BY["corrected"] = "corrected_balance"
WHOLE_LEDGER = datetime(2000, 1, 1, tzinfo=UTC)  # where odctl counts correct looks for the event it amends


def _instant(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise OdError(f"{option} {text!r}: an ISO 8601 date or time, e.g. 2026-11-22 or 2026-11-22T09:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _rows(name: str, parameters: list[str], args: argparse.Namespace, also: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Offline over JSON Lines (--from: files, folders, globs; ``also``: more files), else the stack's Athena
    workgroup."""
    if args.source:
        from odctl.ledger_local import expand_sources, run_query_files

        return run_query_files(name, parameters, expand_sources([*args.source, *also]))
    import boto3

    from odctl.aws_errors import aws_errors
    from odctl.ledger_athena import run_athena
    from odctl.pipeline_cli import stack_outputs

    with aws_errors(args.command):
        outputs = stack_outputs(args.stack)
        return run_athena(name, parameters, outputs["FleetWorkGroup"], outputs["FleetDatabase"], boto3.client("athena"))


def _write(rows: list[dict[str, Any]], form: str, columns: list[str]) -> None:
    """The rows as JSON (a list, ``[]`` for none) or CSV; CSV always has its header, so zero rows is still a
    table a spreadsheet or a script reads as one (the query's own columns, whichever engine ran it)."""
    if form == "json":
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else columns)
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    sys.stdout.write(buffer.getvalue())


def _period(args: argparse.Namespace) -> tuple[datetime, datetime]:
    until = _instant(args.until, "--until") if args.until else datetime.now(UTC)
    since = _instant(args.since, "--since") if args.since else until - timedelta(days=7)
    if since >= until:
        raise OdError(f"--since {since.isoformat()} is not before --until {until.isoformat()}")
    return since, until


def _cmd_counts(args: argparse.Namespace) -> Any:
    if args.gaps:
        return _gaps(args, _instant(args.until, "--until") if args.until else datetime.now(UTC))
    since, until = _period(args)
    from odshared.fleet.ledger import parameters_of

    name = QUERY_BY[args.by]
    rows = _rows(name, parameters_of(name, since, until, args.thing or "", args.line or ""), args)
    if not rows:  # zero crossings is an answer, not an error: an empty table, exit 0, and a word on stderr
        period = f"between {since.isoformat()} and {until.isoformat()}{_filters(args)}"
        log_event(logger, "counts.none", query=name, rows=0, reason=f"no crossings {period}")
    _write(rows, args.format, columns_of(name))
    return None


def _gaps(args: argparse.Namespace, until: datetime) -> None:
    """--gaps: the seq ranges missing per device and stream (crossing_gaps), over the whole ledger (a stream's
    gap at its start shows only beside its first seq); a health report counts once Firehose has had the time to
    land the crossings it says were delivered (offline nothing buffers). No gap is an empty table, exit 0."""
    if args.since or args.line or args.by != "total":
        raise OdError("--gaps reads the whole ledger per device and stream: --since, --line and --by do not apply")
    from odshared.fleet.ledger import DELIVERY_SETTLE, gap_parameters

    settle = timedelta(0) if args.source else DELIVERY_SETTLE
    rows = _rows("crossing_gaps", gap_parameters(until, args.thing or "", settle), args)
    if not rows:
        log_event(logger, "counts.no_gaps", query="crossing_gaps", rows=0, reason="no seq missing" + _filters(args))
    _write(rows, args.format, columns_of("crossing_gaps"))


def _cmd_review(args: argparse.Namespace) -> Any:
    """Each crossing of the period with its latest correction and its evidence (a folder offline, the device's
    upload on AWS), so a disputed count can be looked at before it is corrected."""
    if args.evidence and not args.source:
        raise OdError("--evidence applies with --from (on AWS the evidence is the data bucket's evidence/ prefix)")
    if args.label_studio and not args.evidence:
        raise OdError(
            "--label-studio reads each item's evidence.json: give --from and --evidence (on AWS: aws s3 sync "
            "s3://<data bucket>/evidence/ FOLDER first)"
        )
    since, until = _period(args)
    from odshared.fleet.ledger import review_parameters

    rows = _rows("crossings_for_review", review_parameters(since, until, args.thing or "", args.line or ""), args)
    from odctl.ledger_review import local_evidence, s3_evidence

    if args.source:
        if args.evidence:
            local_evidence(rows, Path(args.evidence))
        for row in rows:
            row.setdefault("evidence", None)
        if args.disputed:
            rows = [row for row in rows if row["correction_id"]]
        if args.label_studio:
            _label_studio(rows, args)
    elif rows:
        import boto3

        from odctl.aws_errors import aws_errors
        from odctl.pipeline_cli import stack_outputs

        with aws_errors("counts review"):
            s3_evidence(rows, boto3.client("s3"), stack_outputs(args.stack)["DataBucketName"])
    if not rows:
        period = f"between {since.isoformat()} and {until.isoformat()}{_filters(args)}"
        log_event(logger, "counts.none", query="crossings_for_review", rows=0, reason=f"no crossings {period}")
    _write(rows, args.format, [*columns_of("crossings_for_review"), "evidence"])
    return None


def _label_studio(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """The listed crossings' evidence frames as Label Studio tasks, the device's boxes as pre-labels."""
    from odctl.ledger_labelstudio import evidence_tasks, write_tasks

    tasks = evidence_tasks(rows, args.files_root or args.evidence)
    write_tasks(tasks, Path(args.label_studio))


def _cmd_correct(args: argparse.Namespace) -> Any:
    """One correction record, checked against the ledger before anything is written (the event it amends must be
    there), then appended to the local file (--to) or put as its own S3 object."""
    from odshared.fleet.corrections import check_kind, correct

    check_kind(args.kind)
    if args.source and not args.to:
        raise OdError("--from needs --to FILE: offline, the corrections file the record is appended to")
    if args.kind == "missed" and args.event_id:
        raise OdError(f"EVENT_ID {args.event_id}: a missed crossing has none yet (it is given added-<correction_id>)")
    if args.kind != "missed" and not args.event_id:
        raise OdError(f"--kind {args.kind} amends a crossing: give its EVENT_ID (odctl counts review lists them)")
    if args.to and args.kind != "missed" and not args.source:
        raise OdError(f"--to {args.to}: give --from the ledger's files too, where EVENT_ID {args.event_id} is found")
    changes = {"line": args.line, "class": args.cls, "direction": args.direction, "timestamp": args.timestamp}
    if args.kind == "missed":  # else --thing only narrows the search for EVENT_ID
        changes["thing"] = args.thing
    crossing = _crossing(args) if args.event_id else None
    record = correct(args.kind, crossing, _recorder(args), args.why, datetime.now(UTC), changes)
    if args.to:
        from odctl.ledger_review import append_local

        return {"correction": record, "written": append_local(record, Path(args.to))}
    import boto3

    from odctl.aws_errors import aws_errors
    from odctl.ledger_review import put_s3
    from odctl.pipeline_cli import stack_outputs

    with aws_errors("counts correct"):
        written = put_s3(record, boto3.client("s3"), stack_outputs(args.stack)["DataBucketName"])
    return {"correction": record, "written": written}


def _recorder(args: argparse.Namespace) -> str:
    """Who records a correction when --by names nobody: on AWS the caller's identity (the ARN CloudTrail names for
    the object's put, so the record and the trail agree), offline the login."""
    if args.recorded_by is not None:
        return str(args.recorded_by)
    if args.to:
        return _login()
    import boto3

    from odctl.aws_errors import aws_errors

    with aws_errors("counts correct"):
        return str(boto3.client("sts").get_caller_identity()["Arn"])


def _crossing(args: argparse.Namespace) -> dict[str, Any]:
    """The crossing EVENT_ID names, as the review lists it, from the whole ledger (and the --to file offline: an
    added crossing may be amended too)."""
    from odshared.fleet.ledger import review_parameters

    until = datetime.now(UTC) + timedelta(days=1)  # a device clock running ahead
    parameters = review_parameters(WHOLE_LEDGER, until, args.thing or "", "", args.event_id)
    also = [args.to] if args.to and Path(args.to).is_file() else []
    rows = _rows("crossings_for_review", parameters, args, also)
    if not rows:
        where = f" for thing {args.thing!r}" if args.thing else ""
        raise OdError(
            f"EVENT_ID {args.event_id}: no such crossing in the ledger{where} (odctl counts review lists them)"
        )
    return rows[0]


def _filters(args: argparse.Namespace) -> str:
    named = [f"{k} {v!r}" for k, v in (("thing", args.thing), ("line", args.line)) if v]
    return f" for {' and '.join(named)}" if named else ""


def _cmd_fleet(args: argparse.Namespace) -> Any:
    from odshared.fleet.ledger import arrival_floor

    now = datetime.now(UTC)
    rows = _rows("last_health", [arrival_floor(now - timedelta(days=args.days))], args)
    if not rows:  # as with counts: no device is an answer (an empty table), not an error
        log_event(logger, "fleet.none", query="last_health", rows=0, reason=f"no health in the last {args.days} days")
    for row in rows:
        seen = _instant(str(row["last_seen"]), "last_seen")
        row["stale"] = (now - seen).total_seconds() > args.stale_minutes * 60
    _write(rows, args.format, [*columns_of("last_health"), "stale"])
    return None


def _cmd_backfill(args: argparse.Namespace) -> None:
    """Move what a stack from before the partitioning by device wrote into the layout the tables read (odctl
    .ledger_backfill); a JSON summary; objects that cannot be moved are named and the exit is not 0."""
    import boto3

    from odctl.aws_errors import aws_errors
    from odctl.ledger_backfill import Backfill, backfill
    from odctl.pipeline_cli import stack_outputs

    done = Backfill()
    try:
        with aws_errors("counts backfill"):
            outputs = stack_outputs(args.stack)
            bucket = outputs["DataBucketName"]
            backfill(boto3.client("s3"), boto3.client("glue"), bucket, outputs["FleetDatabase"], done, args.dry_run)
    finally:  # what moved before an AWS error too: a rerun goes on from there
        summary = {"dry_run": args.dry_run, "moved": done.moved, "written": done.written, "left": done.left}
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    if done.left:
        key, why = next(iter(done.left.items()))
        raise OdError(
            f"s3://{bucket}/{key}: {why}; {len(done.left)} object(s) left where they are, the others moved: the "
            "queries do not read them (fix or remove their rows, then run odctl counts backfill again)"
        )


def _backfill_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", action="store_true", help="list what would move and what would be left; change nothing")
    add_stack(p)


def _add_source(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--from",
        dest="source",
        action="extend",
        nargs="+",
        metavar="PATH",
        help="what odctl detect --out or odctl watch --out wrote: files, folders (every *.jsonl and *.json under "
        "them) or globs; several, or repeated (default: the stack's Athena)",
    )
    add_stack(p, "the CloudFormation stack (for Athena)")
    p.add_argument("--format", choices=["csv", "json"], default="csv")


def _counts_options(p: argparse.ArgumentParser) -> None:
    _add_period(p)
    p.add_argument(
        "--by",
        choices=list(QUERY_BY),
        default="total",
        help="total: in, out and net per line and class; minute, hour or day: crossings per period (UTC); "
        "corrected: the totals as counted, as corrected (odctl counts correct) and the difference",
    )
    p.add_argument(
        "--gaps",
        action="store_true",
        help="instead: the seq ranges missing per device and stream (neither in the ledger nor still in the "
        "device's outbox, by its health reports before --until)",
    )
    _add_source(p)


def _add_period(p: argparse.ArgumentParser) -> None:
    """The period and filters the counts and their review take alike."""
    p.add_argument("--since", help="ISO 8601 (default: 7 days before --until); UTC unless it says otherwise")
    p.add_argument("--until", help="ISO 8601, exclusive (default: now)")
    p.add_argument("--thing", help="one device (its thing name)")
    p.add_argument("--line", help="one line (its configured name)")


def _review_options(p: argparse.ArgumentParser) -> None:
    _add_period(p)
    p.add_argument(
        "--evidence",
        metavar="FOLDER",
        help="with --from: the device's evidence folder (<event_id>/) or a copy of the bucket's evidence/ "
        "(<thing>/<event_id>/); on AWS the bucket's own",
    )
    p.add_argument("--disputed", action="store_true", help="only the crossings a correction amends or adds")
    p.add_argument(
        "--label-studio",
        metavar="OUT.json",
        help="with --evidence: also write every listed crossing's evidence frames as Label Studio tasks (the "
        "device's boxes as predictions), to import into a labeling project",
    )
    p.add_argument(
        "--files-root",
        help="Label Studio's local files root (LOCAL_FILES_DOCUMENT_ROOT), at or above --evidence; default --evidence",
    )
    _add_source(p)


def _login() -> str:
    """The offline default of --by; '' where the process has no login (a container's uid without a passwd entry):
    then odctl counts correct asks for --by."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def _correct_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("event_id", nargs="?", metavar="EVENT_ID", help="the crossing amended (none for --kind missed)")
    p.add_argument("--kind", required=True, help="not_a_crossing, wrong_class, wrong_direction or missed")
    p.add_argument("--why", required=True, help="what the evidence shows")
    p.add_argument(
        "--by",
        dest="recorded_by",
        help="who records it (default: on AWS your caller identity's ARN, offline your login)",
    )
    p.add_argument("--class", dest="cls", help="wrong_class: the right class; missed: its class")
    p.add_argument("--thing", help="missed: its device; else narrows the search for EVENT_ID")
    p.add_argument("--line", help="missed: its line")
    p.add_argument("--direction", help="missed: in or out")
    p.add_argument("--timestamp", help="missed: when it crossed, ISO 8601 with its zone (Z: UTC)")
    p.add_argument(
        "--to",
        metavar="FILE",
        help="offline: the corrections file (JSON Lines) the record is appended to; give it to --from afterwards "
        "(default: an object under the stack's data bucket's corrections/)",
    )
    _add_source(p)


def _fleet_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--days", type=positive_int(), default=7, help="look this far back for health messages")
    p.add_argument("--stale-minutes", type=positive_float(), default=10.0, help="no health for longer than this: stale")
    _add_source(p)


# counts' own subcommands: without one, counts gives the totals
_COUNTS_ACTIONS = (
    Command(
        "review",
        "Every crossing of the period: event_id, thing, line, class, direction, time, camera, evidence, and its "
        "latest correction.",
        "odctl counts review --from messages.jsonl corrections.jsonl --evidence evidence --since 2026-11-22",
        _cmd_review,
        _review_options,
    ),
    Command(
        "correct",
        "Record one correction of the ledger (who, when, why), never an edit of the device's events: odctl counts "
        "--by corrected gives the totals as counted and as corrected.",
        "odctl counts correct camera-01-17 --kind wrong_class --class 'yellow box' --why 'evidence frame 3'",
        _cmd_correct,
        _correct_options,
    ),
    Command(
        "backfill",
        "Once, after upgrading a stack from before the ledger was partitioned by device: move the Parquet written "
        "straight under each hour into the device folders the tables read, and register their partitions.",
        "odctl counts backfill --dry-run",
        _cmd_backfill,
        _backfill_options,
    ),
)

COMMANDS = (
    Command(
        "counts",
        "Crossings from the counts ledger: the net balance per line and class, or per hour or day.",
        "odctl counts --since 2026-11-22 --by hour --thing camera-01",
        _cmd_counts,
        _counts_options,
        _COUNTS_ACTIONS,
    ),
    Command(
        "fleet",
        "Every device's last health: when, FPS, model, backend and precision, last crossing's seq; stale marked.",
        "odctl fleet --stale-minutes 10",
        _cmd_fleet,
        _fleet_options,
    ),
)
