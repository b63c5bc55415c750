"""Scoring step of the workflow: the converted package's mAP on the run's validation frames, FP32 and INT8."""

from __future__ import annotations

from typing import Any

from odshared.core.lambda_env import setting
from odshared.core.log import configure
from odshared.model.scoring import score_converted_model

configure()


def handler(event: dict[str, Any], _context: Any = None, sagemaker: Any = None) -> dict[str, Any]:
    import boto3

    return score_converted_model(
        event["package"],
        event["evaluation"],
        event["training_job_name"],
        setting("INT8_MAX_MAP_DROP", float),
        sagemaker or boto3.client("sagemaker"),
    )
