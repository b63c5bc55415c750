"""Deploying to a thing group without dropping what it already runs.

A thing group has one active deployment and a new one replaces it, so the new deployment starts from the
group's current components and changes only ours; failures roll back, and the rollout is paced.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from odshared.core.lambda_env import FunctionScope, json_setting, setting
from odshared.core.log import log_event

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeploySettings:
    """The deploy step's settings, from the stack (infra/stack.py sets each one)."""

    inference_component: str
    inference_version: str
    name_prefix: str
    resource_limits: dict[str, Any]
    max_per_minute: int
    failure_percent: float

    @classmethod
    def from_environment(cls) -> DeploySettings:
        return cls(
            setting("INFERENCE_COMPONENT"),
            setting("INFERENCE_VERSION"),
            setting("NAME_PREFIX"),
            json_setting("SYSTEM_RESOURCE_LIMITS", "{}"),
            setting("ROLLOUT_MAX_PER_MINUTE", int, "10"),
            setting("ROLLOUT_FAILURE_PERCENT", float, "10"),
        )


def deploy_model(
    thing_group: str, component: Mapping[str, Any], scope: FunctionScope, settings: DeploySettings, greengrass: Any
) -> dict[str, Any]:
    """The published model component and the stack's inference component, merged into the group's deployment."""
    target = f"arn:{scope.partition}:iot:{scope.region}:{scope.account}:thinggroup/{thing_group}"
    limits = settings.resource_limits
    ours = {
        settings.inference_component: {
            "componentVersion": settings.inference_version,
            **({"runWith": {"systemResourceLimits": limits}} if limits else {}),
        },
        component["componentName"]: {"componentVersion": component["componentVersion"]},
    }
    return merge_and_deploy(
        greengrass,
        target,
        ours,
        f"{settings.name_prefix}-object-detection",
        settings.max_per_minute,
        settings.failure_percent,
    )


def current_components(greengrass: Any, target_arn: str) -> dict[str, Any]:
    """The components of the target's latest deployment (empty when it has none)."""
    latest = greengrass.list_deployments(targetArn=target_arn, historyFilter="LATEST_ONLY").get("deployments", [])
    if not latest:
        return {}
    deployment = greengrass.get_deployment(deploymentId=latest[0]["deploymentId"])
    return dict(deployment.get("components", {}))


def merge_and_deploy(
    greengrass: Any,
    target_arn: str,
    ours: Mapping[str, Mapping[str, Any]],
    name: str,
    max_per_minute: int = 10,
    failure_threshold_percent: float = 10.0,
) -> dict[str, Any]:
    existing = current_components(greengrass, target_arn)
    merged = {**existing, **{k: dict(v) for k, v in ours.items()}}
    response = greengrass.create_deployment(
        targetArn=target_arn,
        deploymentName=name,
        components=merged,
        deploymentPolicies={
            "failureHandlingPolicy": "ROLLBACK",
            "componentUpdatePolicy": {"timeoutInSeconds": 60, "action": "NOTIFY_COMPONENTS"},
            "configurationValidationPolicy": {"timeoutInSeconds": 60},
        },
        iotJobConfiguration={
            "jobExecutionsRolloutConfig": {"maximumPerMinute": max_per_minute},
            "abortConfig": {
                "criteriaList": [
                    {
                        "failureType": "FAILED",
                        "action": "CANCEL",
                        "thresholdPercentage": failure_threshold_percent,
                        "minNumberOfExecutedThings": 1,
                    }
                ]
            },
        },
    )
    kept = sorted(set(existing) - set(ours))
    log_event(
        logger,
        "deploy.created",
        target=target_arn,
        deployment=response.get("deploymentId"),
        kept=kept,
        updated=sorted(ours),
    )
    return {"deploymentId": response.get("deploymentId"), "targetArn": target_arn, "components": merged, "kept": kept}
