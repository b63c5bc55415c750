"""After the soak: the canary devices' health metrics against bounds and against the model before."""

from __future__ import annotations

from typing import Any

from odshared.core.lambda_env import json_setting
from odshared.core.log import configure
from odshared.fleet.canary import CanaryBounds, check_canary

configure()


def handler(event: dict[str, Any], _context: Any = None, iot: Any = None, cloudwatch: Any = None) -> dict[str, Any]:
    import boto3

    bounds = CanaryBounds.from_mapping(json_setting("PROMOTION")["canary"])
    return check_canary(
        event["thing_group"],
        event["deployed_at"],
        bounds,
        iot or boto3.client("iot"),
        cloudwatch or boto3.client("cloudwatch"),
    )
