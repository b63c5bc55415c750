"""Deploy step: merge the new model (and the inference component) into the thing group's deployment."""

from __future__ import annotations

from typing import Any

from odshared.deployments import DeploySettings, deploy_model
from odshared.lambda_env import FunctionScope
from odshared.log import configure

configure()


def handler(event: dict[str, Any], context: Any = None, greengrass: Any = None) -> dict[str, Any]:
    import boto3

    return deploy_model(
        event["thing_group"],
        event["component"],
        FunctionScope.of(context),
        DeploySettings.from_environment(),
        greengrass or boto3.client("greengrassv2"),
    )
