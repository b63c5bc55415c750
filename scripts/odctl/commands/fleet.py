"""Fleet commands: the counts ledger (odctl counts) and every device's last health (odctl fleet)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from odctl.cli_types import positive_float, positive_int
from odctl.ledger_local import columns_of
from odshared.core.errors import OdError
from odshared.core.log import log_event
from odshared.fleet.ledger import PERIODS

from .common import command

logger = logging.getLogger(__name__)
# every period the ledger has a named query for (crossings_by_period.sql), so the CLI offers what Athena has
QUERY_BY = {"total": "net_balance"} | {period: f"crossings_by_{period}" for period in PERIODS}


def _instant(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise OdError(f"{option} {text!r}: an ISO 8601 date or time, e.g. 2026-11-22 or 2026-11-22T09:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _rows(name: str, parameters: list[str], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Offline over JSON Lines (--from: files, folders, globs), else the stack's Athena workgroup."""
    if args.source:
        from odctl.ledger_local import expand_sources, run_query_files

        return run_query_files(name, parameters, expand_sources(args.source))
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


def _cmd_counts(args: argparse.Namespace) -> Any:
    until = _instant(args.until, "--until") if args.until else datetime.now(UTC)
    if args.gaps:
        return _gaps(args, until)
    since = _instant(args.since, "--since") if args.since else until - timedelta(days=7)
    if since >= until:
        raise OdError(f"--since {since.isoformat()} is not before --until {until.isoformat()}")
    from odshared.fleet.ledger import period_parameters

    name = QUERY_BY[args.by]
    rows = _rows(name, period_parameters(since, until, args.thing or "", args.line or ""), args)
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
    p.add_argument("--stack", default="EdgeObjectDetector", help="the CloudFormation stack (for Athena)")
    p.add_argument("--format", choices=["csv", "json"], default="csv")


def _add_counts(sub: Any) -> None:
    p = command(
        sub,
        "counts",
        "Crossings from the counts ledger: the net balance per line and class, or per hour or day.",
        "odctl counts --since 2026-11-22 --by hour --thing camera-01",
        _cmd_counts,
    )
    p.add_argument("--since", help="ISO 8601 (default: 7 days before --until); UTC unless it says otherwise")
    p.add_argument("--until", help="ISO 8601, exclusive (default: now)")
    p.add_argument(
        "--by",
        choices=list(QUERY_BY),
        default="total",
        help="total: in, out and net per line and class; minute, hour or day: crossings per period (UTC)",
    )
    p.add_argument("--thing", help="one device (its thing name)")
    p.add_argument("--line", help="one line (its configured name)")
    p.add_argument(
        "--gaps",
        action="store_true",
        help="instead: the seq ranges missing per device and stream (neither in the ledger nor still in the "
        "device's outbox, by its health reports before --until)",
    )
    _add_source(p)


def _add_fleet(sub: Any) -> None:
    p = command(
        sub,
        "fleet",
        "Every device's last health: when, FPS, model, backend and precision, last crossing's seq; stale marked.",
        "odctl fleet --stale-minutes 10",
        _cmd_fleet,
    )
    p.add_argument("--days", type=positive_int(), default=7, help="look this far back for health messages")
    p.add_argument("--stale-minutes", type=positive_float(), default=10.0, help="no health for longer than this: stale")
    _add_source(p)


COMMANDS = (_add_counts, _add_fleet)
