"""The data-preparation Lambda handler over moto's S3, called as the workflow calls it."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.helpers import load_handler_module

pytestmark = pytest.mark.integration


def _handler():
    return load_handler_module("prepare_training").handler


def test_handler_prepares_seed_jobs_in_s3(bucket, seed_dir):
    s3 = boto3.client("s3")
    for name in ("blue-box-small-job.output.manifest", "yellow-box-small-job.output.manifest"):
        s3.upload_file(str(seed_dir / name), bucket, f"labels/{name}")
    event = {
        "manifests": [
            f"s3://{bucket}/labels/blue-box-small-job.output.manifest",
            f"s3://{bucket}/labels/yellow-box-small-job.output.manifest",
        ],
        "output_prefix": f"s3://{bucket}/prepared/run-1",
        "classes": ["blue box", "yellow box"],
        "preparation": {"class_from": ["color=blue:blue box", "color=yellow:yellow box"], "validation_fraction": 0.2},
    }
    result = _handler()(event)
    assert result["num_classes"] == 2
    assert result["num_training_samples"] + result["counts"]["validation_images"] == 21 + 32 - 3
    body = s3.get_object(Bucket=bucket, Key="prepared/run-1/train.manifest")["Body"].read().decode()
    assert len(body.splitlines()) == result["num_training_samples"]
    assert json.loads(s3.get_object(Bucket=bucket, Key="prepared/run-1/classes.json")["Body"].read())["classes"] == [
        "blue box",
        "yellow box",
    ]
