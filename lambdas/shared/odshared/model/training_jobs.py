"""A finished SageMaker training job, as the conversion step finds it: from the artifact URI SageMaker wrote (its
``<job>/output/model.tar.gz`` layout) or by asking SageMaker about the job."""

from __future__ import annotations

from typing import Any

from odshared.core.errors import OdError


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
