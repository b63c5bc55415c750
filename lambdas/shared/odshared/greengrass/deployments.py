"""Deploying to a thing group without dropping what it already runs.

A thing group has one active deployment and a new one replaces it, so the new deployment starts from the
group's current components and changes only ours; failures roll back, and the rollout is paced.

Ours include the nucleus's MQTT spooler: a crossing leaves the device's outbox once the nucleus accepted it, so the
nucleus must keep it through its own restart and a power cut. The default is the disk spooler
(``aws.greengrass.DiskSpooler``, nucleus 2.11.0 or later) sized for the QoS 1 traffic only (crossings); detections
and health go at QoS 0, which a spooler with ``keepQos0WhenOffline`` false does not keep while offline.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from odshared.core.errors import OdError
from odshared.core.lambda_env import FunctionScope, json_setting, setting
from odshared.core.log import log_event
from odshared.core.settings import LogSettings, SpoolerSettings, parse

logger = logging.getLogger(__name__)
NUCLEUS = "aws.greengrass.Nucleus"
LOG_MANAGER = "aws.greengrass.LogManager"
DISK_SPOOLER = "aws.greengrass.DiskSpooler"
DISK_SPOOLER_MIN_NUCLEUS = (2, 11, 0)
DEFAULT_HEALTH_INTERVAL = 60  # seconds: edge_component/recipes/inference.yaml's HealthInterval


class DeployError(OdError):
    """The group's deployment cannot take ours as configured."""


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("-")[0].split("."))


def _deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        merged[key] = _deep_merge(merged.get(key, {}), value) if isinstance(value, Mapping) else value
    return merged


def _merged(existing: Mapping[str, Any], name: str, version: str, ours: Mapping[str, Any]) -> dict[str, Any]:
    """``name`` at the group's version (else ``version``) with ``ours`` deep-merged into its configuration update,
    the rest of that update kept."""
    current = dict(existing.get(name, {}))
    update = dict(current.get("configurationUpdate", {}))
    update["merge"] = json.dumps(_deep_merge(json.loads(update.get("merge") or "{}"), ours))
    return {**current, "componentVersion": str(current.get("componentVersion", version)), "configurationUpdate": update}


def log_manager_component(
    existing: Mapping[str, Any], inference_component: str, settings: LogSettings
) -> dict[str, dict[str, Any]]:
    """aws.greengrass.LogManager uploading the inference component's log to CloudWatch Logs
    (/aws/greengrass/UserComponent/<region>/<component>), the group's other LogManager settings kept."""
    ours = {
        "logsUploaderConfiguration": {
            "componentLogsConfigurationMap": {
                inference_component: {
                    "minimumLogLevel": settings.level,
                    "diskSpaceLimit": str(settings.disk_limit_mb),
                    "diskSpaceLimitUnit": "MB",
                    "deleteLogFileAfterCloudUpload": "false",
                }
            }
        },
        "periodicUploadIntervalSec": str(settings.interval_seconds),
    }
    return {LOG_MANAGER: _merged(existing, LOG_MANAGER, settings.log_manager_version, ours)}


def spooler_components(existing: Mapping[str, Any], spooler: SpoolerSettings) -> dict[str, dict[str, Any]]:
    """The nucleus (the group's version, its other configuration kept) with our spooler merged in, and the disk
    spooler plugin where the storage is Disk."""
    nucleus = dict(existing.get(NUCLEUS, {}))
    version = str(nucleus.get("componentVersion", spooler.nucleus_version))
    disk = spooler.storage_type == "Disk"
    if disk and _version(version) < DISK_SPOOLER_MIN_NUCLEUS:
        raise DeployError(
            f"the group's nucleus is {version}; the disk spooler needs 2.11.0 or later: deploy a newer "
            f"{NUCLEUS} to the group, or set spooler.storageType to Memory in cdk.json (edge-od:spooler)"
        )
    ours = {
        "storageType": spooler.storage_type,
        "maxSizeInBytes": spooler.max_size_bytes,
        "keepQos0WhenOffline": False,
        **({"pluginName": DISK_SPOOLER} if disk else {}),
    }
    components = {NUCLEUS: _merged(existing, NUCLEUS, version, {"mqtt": {"spooler": ours}})}
    if disk:
        components[DISK_SPOOLER] = {"componentVersion": spooler.disk_spooler_version}
    return components


@dataclass(frozen=True)
class DeploySettings:
    """The deploy step's settings, from the stack (infra/stack.py sets each one)."""

    inference_component: str
    inference_version: str
    name_prefix: str
    resource_limits: dict[str, Any]
    max_per_minute: int
    failure_percent: float
    spooler: SpoolerSettings
    logs: LogSettings

    @classmethod
    def from_environment(cls) -> DeploySettings:
        return cls.from_mapping(os.environ)

    @classmethod
    def from_mapping(cls, variables: Mapping[str, str]) -> DeploySettings:
        """The deploy function's settings from its variables: its own environment, or its configuration as
        ``odctl model rollback`` lists it; one reading, so the two cannot differ."""
        return cls(
            setting("INFERENCE_COMPONENT", variables=variables),
            setting("INFERENCE_VERSION", variables=variables),
            setting("NAME_PREFIX", variables=variables),
            json_setting("SYSTEM_RESOURCE_LIMITS", "{}", variables),
            setting("ROLLOUT_MAX_PER_MINUTE", int, "10", variables),
            setting("ROLLOUT_FAILURE_PERCENT", float, "10", variables),
            parse(SpoolerSettings, json_setting("SPOOLER", variables=variables)),
            parse(LogSettings, json_setting("LOGS", variables=variables)),
        )


def thing_group_arn(scope: FunctionScope, thing_group: str) -> str:
    """A deployment's target: the group in the function's own partition, region and account."""
    return f"arn:{scope.partition}:iot:{scope.region}:{scope.account}:thinggroup/{thing_group}"


def deploy_model(
    thing_group: str, component: Mapping[str, Any], scope: FunctionScope, settings: DeploySettings, greengrass: Any
) -> dict[str, Any]:
    """The published model component and the stack's inference component, merged into the group's deployment."""
    target = thing_group_arn(scope, thing_group)
    limits = settings.resource_limits
    existing = current_components(greengrass, target)
    inference = {  # the group's own settings of the component (camera, lines) kept
        **existing.get(settings.inference_component, {}),
        "componentVersion": settings.inference_version,
        **({"runWith": {"systemResourceLimits": limits}} if limits else {}),
    }
    ours = {
        **spooler_components(existing, settings.spooler),
        **log_manager_component(existing, settings.inference_component, settings.logs),
        settings.inference_component: inference,
        component["componentName"]: {"componentVersion": component["componentVersion"]},
    }
    deployed = merge_and_deploy(
        greengrass,
        target,
        ours,
        f"{settings.name_prefix}-object-detection",
        settings.max_per_minute,
        settings.failure_percent,
        existing,
    )
    # when it was made (a device has as long as the soak to apply it), what the group ran before (what a rollback
    # restores) and how often its devices report health (what a canary expects of each)
    interval = health_interval(greengrass, scope, settings.inference_component, inference)
    return {
        **deployed,
        "deployedAt": _now(),
        "previous": existing,
        "thingGroup": thing_group,
        "healthIntervalSeconds": interval,
    }


def health_interval(greengrass: Any, scope: FunctionScope, name: str, spec: Mapping[str, Any]) -> float:
    """The inference component's HealthInterval on the group's devices: the deployment's configuration update
    where it sets one, else the recipe's default."""
    merge = json.loads((spec.get("configurationUpdate") or {}).get("merge") or "{}")
    if "HealthInterval" in merge:
        return float(merge["HealthInterval"])
    arn = f"arn:{scope.partition}:greengrass:{scope.region}:{scope.account}:components:{name}"
    try:
        body = greengrass.get_component(arn=f"{arn}:versions:{spec['componentVersion']}", recipeOutputFormat="JSON")
    except greengrass.exceptions.ResourceNotFoundException:  # the deployment fails on the devices anyway
        log_event(logger, "deploy.no_recipe", level=logging.WARNING, component=name, version=spec["componentVersion"])
        return float(DEFAULT_HEALTH_INTERVAL)
    text = body["recipe"].decode() if isinstance(body["recipe"], bytes) else str(body["recipe"])
    defaults = (json.loads(text).get("ComponentConfiguration") or {}).get("DefaultConfiguration") or {}
    return float(defaults.get("HealthInterval", DEFAULT_HEALTH_INTERVAL))


def restore_deployment(
    thing_group: str, components: Mapping[str, Any], scope: FunctionScope, settings: DeploySettings, greengrass: Any
) -> dict[str, Any]:
    """The group's components exactly as they were before a deployment (a failed canary's rollback)."""
    target = thing_group_arn(scope, thing_group)
    restored = merge_and_deploy(
        greengrass,
        target,
        {},
        f"{settings.name_prefix}-object-detection-rollback",
        settings.max_per_minute,
        settings.failure_percent,
        dict(components),
    )
    return {**restored, "deployedAt": _now(), "thingGroup": thing_group}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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
    existing: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    existing = current_components(greengrass, target_arn) if existing is None else existing
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
