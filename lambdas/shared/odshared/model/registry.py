"""The promotion gate and the SageMaker Model Registry: every scored model becomes a version of the stack's model
package group, Approved, PendingManualApproval or Rejected by the gate.

The gate reads the scores of the model deployed to the target from the group's deployment record (written by the
promotion when a model reached the group), so "no worse than what runs now" compares with what really runs.
An approval (the gate's in ``auto`` mode, an operator's in ``manual`` mode) is a change of the package's approval
status, and the stack's EventBridge rule on "SageMaker Model Package State Change" starts the promotion; in
``auto`` mode the package is created PendingManualApproval and then approved, so both modes go through that one
path.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from odshared.core import storage
from odshared.core.log import log_event
from odshared.core.settings import PromotionConfig

logger = logging.getLogger(__name__)
APPROVED, REJECTED, PENDING = "Approved", "Rejected", "PendingManualApproval"
APPROVAL_MODES = ("auto", "manual")
RECORDS_PREFIX = "promotion/groups"  # <artifacts bucket>/promotion/groups/<thing group>.json
METADATA_VALUE_MAX = 256  # CustomerMetadataProperties: values of at most 256 characters
UNSAFE = re.compile(r"[^\w\s.:/=+\-@]")  # what CustomerMetadataValue's pattern does not allow
# the built-in algorithm's endpoints take images and answer JSON (SageMaker's Object Detection docs)
CONTENT_TYPES = ["image/jpeg", "image/png", "application/x-image"]
RESPONSE_TYPES = ["application/json"]


@dataclass(frozen=True)
class GateSettings:
    """cdk.json ``edge-od:promotion``: what a model must score to reach devices."""

    approval_mode: str
    map_floor: float
    max_map_drop: float

    @classmethod
    def from_settings(cls, promotion: PromotionConfig) -> GateSettings:
        return cls(promotion.approval_mode, promotion.map_floor, promotion.max_map_drop)


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reason: str


def gate(scores: Mapping[str, Any], deployed: Mapping[str, Any] | None, settings: GateSettings) -> GateDecision:
    """mAP (of the precision the devices will run) >= the floor, and no more than ``max_map_drop`` below the model
    deployed to the target; the reason names both scores."""
    new = float(scores["mAP"])
    old = float(deployed["scores"]["mAP"]) if deployed else None
    now = f"the deployed model (version {deployed['version']}) has mAP {old:.3f}" if deployed else ""
    if new < settings.map_floor:
        why = f"mAP {new:.3f} is below the floor {settings.map_floor:g} (cdk.json edge-od:promotion mapFloor)"
        return GateDecision(False, f"{why}; {now}" if now else why)
    if deployed and old is not None and new < old - settings.max_map_drop:
        why = f"mAP {new:.3f} is {old - new:.3f} below the deployed model's {old:.3f} (version {deployed['version']})"
        return GateDecision(False, f"{why}: more than maxMapDrop {settings.max_map_drop:g}")
    why = f"mAP {new:.3f} >= floor {settings.map_floor:g}"
    return GateDecision(True, f"{why}; {now}" if now else f"{why}; nothing deployed to compare with")


# -- deployment records -----------------------------------------------------------------------------------------
def record_uri(bucket: str, thing_group: str) -> str:
    return f"s3://{bucket}/{RECORDS_PREFIX}/{thing_group}.json"


def read_deployed(bucket: str, thing_group: str) -> dict[str, Any] | None:
    """What the last promotion (or rollback) put on the group, None when nothing has been."""
    uri = record_uri(bucket, thing_group)
    return json.loads(storage.read_text(uri)) if storage.exists(uri) else None


def write_deployed(
    bucket: str, thing_group: str, record: Mapping[str, Any], keep_history: bool = True
) -> dict[str, Any]:
    """The group's record; the one it replaces becomes ``previous`` (one step of history: what a rollback goes back
    to), except after a rollback (``keep_history`` false), which leaves nothing to go back to."""
    previous = read_deployed(bucket, thing_group) if keep_history else None
    if previous:
        previous.pop("previous", None)
    written = {**record, "thingGroup": thing_group, "previous": previous}
    storage.write_text(record_uri(bucket, thing_group), json.dumps(written, indent=2) + "\n", "application/json")
    return written


def deployed_records(bucket: str) -> dict[str, dict[str, Any]]:
    """Every group's record: where each model version runs (``odctl model list``)."""
    uris = storage.list_files(f"s3://{bucket}/{RECORDS_PREFIX}/", (".json",))
    return {storage.basename(uri)[: -len(".json")]: json.loads(storage.read_text(uri)) for uri in uris}


# -- the registry -----------------------------------------------------------------------------------------------
def metadata_value(value: Any) -> str:
    """A CustomerMetadataProperties value: letters, digits, spaces and ``_.:/=+-@`` only, at most 256 characters
    (the full text is in scores.json and the description)."""
    if isinstance(value, list | tuple):
        value = " / ".join(str(v) for v in value)
    text = " ".join(UNSAFE.sub(" ", "" if value is None else str(value)).split())
    return text[:METADATA_VALUE_MAX] or "-"


@dataclass(frozen=True)
class Candidate:
    """A scored, published model and where it came from: what a model package version records."""

    scores: Mapping[str, Any]
    component: Mapping[str, str]
    model_artifact: str
    training_job: str
    execution: str
    manifests: Sequence[str]
    classes: Sequence[str]
    thing_group: str

    def metadata(self, gate_reason: str) -> dict[str, str]:
        values = {
            **{k: self.scores.get(k) for k in ("mAP", "trainingMap", "fp32Map", "int8Map", "precision", "images")},
            "int8Withheld": self.scores.get("int8Withheld") or "",
            "componentName": self.component["componentName"],
            "componentVersion": self.component["componentVersion"],
            "trainingJob": self.training_job,
            "execution": self.execution,
            "thingGroup": self.thing_group,
            "classes": list(self.classes),
            "gate": gate_reason,
            **{f"manifest{i}": uri for i, uri in enumerate(self.manifests)},
        }
        return {key: metadata_value(value) for key, value in values.items()}


def model_package_request(
    group: str, candidate: Candidate, status: str, reason: str, image: str, client_token: str
) -> dict[str, Any]:
    """CreateModelPackage for a built-in algorithm's model: its image and artifact, scores as metadata and as the
    model-quality statistics (scores.json beside the converted package)."""
    return {
        "ModelPackageGroupName": group,
        "ModelPackageDescription": f"{candidate.training_job}: {reason}"[:1024],
        "InferenceSpecification": {
            "Containers": [{"Image": image, "ModelDataUrl": candidate.model_artifact}],
            "SupportedContentTypes": CONTENT_TYPES,
            "SupportedResponseMIMETypes": RESPONSE_TYPES,
        },
        "ModelApprovalStatus": status,
        "MetadataProperties": {"GeneratedBy": candidate.execution[:1024]},
        "ModelMetrics": {
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": candidate.scores["scoresUri"]}}
        },
        "CustomerMetadataProperties": candidate.metadata(reason),
        "Task": "OBJECT_DETECTION",
        "ClientToken": hashlib.sha256(client_token.encode()).hexdigest()[:32],  # one package per execution
    }


def set_status(sagemaker: Any, arn: str, status: str, reason: str, metadata: Mapping[str, str]) -> None:
    """A new approval status; the package's metadata passed with it, so the update keeps it whatever the service
    does with members an update leaves out."""
    sagemaker.update_model_package(
        ModelPackageArn=arn,
        ModelApprovalStatus=status,
        ApprovalDescription=reason[:1024],
        CustomerMetadataProperties=dict(metadata),
    )


@dataclass(frozen=True)
class RegistrySettings:
    group: str
    image: str
    records_bucket: str
    gate: GateSettings


def register_model(
    candidate: Candidate, deploy_requested: bool, settings: RegistrySettings, sagemaker: Any
) -> dict[str, Any]:
    """Gate the candidate and register it; an approval (auto mode, deployment asked for) starts the promotion."""
    deployed = read_deployed(settings.records_bucket, candidate.thing_group) if candidate.thing_group else None
    decision = gate(candidate.scores, deployed, settings.gate)
    approve = decision.passed and deploy_requested and settings.gate.approval_mode == "auto"
    status = REJECTED if not decision.passed else PENDING
    token = candidate.execution or candidate.training_job
    request = model_package_request(settings.group, candidate, status, decision.reason, settings.image, token)
    arn = sagemaker.create_model_package(**request)["ModelPackageArn"]
    if approve:  # the state change from pending to approved is the event the promotion starts on
        set_status(sagemaker, arn, APPROVED, decision.reason, request["CustomerMetadataProperties"])
    version = sagemaker.describe_model_package(ModelPackageName=arn).get("ModelPackageVersion")
    outcome = "approved" if approve else ("pending" if decision.passed else "rejected")
    log_event(logger, "registry.registered", package=arn, version=version, outcome=outcome, why=decision.reason)
    return {
        "outcome": outcome,
        "modelPackageArn": arn,
        "version": version,
        "reason": decision.reason,
        "mAP": candidate.scores["mAP"],
        "deployedMap": deployed["scores"]["mAP"] if deployed else None,
        "deployedVersion": deployed["version"] if deployed else None,
        "thingGroup": candidate.thing_group,
    }
