"""The deployed workflow: start, follow and list its runs."""

from __future__ import annotations

import argparse
from typing import Any

from odctl.cli_types import positive_float, positive_int
from odshared.core.errors import OdError

from .common import Command, add_stack


def _cmd_pipeline(args: argparse.Namespace) -> Any:
    from odctl import pipeline_cli
    from odctl.aws_errors import aws_errors
    from odctl.synth_video import parse_classes
    from odctl.train_local import load_hyperparameters

    if args.action == "start":
        deploy: bool | str = args.deploy if args.deploy not in (None, "") else (args.deploy == "")
        payload = pipeline_cli.execution_input(
            args.manifest,
            args.labeling_manifest,
            list(parse_classes(args.classes)) if args.classes else None,
            load_hyperparameters(args.hyperparameters),
            deploy,
            args.run_name,
            evaluation_images=args.evaluation_images,
        )  # checked before any AWS call
        with aws_errors("pipeline start"):
            return pipeline_cli.start(args.stack, payload)
    if args.action == "ingest":
        if not args.execution:
            raise OdError("pipeline ingest needs the videos' s3:// prefix (odctl pipeline ingest s3://BUCKET/videos/)")
        with aws_errors("pipeline ingest"):
            bucket = pipeline_cli.stack_outputs(args.stack)["DataBucketName"]
            payload = pipeline_cli.ingestion_input(
                args.execution, bucket, args.every, args.fps, args.metadata_from_name, args.run_name
            )
            return pipeline_cli.start_ingestion(args.stack, payload)
    with aws_errors(f"pipeline {args.action}"):
        if args.action == "status":
            return pipeline_cli.status(args.execution, args.stack)
        return pipeline_cli.list_runs(args.stack)


def _pipeline_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["start", "ingest", "status", "list"])
    p.add_argument(
        "execution",
        nargs="?",
        help="status: an execution ARN (default: the latest run); ingest: the videos' s3:// prefix",
    )
    add_stack(p)
    p.add_argument("--manifest", action="append", help="start: a Ground Truth output manifest (repeatable)")
    p.add_argument("--labeling-manifest", help="start: an input manifest to label with Ground Truth first")
    p.add_argument("--classes", help="start: class names (default: the stack's)")
    p.add_argument("--hyperparameters", help="start: JSON file of hyperparameter overrides")
    p.add_argument(
        "--deploy",
        nargs="?",
        const="",
        default=None,
        help="start: deploy to the stack's thing group, or to the group named here",
    )
    p.add_argument(
        "--evaluation-images",
        type=positive_int(),
        help="start: validation frames the model is scored on (default: edge-od:promotion evaluationImages)",
    )
    p.add_argument("--run-name", help="start/ingest: the run's name (default od-<UTC time>, ingest-<UTC time>)")
    p.add_argument("--every", type=positive_int(), help="ingest: keep one frame in N of each video")
    p.add_argument("--fps", type=positive_float(), help="ingest: keep about F frames per second of video")
    p.add_argument("--metadata-from-name", help="ingest: a name pattern, as make-manifest's")


# the group's subcommands, in the order of `odctl --help`
COMMANDS = (
    Command(
        "pipeline",
        "Start, follow and list runs of the deployed workflow (Step Functions).",
        "odctl pipeline start --manifest s3://data/labels/job/manifests/output/output.manifest --deploy",
        _cmd_pipeline,
        _pipeline_options,
    ),
)
