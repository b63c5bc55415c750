"""``odctl model list | approve | rollback``: the stack's Model Registry group and where each version runs.

Approving changes the version's approval status; the stack's EventBridge rule then starts its promotion (canary,
soak, fleet), exactly as the gate's own approval does; approving a rejected version (``--override``) also releases
its claim from the earlier promotion, so it really is promoted again. A rollback is the canary's own
(odshared.model.promotion.roll_back_group): the group's exact deployment before its current version's, that version
Rejected, and nothing left to go back to (a second rollback changes nothing).
"""

from __future__ import annotations

import logging
from typing import Any

from odshared.core.errors import OdError
from odshared.core.lambda_env import FunctionScope
from odshared.core.log import log_event
from odshared.fleet.canary import both_groups_reason, in_both_groups
from odshared.greengrass.deployments import DeploySettings
from odshared.model.promotion import release_claim, roll_back_group, version_summary
from odshared.model.registry import APPROVED, PENDING, REJECTED, deployed_records, read_deployed, set_status

logger = logging.getLogger(__name__)


class ModelVersionError(OdError):
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
    raise ModelVersionError(f"version {version}: no such version in {group} (odctl model list shows them)")


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


def canary_overlap(described: dict[str, Any], canary_group: str, iot: Any) -> tuple[list[str], str]:
    """Canary devices also in the version's fleet group, and the canary's own words for it: said before the
    approval, since the promotion it starts fails on them."""
    metadata = described.get("CustomerMetadataProperties") or {}
    target = str(metadata.get("thingGroup") or "")
    target = "" if target == "-" else target  # "-": the run named no group
    both = in_both_groups(iot, canary_group, target) if iot is not None else []
    return both, both_groups_reason(both, canary_group, target) if both else ""


def approve(
    group: str,
    version: int,
    sagemaker: Any,
    override: bool = False,
    bucket: str | None = None,
    iot: Any = None,
    canary_group: str = "",
) -> dict[str, Any]:
    """Approve a version awaiting approval (``override``: also one the gate or a canary rejected; its claim from an
    earlier promotion in ``bucket`` is released, so the approval starts a promotion again, canary included). With
    ``iot`` and the stack's ``canary_group``, a canary device also in the version's fleet group is warned about
    first."""
    described = describe_version(group, version, sagemaker)
    both, warning = canary_overlap(described, canary_group, iot)
    if both:
        log_event(logger, "model.canary_overlap", level=logging.WARNING, version=version, things=both, why=warning)
    status = described.get("ModelApprovalStatus")
    if status == APPROVED:
        raise ModelVersionError(f"version {version} is approved already (its promotion ran or is running)")
    if status == REJECTED and not override:
        why = described.get("ApprovalDescription") or ""
        raise ModelVersionError(f"version {version} was rejected ({why}); pass --override to approve it anyway")
    if status not in (PENDING, REJECTED):
        raise ModelVersionError(f"version {version} is {status}: only PendingManualApproval can be approved")
    released = release_claim(bucket, described) if bucket and status == REJECTED else False
    reason = "approved by an operator" + (" over its rejection" if status == REJECTED else "")
    set_status(
        sagemaker, described["ModelPackageArn"], APPROVED, reason, described.get("CustomerMetadataProperties") or {}
    )
    log_event(logger, "model.approved", version=version, group=group, was=status, claim_released=released)
    return {
        "version": version,
        "status": APPROVED,
        "was": status,
        "modelPackageArn": described["ModelPackageArn"],
        "claimReleased": released,
        **({"warning": f"the canary will fail: {warning}"} if warning else {}),
    }


def rollback(
    thing_group: str,
    bucket: str,
    deploy_function: str,
    sagemaker: Any,
    greengrass: Any,
    lambda_client: Any,
    reason: str = "by an operator",
) -> dict[str, Any]:
    """The group's exact deployment before its current version's, through the deploy step's own settings; the
    version rolled back from is Rejected with ``reason``."""
    if read_deployed(bucket, thing_group) is None:  # said before any call on the stack's function
        raise ModelVersionError(f"thing group {thing_group}: no promotion has reached it (nothing to roll back)")
    try:
        configuration = lambda_client.get_function_configuration(FunctionName=deploy_function)
        settings = DeploySettings.from_mapping(configuration["Environment"]["Variables"])
        partition, _, region, account = configuration["FunctionArn"].split(":")[1:5]
        scope = FunctionScope(partition, region, account)
        return roll_back_group(thing_group, bucket, reason, scope, settings, sagemaker, greengrass)
    except OdError as exc:
        raise ModelVersionError(str(exc)) from exc
