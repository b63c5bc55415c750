"""Last step of a promotion: the groups' deployment records (promoted), or the version Rejected (rolled back); the
canary group released for the next promotion either way."""

from __future__ import annotations

from typing import Any

from odshared.core.lambda_env import setting
from odshared.core.log import configure
from odshared.model.promotion import record_promotion

configure()


def handler(event: dict[str, Any], _context: Any = None, sagemaker: Any = None) -> dict[str, Any]:
    """``deployments``: the deploy steps' results (null for a step that did not run); ``execution``: this run's."""
    import boto3

    return record_promotion(
        event["plan"],
        event["outcome"],
        event.get("reason") or "",
        [g for g in event.get("groups") or [] if g],
        setting("ARTIFACTS_BUCKET"),
        sagemaker or boto3.client("sagemaker"),
        list(event.get("deployments") or []),
        event.get("execution") or "",
    )
