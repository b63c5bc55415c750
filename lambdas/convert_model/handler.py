"""Conversion step of the workflow: a training job's model.tar.gz -> MXNet deploy graph + ONNX package in S3."""

from __future__ import annotations

import logging
from typing import Any

from odshared.core.log import configure, log_event
from odshared.model.convert import convert, read_class_order
from odshared.model.quantize import read_calibration
from odshared.model.training_jobs import ConvertInputError, resolve_artifact

configure()
logger = logging.getLogger(__name__)
OVERRIDES = ("nms_threshold", "force_suppress", "nms_topk", "threshold")
__all__ = ["ConvertInputError", "handler"]


def handler(event: dict[str, Any], _context: Any = None, sagemaker: Any = None) -> dict[str, Any]:
    artifact, job = resolve_artifact(event, sagemaker)
    out = f"{event['output_prefix'].rstrip('/')}/{job}"
    overrides = {k: v for k, v in (event.get("detection") or {}).items() if k in OVERRIDES}
    calibration = None
    if event.get("calibration"):  # the run's calibration frames: the INT8 model beside the FP32 one
        calibration_uri = event["calibration"]
        calibration = lambda _size: read_calibration(calibration_uri)  # noqa: E731
    classes_from = event.get("classes_from")  # the run's classes.json: the order the training used
    classes = read_class_order(classes_from) if classes_from else event.get("classes")
    result = convert(artifact, out, classes, calibration=calibration, classes_from=classes_from, **overrides)
    log_event(logger, "convert_model.done", training_job=job, package=out, unchanged=result["unchanged"])
    return {**result, "training_job_name": job}
