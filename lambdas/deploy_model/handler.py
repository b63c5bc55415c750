"""Deploy step: merge the new model (and the inference component) into the thing group's deployment."""

from __future__ import annotations

from typing import Any

from odshared.core.lambda_env import FunctionScope
from odshared.core.log import configure
from odshared.greengrass.deployments import DeploySettings, deploy_model, restore_deployment

configure()


def handler(event: dict[str, Any], context: Any = None, greengrass: Any = None) -> dict[str, Any]:
    """``component``: merge the model into the group's deployment; ``restore``: put back the components a
    deployment's result listed as ``previous`` (the canary's rollback)."""
    import boto3

    scope, settings = FunctionScope.of(context), DeploySettings.from_environment()
    client = greengrass or boto3.client("greengrassv2")
    if "restore" in event:
        return restore_deployment(event["thing_group"], event["restore"], scope, settings, client)
    return deploy_model(event["thing_group"], event["component"], scope, settings, client)
