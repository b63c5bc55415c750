"""The canary's verdict, checked again after each wait until every device soaked: per device, reports of the new
model version only, from the moment Greengrass says that device applied the canary deployment."""

from __future__ import annotations

from typing import Any

from odshared.core.lambda_env import json_setting
from odshared.core.log import configure
from odshared.core.settings import parse_promotion
from odshared.fleet.canary import CanaryRun, check_canary

configure()


def handler(
    event: dict[str, Any], _context: Any = None, iot: Any = None, greengrass: Any = None, cloudwatch: Any = None
) -> dict[str, Any]:
    """``canary``: the canary deploy step's result; ``plan``: the plan step's."""
    import boto3

    bounds = parse_promotion(json_setting("PROMOTION")).canary
    return check_canary(
        CanaryRun.from_state(event["canary"], event["plan"]),
        bounds,
        iot or boto3.client("iot"),
        greengrass or boto3.client("greengrassv2"),
        cloudwatch or boto3.client("cloudwatch"),
    )
