"""Promotion of an approved model version: canary group first (when set), the soak, then the fleet's group, or the
canary put back and the version rejected. Started by the approval's EventBridge event; SageMaker may send one state
change more than once, so the first step claims the version (for its execution) and a second execution for it ends
at once. One promotion at a time per canary group (the fleet's group where there is no canary): the group's lock
(``promotion/locks/<group>.json``, expiring) is held from the plan to the record, and a second approved version
waits for it, so no version reaches the fleet without its own soak. An operator's ``approve --override`` releases
the version's claim, so a rejected version can be promoted again (canary included).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from odshared.core import storage
from odshared.core.errors import OdError, StorageError
from odshared.core.lambda_env import FunctionScope
from odshared.core.log import log_event
from odshared.core.settings import PromotionConfig
from odshared.greengrass.deployments import DeploySettings, deploy_model, restore_deployment
from odshared.model.registry import APPROVED, REJECTED, read_deployed, set_status, write_deployed

logger = logging.getLogger(__name__)
CLAIMS_PREFIX = "promotion/claims"
LOCKS_PREFIX = "promotion/locks"
LOCK_POLL_SECONDS = 60  # how often a waiting promotion asks for the group again
LOCK_MARGIN_SECONDS = 3600  # a lock outlives its holder's longest run (apply + soak, twice the soak) by this much
SCORE_KEYS = ("mAP", "trainingMap", "fp32Map", "int8Map", "precision", "images")
# the only S3 answers a claim or a lock expects: it is not there (released meanwhile), or someone else wrote it
# first (a conditional write lost); anything else (denied, throttled, no bucket) is a fault and raises
ABSENT = ("NoSuchKey", "404", "NotFound")
TAKEN = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")


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
    def from_settings(cls, promotion: PromotionConfig, fleet_group: str, records_bucket: str) -> PromotionSettings:
        return cls(promotion.canary_thing_group, round(promotion.soak_minutes * 60), fleet_group, records_bucket)


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


def claim_uri(bucket: str, described: Mapping[str, Any]) -> str:
    """The version's claim: one promotion per approval of it (a recreated group's version 1 is a new one)."""
    created = described.get("CreationTime")
    stamp = f"-{int(created.timestamp())}" if isinstance(created, dt.datetime) else ""
    return storage.join(f"s3://{bucket}", CLAIMS_PREFIX, f"{described.get('ModelPackageVersion')}{stamp}.json")


def release_claim(bucket: str, described: Mapping[str, Any]) -> bool:
    """Let the version be promoted again (``odctl model approve --override`` of a rejected version)."""
    uri = claim_uri(bucket, described)
    if not storage.exists(uri):
        return False
    storage.delete(uri)
    log_event(logger, "promotion.claim_released", version=described.get("ModelPackageVersion"))
    return True


def route(canary_group: str, target: str) -> str:
    """Where an approved version goes, in words: every promotion notice says it."""
    if not canary_group:
        return (
            f"no canary configured (edge-od:promotion canaryThingGroup is empty): models go straight to the fleet "
            f"group {target}"
        )
    return f"canary group {canary_group} first, the fleet group {target} only after a healthy soak"


def _s3_code(exc: BaseException) -> str:
    """The S3 error code behind ``exc`` (storage wraps botocore's ClientError; a local file's absence is 404)."""
    from botocore.exceptions import ClientError

    for cause in (exc, exc.__cause__):
        if isinstance(cause, ClientError):
            return str(cause.response.get("Error", {}).get("Code", ""))
        if isinstance(cause, FileNotFoundError):
            return "404"
    return ""


def _read_json(uri: str) -> Any:
    """The object's JSON, None where it is not there; any other S3 failure raises (it says nothing about who holds
    it, and guessing would let two executions both think they do, or neither)."""
    try:
        return json.loads(storage.read_text(uri))
    except StorageError as exc:
        if _s3_code(exc) in ABSENT:
            return None
        raise


def _claimed(uri: str, plan: Mapping[str, Any], execution: str) -> bool:
    """This execution holds the version's claim (it made it now, or earlier before waiting for the group)."""
    body = json.dumps({**plan, "execution": execution}, default=str).encode()
    if storage.create_only(uri, body):
        return True
    try:
        holder = _read_json(uri)
    except ValueError as exc:  # a claim of an earlier format (not JSON): another execution's
        log_event(logger, "promotion.claim_unreadable", claim=uri, error=str(exc))
        return False
    if holder is None:  # released between the two calls (an override): ours if we are first now
        return storage.create_only(uri, body)
    return isinstance(holder, dict) and holder.get("execution") == execution != ""


def plan_promotion(
    model_package_arn: str, settings: PromotionSettings, sagemaker: Any, execution: str = ""
) -> dict[str, Any]:
    """The approved version's component and target, claimed for this execution; ``proceed`` false where another
    execution has it already or it is no longer approved; ``waiting`` while another version's promotion holds the
    group."""
    described = sagemaker.describe_model_package(ModelPackageName=model_package_arn)
    summary = version_summary(described)
    target = summary["thingGroup"] or settings.fleet_group
    plan = {**summary, "thingGroup": target, "canaryGroup": settings.canary_group, "soakSeconds": settings.soak_seconds}
    plan.pop("metadata")
    plan |= {"route": route(settings.canary_group, target), "waiting": False, "waitSeconds": 0}
    if summary["status"] != APPROVED:
        return {**plan, "proceed": False, "why": f"version {summary['version']} is {summary['status']} now"}
    if not target:
        raise PromotionError(
            f"version {summary['version']} names no thing group and edge-od:thingGroup is empty: set it in cdk.json "
            "and redeploy, or start the pipeline with --deploy GROUP"
        )
    if not summary["component"]["componentVersion"]:
        raise PromotionError(f"version {summary['version']}: no componentVersion in its metadata (not ours?)")
    if not _claimed(claim_uri(settings.records_bucket, described), plan, execution):
        return {**plan, "proceed": False, "why": f"version {summary['version']} is being promoted already"}
    holder = acquire_lock(settings, settings.canary_group or target, execution, summary["version"])
    if holder:
        why = f"waiting: version {holder.get('version')} is being promoted through {holder.get('group')}"
        log_event(logger, "promotion.waiting", version=summary["version"], holder=holder)
        wait = min(LOCK_POLL_SECONDS, max(1, settings.soak_seconds))
        return {**plan, "proceed": True, "waiting": True, "waitSeconds": wait, "why": why}
    log_event(logger, "promotion.planned", version=summary["version"], target=target, canary=settings.canary_group)
    return {**plan, "proceed": True, "why": ""}


def _lock_uri(bucket: str, group: str) -> str:
    return storage.join(f"s3://{bucket}", LOCKS_PREFIX, f"{group}.json")


def acquire_lock(settings: PromotionSettings, group: str, execution: str, version: Any) -> dict[str, Any] | None:
    """Hold the group for this execution: None when held (now or already), else the holder. An expired lock (its
    holder failed or was stopped) is taken over with a conditional write, so two waiters never both get it."""
    uri = _lock_uri(settings.records_bucket, group)
    now = dt.datetime.now(dt.UTC).timestamp()
    expires = now + 2 * settings.soak_seconds + LOCK_MARGIN_SECONDS
    body = json.dumps({"execution": execution, "version": version, "group": group, "expires": expires}).encode()
    if storage.create_only(uri, body):
        return None
    bucket, key = storage.split_s3(uri)
    s3 = storage.s3_client()
    try:
        current = s3.get_object(Bucket=bucket, Key=key)
    except s3.exceptions.NoSuchKey:  # released meanwhile
        return None if storage.create_only(uri, body) else {"version": "?", "group": group}
    holder = json.loads(current["Body"].read())
    if holder.get("execution") == execution:
        return None
    if holder.get("expires", 0) > now:
        return dict(holder)
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, IfMatch=current["ETag"])
    except s3.exceptions.ClientError as exc:
        if _s3_code(exc) not in TAKEN + ABSENT:  # not "another waiter took it first" (or released it): a fault
            raise
        log_event(logger, "promotion.lock_takeover_lost", group=group, error=str(exc))
        return dict(holder)
    log_event(logger, "promotion.lock_taken_over", group=group, expired=holder)
    return None


def release_lock(bucket: str, group: str, execution: str) -> bool:
    """The group is free for the next promotion (only the holder's own release counts)."""
    uri = _lock_uri(bucket, group)
    holder = _read_json(uri)
    if not isinstance(holder, dict) or holder.get("execution") != execution:
        return False
    storage.delete(uri)
    return True


def reject_version(sagemaker: Any, model_package_arn: str, reason: str) -> bool:
    """The version Rejected with ``reason`` (its metadata kept); False where it was already, so a second rollback
    leaves the first reason."""
    described = sagemaker.describe_model_package(ModelPackageName=model_package_arn)
    if described.get("ModelApprovalStatus") == REJECTED:
        return False
    metadata = {**(described.get("CustomerMetadataProperties") or {})}
    set_status(sagemaker, model_package_arn, REJECTED, reason, metadata)
    return True


def _deployment_records(deployments: list[Mapping[str, Any] | None]) -> dict[str, dict[str, Any]]:
    """group -> the exact deployment a promotion made there (what a later rollback to this version restores)."""
    return {
        d["thingGroup"]: {"deploymentId": d["deploymentId"], "components": d["components"]}
        for d in deployments
        if d and d.get("deploymentId")
    }


def record_promotion(
    plan: Mapping[str, Any],
    outcome: str,
    reason: str,
    groups: list[str],
    bucket: str,
    sagemaker: Any,
    deployments: list[Mapping[str, Any] | None] | None = None,
    execution: str = "",
) -> dict[str, Any]:
    """``promoted``: each group's deployment record now names this version and its exact deployment (the next gate
    compares with it, a rollback restores the one before); ``rolled_back``: the version is Rejected with the failed
    signal as the reason. Either way the group is released for the next promotion."""
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if outcome == "promoted":
        reason = reason or f"version {plan['version']} deployed to {', '.join(groups)}"
        record = {k: plan[k] for k in ("modelPackageArn", "version", "component", "scores")}
        exact = _deployment_records(deployments or [])
        for group in groups:
            write_deployed(bucket, group, {**record, "deployedAt": now, "deployment": exact.get(group)})
    elif outcome == "rolled_back":
        reject_version(sagemaker, plan["modelPackageArn"], f"canary failed: {reason}")
    else:
        raise PromotionError(f"outcome {outcome!r}: expected promoted or rolled_back")
    released = release_lock(bucket, plan.get("canaryGroup") or plan["thingGroup"], execution)
    log_event(
        logger, "promotion.recorded", version=plan["version"], outcome=outcome, groups=groups, why=reason, lock=released
    )
    return {
        "outcome": outcome,
        "version": plan["version"],
        "groups": groups,
        "reason": reason,
        "at": now,
        "route": plan.get("route", ""),
    }


def roll_back_group(
    thing_group: str,
    bucket: str,
    reason: str,
    scope: FunctionScope,
    settings: DeploySettings,
    sagemaker: Any,
    greengrass: Any,
) -> dict[str, Any]:
    """The group's exact deployment before its current version's (``odctl model rollback``): the components as
    that promotion left them, the version rolled back from Rejected with ``reason``, the record naming the version
    restored with no history left. A second rollback finds nothing to go back to and changes nothing."""
    record = read_deployed(bucket, thing_group)
    if not record:
        raise PromotionError(f"thing group {thing_group}: no promotion has reached it (nothing to roll back)")
    previous = record.get("previous")
    if record.get("rolledBackFrom") is not None and not previous:
        why = f"version {record['rolledBackFrom']} was rolled back already: {thing_group} runs {record['version']}"
        log_event(logger, "promotion.rollback_skipped", group=thing_group, why=why)
        return {"thingGroup": thing_group, "version": record["version"], "changed": False, "why": why}
    if not previous:
        raise PromotionError(f"thing group {thing_group}: version {record['version']} is the first one it ran")
    status = sagemaker.describe_model_package(ModelPackageName=previous["modelPackageArn"]).get("ModelApprovalStatus")
    if status != APPROVED:
        raise PromotionError(
            f"version {previous['version']} (before {record['version']}) is {status} now: approve it first "
            "(odctl model approve) or promote another version"
        )
    exact = (previous.get("deployment") or {}).get("components")
    if exact:  # as it was, to the byte
        deployed = restore_deployment(thing_group, exact, scope, settings, greengrass)
    else:  # a record from before deployments were recorded: the version merged into the group's deployment
        deployed = deploy_model(thing_group, previous["component"], scope, settings, greengrass)
    reject_version(sagemaker, record["modelPackageArn"], f"rolled back from {thing_group}: {reason}")
    restored = {"deploymentId": deployed["deploymentId"], "components": deployed["components"]}
    written = {**previous, "rolledBackFrom": record["version"], "deployment": restored}
    write_deployed(bucket, thing_group, written, keep_history=False)
    log_event(logger, "promotion.rolled_back", group=thing_group, to=previous["version"], was=record["version"])
    return {
        "thingGroup": thing_group,
        "version": previous["version"],
        "from": record["version"],
        "deploymentId": deployed["deploymentId"],
        "changed": True,
    }
