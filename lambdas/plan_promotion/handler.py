"""First step of a promotion: the approved version (from the approval's EventBridge event), claimed for this run."""

from __future__ import annotations

from typing import Any

from odshared.core.lambda_env import json_setting, setting
from odshared.core.log import configure
from odshared.model.promotion import PromotionSettings, plan_promotion

configure()


def handler(event: dict[str, Any], _context: Any = None, sagemaker: Any = None) -> dict[str, Any]:
    import boto3

    settings = PromotionSettings.from_mapping(
        json_setting("PROMOTION"), setting("FLEET_THING_GROUP", default=""), setting("ARTIFACTS_BUCKET")
    )
    arn = event["detail"]["ModelPackageArn"]  # "SageMaker Model Package State Change"
    return plan_promotion(arn, settings, sagemaker or boto3.client("sagemaker"))
