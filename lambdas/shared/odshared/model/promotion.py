"""Promotion of an approved model version: canary group first (when set), the soak, then the fleet's group, or the
canary put back and the version rejected. Started by the approval's EventBridge event; SageMaker may send one state
change more than once, so the first step claims the version and a second execution for it ends at once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from odshared.core import storage
from odshared.core.errors import OdError
from odshared.core.log import log_event
from odshared.model.registry import APPROVED, REJECTED, set_status, write_deployed

logger = logging.getLogger(__name__)
CLAIMS_PREFIX = "promotion/claims"
SCORE_KEYS = ("mAP", "trainingMap", "fp32Map", "int8Map", "precision", "images")


class PromotionError(OdError):
    """The approved version cannot be promoted as registered."""


@dataclass(frozen=True)
class PromotionSettings:
    """cdk.json ``edge-od:promotion`` (canary) and ``edge-od:thingGroup`` (where a version naming none goes)."""

    canary_group: str
    soak_seconds: int
    fleet_group: str
    records_bucket: str

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], fleet_group: str, records_bucket: str) -> PromotionSettings:
        return cls(str(raw["canaryThingGroup"]), round(float(raw["soakMinutes"]) * 60), fleet_group, records_bucket)


def _number(text: str | None) -> float | None:
    try:
        return None if text is None or text in ("", "-") else float(text)
    except ValueError:
        return None


def version_summary(described: Mapping[str, Any]) -> dict[str, Any]:
    """What a promotion step and ``odctl model list`` need from DescribeModelPackage."""
    metadata = dict(described.get("CustomerMetadataProperties") or {})
    scores: dict[str, Any] = {k: _number(metadata.get(k)) for k in SCORE_KEYS if k != "precision"}
    scores["precision"] = metadata.get("precision")
    return {
        "modelPackageArn": described["ModelPackageArn"],
        "version": described.get("ModelPackageVersion"),
        "status": described.get("ModelApprovalStatus"),
        "component": {
            "componentName": metadata.get("componentName", ""),
            "componentVersion": metadata.get("componentVersion", ""),
        },
        "thingGroup": "" if metadata.get("thingGroup") in (None, "-") else metadata["thingGroup"],
        "trainingJob": metadata.get("trainingJob", ""),
        "scores": scores,
        "metadata": metadata,
    }


def plan_promotion(model_package_arn: str, settings: PromotionSettings, sagemaker: Any) -> dict[str, Any]:
    """The approved version's component and target, claimed for this execution; ``proceed`` false where another
    execution has it already or it is no longer approved."""
    described = sagemaker.describe_model_package(ModelPackageName=model_package_arn)
    summary = version_summary(described)
    target = summary["thingGroup"] or settings.fleet_group
    plan = {**summary, "thingGroup": target, "canaryGroup": settings.canary_group, "soakSeconds": settings.soak_seconds}
    plan.pop("metadata")
    if summary["status"] != APPROVED:
        return {**plan, "proceed": False, "why": f"version {summary['version']} is {summary['status']} now"}
    if not target:
        raise PromotionError(
            f"version {summary['version']} names no thing group and edge-od:thingGroup is empty: set it in cdk.json "
            "and redeploy, or start the pipeline with --deploy GROUP"
        )
    if not summary["component"]["componentVersion"]:
        raise PromotionError(f"version {summary['version']}: no componentVersion in its metadata (not ours?)")
    created = described.get("CreationTime")
    stamp = f"-{int(created.timestamp())}" if isinstance(created, dt.datetime) else ""  # a recreated group's 1 is new
    claim = storage.join(f"s3://{settings.records_bucket}", CLAIMS_PREFIX, f"{summary['version']}{stamp}.json")
    if not storage.create_only(claim, json.dumps(plan, default=str).encode()):
        return {**plan, "proceed": False, "why": f"version {summary['version']} is being promoted already"}
    log_event(logger, "promotion.planned", version=summary["version"], target=target, canary=settings.canary_group)
    return {**plan, "proceed": True, "why": ""}


def record_promotion(
    plan: Mapping[str, Any], outcome: str, reason: str, groups: list[str], bucket: str, sagemaker: Any
) -> dict[str, Any]:
    """``promoted``: each group's deployment record now names this version (the next gate compares with it);
    ``rolled_back``: the version is Rejected with the failed signal as the reason."""
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if outcome == "promoted":
        reason = reason or f"version {plan['version']} deployed to {', '.join(groups)}"
        record = {k: plan[k] for k in ("modelPackageArn", "version", "component", "scores")}
        for group in groups:
            write_deployed(bucket, group, {**record, "deployedAt": now})
    elif outcome == "rolled_back":
        described = sagemaker.describe_model_package(ModelPackageName=plan["modelPackageArn"])
        metadata = {**(described.get("CustomerMetadataProperties") or {})}
        set_status(sagemaker, plan["modelPackageArn"], REJECTED, f"canary failed: {reason}", metadata)
    else:
        raise PromotionError(f"outcome {outcome!r}: expected promoted or rolled_back")
    log_event(logger, "promotion.recorded", version=plan["version"], outcome=outcome, groups=groups, why=reason)
    return {"outcome": outcome, "version": plan["version"], "groups": groups, "reason": reason, "at": now}
