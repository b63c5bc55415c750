"""First step of a promotion: the approved version (from the approval's EventBridge event), claimed for this run,
and the canary group held for it (or a wait while another version's promotion holds it)."""

from __future__ import annotations

from typing import Any

from odshared.core.lambda_env import json_setting, setting
from odshared.core.log import configure
from odshared.core.settings import parse_promotion
from odshared.model.promotion import PromotionSettings, plan_promotion

configure()


def handler(event: dict[str, Any], _context: Any = None, sagemaker: Any = None) -> dict[str, Any]:
    """``detail``: the "SageMaker Model Package State Change" event's; ``execution``: this execution's ARN."""
    import boto3

    settings = PromotionSettings.from_settings(
        parse_promotion(json_setting("PROMOTION")),
        setting("FLEET_THING_GROUP", default=""),
        setting("ARTIFACTS_BUCKET"),
    )
    arn = event["detail"]["ModelPackageArn"]
    return plan_promotion(arn, settings, sagemaker or boto3.client("sagemaker"), event.get("execution") or "")
