"""A promotion that ended without its last step (stopped, failed, timed out): the canary group put back, the version
Rejected, the group released. Started by the stack's rule on the promotion state machine's status changes."""

from __future__ import annotations

from typing import Any

from odshared.core.lambda_env import FunctionScope, setting
from odshared.core.log import configure
from odshared.greengrass.deployments import DeploySettings
from odshared.model.promotion_end import settle_ended_promotion

configure()


def handler(event: dict[str, Any], context: Any = None, clients: dict[str, Any] | None = None) -> dict[str, Any]:
    """``event``: EventBridge's "Step Functions Execution Status Change" (its ``detail`` names the execution)."""
    import boto3

    names = ("stepfunctions", "greengrassv2", "sagemaker")
    return settle_ended_promotion(
        event["detail"]["executionArn"],
        event["detail"]["status"],
        setting("ARTIFACTS_BUCKET"),
        FunctionScope.of(context),
        DeploySettings.from_environment(),
        clients or {name: boto3.client(name) for name in names},
    )
