"""The calibration Lambda over moto's S3, fed what the data-preparation Lambda really returns."""

from __future__ import annotations

import json

import boto3
import cv2
import numpy as np
import pytest

from infra.lambda_bundle import needs_device_package, shared_groups
from odshared.model.quantize import CalibrationError, read_calibration
from tests.conftest import REPO
from tests.helpers import load_handler_module

pytestmark = pytest.mark.integration
JOBS = ("blue-box-small-job.output.manifest", "yellow-box-small-job.output.manifest")


def _prepared(bucket: str, seed_dir, frame: bytes) -> dict:
    """The seed's labels with their frames in the bucket, through the real data-preparation handler."""
    s3 = boto3.client("s3")
    for name in JOBS:
        lines = []
        for line in (seed_dir / name).read_text().splitlines():
            record = json.loads(line)
            key = "frames/" + record["source-ref"].rsplit("/", 1)[1]
            s3.put_object(Bucket=bucket, Key=key, Body=frame)
            lines.append(json.dumps({**record, "source-ref": f"s3://{bucket}/{key}"}))
        s3.put_object(Bucket=bucket, Key=f"labels/{name}", Body="\n".join(lines).encode())
    return load_handler_module("prepare_training").handler(
        {
            "manifests": [f"s3://{bucket}/labels/{name}" for name in JOBS],
            "output_prefix": f"s3://{bucket}/prepared/run-1",
            "classes": ["blue box", "yellow box"],
            "preparation": {"class_from": ["color=blue:blue box", "color=yellow:yellow box"]},
            "hyperparameters": {"image_shape": "320"},
        }
    )


def _event(prepared: dict) -> dict:
    """As the workflow's PrepareCalibration state builds it from $.prepared.value."""
    return {key: prepared[key] for key in ("validation_manifest", "train_manifest", "hyperparameters")}


def _camera_frame(seed_dir) -> bytes:
    image = cv2.resize(cv2.imread(str(seed_dir / "yellow_box_1_000086.jpg")), (480, 270))
    return cv2.imencode(".jpg", image)[1].tobytes()


def test_calibration_frames_are_written_beside_the_manifests(bucket, seed_dir):
    prepared = _prepared(bucket, seed_dir, _camera_frame(seed_dir))
    result = load_handler_module("prepare_calibration").handler(_event(prepared))
    assert result["calibration"] == f"s3://{bucket}/prepared/run-1/calibration.npz"
    total = prepared["num_training_samples"] + prepared["counts"]["validation_images"]
    assert result["images"] == min(64, total) and result["available"] == total and result["image_size"] == 320
    assert result["source"].startswith(prepared["validation_manifest"])
    calibration = read_calibration(result["calibration"])
    assert calibration.frames.shape == (result["images"], 3, 320, 320) and calibration.frames.dtype == np.uint8


def test_a_frame_that_is_not_an_image_fails_the_step_naming_it(bucket, seed_dir):
    prepared = _prepared(bucket, seed_dir, b"not a jpeg")
    with pytest.raises(CalibrationError, match=rf"calibration image s3://{bucket}/frames/\S+\.jpg: not a decodable"):
        load_handler_module("prepare_calibration").handler(_event(prepared))


def test_each_bundle_carries_what_its_step_needs_and_fits_lambda():
    calibrate, convert = REPO / "lambdas" / "prepare_calibration", REPO / "lambdas" / "convert_model"
    assert needs_device_package(calibrate) and not needs_device_package(convert)  # odedge's preprocessing
    assert shared_groups(calibrate) == ["core", "data", "model"]
    requirements = {
        f: (REPO / "lambdas" / f / "requirements.txt").read_text() for f in ("prepare_calibration", "convert_model")
    }
    # OpenCV (154 MB) and ONNX Runtime (63 MB) never in one bundle: with numpy and onnx they pass 250 MB unzipped
    assert "opencv" in requirements["prepare_calibration"] and "onnxruntime" not in requirements["prepare_calibration"]
    assert "onnxruntime" in requirements["convert_model"] and "opencv" not in requirements["convert_model"]
