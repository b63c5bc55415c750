"""The conversion Lambda against moto server: S3 in and out, training-job lookup, idempotence; odctl convert."""

from __future__ import annotations

import json

import boto3
import pytest

from odctl.cli import main
from tests.helpers import load_handler_module
from tests.reference_models import build_resnet50_from_seed

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def artifact(seed_dir, tmp_path_factory):
    return build_resnet50_from_seed(seed_dir, tmp_path_factory.mktemp("art") / "model.tar.gz")


def _handler():
    return load_handler_module("convert_model")


def _keys(bucket, prefix):
    listing = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    return {o["Key"]: o["ETag"] for o in listing.get("Contents", [])}


def test_handler_converts_from_training_job_and_is_idempotent(artifact, bucket):
    s3 = boto3.client("s3")
    s3.upload_file(str(artifact.tarball), bucket, "training/od-job-1/output/model.tar.gz")
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_training_job(
        TrainingJobName="od-job-1",
        AlgorithmSpecification={
            "TrainingImage": "811284229777.dkr.ecr.us-east-1.amazonaws.com/object-detection:1",
            "TrainingInputMode": "Pipe",
        },
        RoleArn="arn:aws:iam::123456789012:role/sm",
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/training"},
        ResourceConfig={"InstanceType": "ml.p3.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    described = sagemaker.describe_training_job(TrainingJobName="od-job-1")
    assert described["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{bucket}/training/od-job-1/output/model.tar.gz"
    module = _handler()
    event = {
        "training_job_name": "od-job-1",
        "classes": ["blue box", "yellow box"],
        "output_prefix": f"s3://{bucket}/models",
    }
    first = module.handler(event)
    assert first["training_job_name"] == "od-job-1" and not first["unchanged"]
    keys = _keys(bucket, "models/od-job-1/")
    assert sorted(k.rsplit("/", 1)[1] for k in keys) == sorted(
        ["deploy_model_algo_1-symbol.json", "deploy_model_algo_1-0000.params", "model.onnx", "model.json", "SHA256SUMS"]
    )
    assert first["files"]["model.onnx"]["uri"] == f"s3://{bucket}/models/od-job-1/model.onnx"
    assert first["files"]["model.onnx"]["bytes"] > 100_000_000
    model = json.loads(s3.get_object(Bucket=bucket, Key="models/od-job-1/model.json")["Body"].read())
    assert model["classes"] == ["blue box", "yellow box"]
    again = module.handler({**event, "model_artifact": described["ModelArtifacts"]["S3ModelArtifacts"]})
    assert again["unchanged"] and _keys(bucket, "models/od-job-1/") == keys


def test_handler_rejects_events_without_a_model(aws):
    module = _handler()
    with pytest.raises(module.ConvertInputError, match="model_artifact or training_job_name"):
        module.handler({"output_prefix": "s3://x/models"})
    with pytest.raises(module.ConvertInputError, match="not in SageMaker's <job>/output/model.tar.gz layout"):
        module.handler({"model_artifact": "s3://x/model.tar.gz", "output_prefix": "s3://x/models"})


def test_odctl_convert_local(artifact, tmp_path, capsys):
    assert (
        main(
            [
                "convert",
                "--model",
                str(artifact.tarball),
                "--out",
                str(tmp_path / "pkg"),
                "--classes",
                "blue box,yellow box",
                "--threshold",
                "0.2",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["classes"] == ["blue box", "yellow box"] and result["image_size"] == 512
    assert json.loads((tmp_path / "pkg" / "model.json").read_text())["detection"]["threshold"] == 0.2
    assert main(["convert", "--model", str(tmp_path / "missing.tar.gz"), "--out", str(tmp_path / "x")]) == 2
    assert "missing.tar.gz: no such file" in capsys.readouterr().err
