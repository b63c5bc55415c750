"""Conversion step of the workflow: a training job's model.tar.gz -> MXNet deploy graph + ONNX package in S3."""

from __future__ import annotations

import logging
from typing import Any

from odshared.convert import convert
from odshared.errors import OdError
from odshared.log import configure, log_event

configure()
logger = logging.getLogger(__name__)
OVERRIDES = ("nms_threshold", "force_suppress", "nms_topk", "threshold")


class ConvertInputError(OdError):
    """The event names neither a model artifact nor a training job."""


def job_from_artifact(uri: str) -> str:
    """``s3://bucket/prefix/<job>/output/model.tar.gz`` -> ``<job>`` (SageMaker's output layout)."""
    parts = uri.rstrip("/").split("/")
    if len(parts) >= 3 and parts[-2] == "output":
        return parts[-3]
    raise ConvertInputError(f"{uri}: not in SageMaker's <job>/output/model.tar.gz layout; pass training_job_name")


def resolve_artifact(event: dict[str, Any], sagemaker: Any = None) -> tuple[str, str]:
    """(model artifact URI, training job name) from the event, asking SageMaker when only the job is named."""
    job = event.get("training_job_name")
    artifact = event.get("model_artifact")
    if artifact:
        return artifact, job or job_from_artifact(artifact)
    if not job:
        raise ConvertInputError("the event needs model_artifact or training_job_name")
    if sagemaker is None:
        import boto3

        sagemaker = boto3.client("sagemaker")
    described = sagemaker.describe_training_job(TrainingJobName=job)
    if described.get("TrainingJobStatus") not in (None, "Completed"):
        raise ConvertInputError(f"training job {job} is {described['TrainingJobStatus']}, not Completed")
    return described["ModelArtifacts"]["S3ModelArtifacts"], job


def handler(event: dict[str, Any], _context: Any = None, sagemaker: Any = None) -> dict[str, Any]:
    artifact, job = resolve_artifact(event, sagemaker)
    out = f"{event['output_prefix'].rstrip('/')}/{job}"
    overrides = {k: v for k, v in (event.get("detection") or {}).items() if k in OVERRIDES}
    result = convert(artifact, out, event.get("classes"), **overrides)
    log_event(logger, "convert_model.done", training_job=job, package=out, unchanged=result["unchanged"])
    return {**result, "training_job_name": job}
