"""``odctl model list | approve | rollback``: the stack's Model Registry group and where each version runs.

Approving changes the version's approval status; the stack's EventBridge rule then starts its promotion (canary,
soak, fleet), exactly as the gate's own approval does. A rollback redeploys, through the deploy step's own code and
settings, the version the group's deployment record names as the one before.
"""

from __future__ import annotations

import logging
from typing import Any

from odshared.core.errors import OdError
from odshared.core.lambda_env import FunctionScope
from odshared.core.log import log_event
from odshared.greengrass.deployments import DeploySettings, deploy_model
from odshared.model.promotion import version_summary
from odshared.model.registry import (
    APPROVED,
    PENDING,
    REJECTED,
    deployed_records,
    read_deployed,
    set_status,
    write_deployed,
)

logger = logging.getLogger(__name__)


class RegistryCliError(OdError):
    """The version or the group cannot be acted on as asked."""


def _packages(group: str, sagemaker: Any) -> list[dict[str, Any]]:
    summaries: list[dict[str, Any]] = []
    kwargs = {"ModelPackageGroupName": group, "SortBy": "CreationTime", "SortOrder": "Ascending"}
    for page in sagemaker.get_paginator("list_model_packages").paginate(**kwargs):
        summaries += page.get("ModelPackageSummaryList", [])
    return summaries


def describe_version(group: str, version: int, sagemaker: Any) -> dict[str, Any]:
    for summary in _packages(group, sagemaker):
        if summary.get("ModelPackageVersion") == version:
            return dict(sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"]))
    raise RegistryCliError(f"version {version}: no such version in {group} (odctl model list shows them)")


def list_models(group: str, bucket: str, sagemaker: Any) -> list[dict[str, Any]]:
    """Every version, oldest first: scores, status, the gate's or the canary's reason, where it runs now."""
    where: dict[int, list[str]] = {}
    for thing_group, record in deployed_records(bucket).items():
        where.setdefault(int(record["version"]), []).append(thing_group)
    rows = []
    for summary in _packages(group, sagemaker):
        described = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        version = version_summary(described)
        rows.append(
            {
                "version": version["version"],
                "status": version["status"],
                **{k: version["scores"].get(k) for k in ("mAP", "trainingMap", "fp32Map", "int8Map", "precision")},
                "component": version["component"]["componentVersion"],
                "trainingJob": version["trainingJob"],
                "deployedTo": sorted(where.get(int(version["version"] or 0), [])),
                "reason": described.get("ApprovalDescription") or version["metadata"].get("gate", ""),
            }
        )
    return rows


def approve(group: str, version: int, sagemaker: Any, override: bool = False) -> dict[str, Any]:
    """Approve a version awaiting approval (``override``: also one the gate or a canary rejected)."""
    described = describe_version(group, version, sagemaker)
    status = described.get("ModelApprovalStatus")
    if status == APPROVED:
        raise RegistryCliError(f"version {version} is approved already (its promotion ran or is running)")
    if status == REJECTED and not override:
        why = described.get("ApprovalDescription") or ""
        raise RegistryCliError(f"version {version} was rejected ({why}); pass --override to approve it anyway")
    if status not in (PENDING, REJECTED):
        raise RegistryCliError(f"version {version} is {status}: only PendingManualApproval can be approved")
    reason = "approved by an operator" + (" over its rejection" if status == REJECTED else "")
    set_status(
        sagemaker, described["ModelPackageArn"], APPROVED, reason, described.get("CustomerMetadataProperties") or {}
    )
    log_event(logger, "model.approved", version=version, group=group, was=status)
    return {"version": version, "status": APPROVED, "was": status, "modelPackageArn": described["ModelPackageArn"]}


def rollback(
    thing_group: str, bucket: str, deploy_function: str, sagemaker: Any, greengrass: Any, lambda_client: Any
) -> dict[str, Any]:
    """Redeploy the version that ran on ``thing_group`` before the current one (it must still be Approved)."""
    record = read_deployed(bucket, thing_group)
    if not record:
        raise RegistryCliError(f"thing group {thing_group}: no promotion has reached it (nothing to roll back)")
    previous = record.get("previous")
    if not previous:
        raise RegistryCliError(f"thing group {thing_group}: version {record['version']} is the first one it ran")
    described = sagemaker.describe_model_package(ModelPackageName=previous["modelPackageArn"])
    if described.get("ModelApprovalStatus") != APPROVED:
        raise RegistryCliError(
            f"version {previous['version']} (before {record['version']}) is {described.get('ModelApprovalStatus')} "
            "now: approve it first (odctl model approve) or promote another version"
        )
    configuration = lambda_client.get_function_configuration(FunctionName=deploy_function)
    settings = DeploySettings.from_mapping(configuration["Environment"]["Variables"])
    partition, _, region, account = configuration["FunctionArn"].split(":")[1:5]
    deployed = deploy_model(
        thing_group, previous["component"], FunctionScope(partition, region, account), settings, greengrass
    )
    written = write_deployed(bucket, thing_group, {**previous, "rolledBackFrom": record["version"]})
    log_event(logger, "model.rolled_back", group=thing_group, to=previous["version"], was=record["version"])
    return {
        "thingGroup": thing_group,
        "version": written["version"],
        "from": record["version"],
        "deploymentId": deployed["deploymentId"],
    }
