"""Registration step: the gate decides, the model becomes a version of the stack's model package group."""

from __future__ import annotations

from typing import Any

from odshared.core.lambda_env import json_setting, setting
from odshared.core.log import configure
from odshared.core.settings import parse_promotion
from odshared.model.registry import Candidate, GateSettings, RegistrySettings, register_model

configure()


def handler(event: dict[str, Any], _context: Any = None, sagemaker: Any = None) -> dict[str, Any]:
    import boto3

    candidate = Candidate(
        scores=event["scores"],
        component=event["component"],
        model_artifact=event["model_artifact"],
        training_job=event["training_job_name"],
        execution=event["execution"],
        manifests=[m for m in event.get("manifests") or [] if m],
        classes=event["classes"],
        thing_group=event.get("thing_group") or setting("FLEET_THING_GROUP", default=""),
    )
    settings = RegistrySettings(
        setting("MODEL_PACKAGE_GROUP"),
        setting("ALGORITHM_IMAGE"),
        setting("ARTIFACTS_BUCKET"),
        GateSettings.from_settings(parse_promotion(json_setting("PROMOTION"))),
    )
    sagemaker = sagemaker or boto3.client("sagemaker")
    return register_model(candidate, bool(event.get("deploy_requested")), settings, sagemaker)
