"""``odctl model``: the Model Registry versions of the stack (list), an approval (approve), a rollback (rollback);
the calls themselves are odctl.model_versions."""

from __future__ import annotations

import argparse
from typing import Any

from odctl.cli_types import positive_int
from odshared.core.errors import OdError

from ..common import Command, add_stack


def _cmd_model(args: argparse.Namespace) -> Any:
    if args.action == "approve" and args.version is None:
        raise OdError("model approve needs the version (odctl model list shows them): odctl model approve 3")
    if args.action == "rollback" and not args.group:
        raise OdError("model rollback needs --group THING_GROUP (the group to put the version before back on)")
    import boto3

    from odctl import model_versions
    from odctl.aws_errors import aws_errors
    from odctl.pipeline_cli import stack_outputs
    from odshared.fleet.canary import NO_CANARY

    with aws_errors(f"model {args.action}"):
        outputs = stack_outputs(args.stack)
        group, bucket = outputs["ModelPackageGroupName"], outputs["ArtifactsBucketName"]
        sagemaker = boto3.client("sagemaker")
        if args.action == "list":
            return model_versions.list_models(group, bucket, sagemaker)
        if args.action == "approve":
            canary = outputs.get("CanaryThingGroup", NO_CANARY)
            return model_versions.approve(
                group,
                args.version,
                sagemaker,
                args.override,
                bucket,
                iot=boto3.client("iot"),
                canary_group="" if canary == NO_CANARY else canary,
            )
        return model_versions.rollback(
            args.group,
            bucket,
            outputs["DeployFunctionName"],
            sagemaker,
            boto3.client("greengrassv2"),
            boto3.client("lambda"),
            args.reason,
        )


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["list", "approve", "rollback"])
    p.add_argument("version", nargs="?", type=positive_int(), help="approve: the version (odctl model list)")
    p.add_argument("--group", help="rollback: the thing group to put its previous version back on")
    p.add_argument("--override", action="store_true", help="approve: also a version the gate or a canary rejected")
    p.add_argument("--reason", default="by an operator", help="rollback: why (the rolled-back version's rejection)")
    add_stack(p)


COMMANDS = (
    Command(
        "model",
        "The stack's Model Registry: versions with scores, status and where each runs; approve one; roll back.",
        "odctl model approve 3",
        _cmd_model,
        _model_options,
    ),
)
