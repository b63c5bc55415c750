"""The publish and deploy Lambdas against S3 (moto server) and a Greengrass v2 stand-in speaking the real
protocol to boto3."""

from __future__ import annotations

import json
import zipfile
from io import BytesIO
from types import SimpleNamespace

import boto3
import pytest
import yaml

from odshared.greengrass.components import PublishError
from tests.conftest import REPO
from tests.helpers import load_handler_module
from tests.lambdas.greengrass_service import GreengrassService

pytestmark = pytest.mark.integration
CONTEXT = SimpleNamespace(invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:step")
FILES = ("model.json", "model.onnx", "deploy_model_algo_1-symbol.json", "deploy_model_algo_1-0000.params", "SHA256SUMS")


def _module(folder):
    return load_handler_module(folder)


@pytest.fixture
def greengrass(aws):
    service = GreengrassService()
    yield service
    service.close()


def _package(bucket, prefix, marker):
    s3 = boto3.client("s3")
    for name in FILES:
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=f"{name} {marker}".encode())
    return f"s3://{bucket}/{prefix}"


def test_publish_creates_reuses_and_increments(bucket, greengrass, monkeypatch):
    monkeypatch.setenv("ARTIFACTS_BUCKET", bucket)
    monkeypatch.setenv("NAME_PREFIX", "com.acme")
    module = _module("publish_model_component")
    monkeypatch.setattr(module, "TEMPLATE", REPO / "edge_component/recipes/model.yaml")
    client = greengrass.client()
    event = {"package": _package(bucket, "models/job-1", "one"), "classes": ["blue box", "yellow box"]}
    first = module.handler(event, CONTEXT, greengrass=client)
    assert first["componentVersion"] == "1.0.0" and not first["reused"]
    archive = zipfile.ZipFile(
        BytesIO(
            boto3.client("s3")
            .get_object(Bucket=bucket, Key="components/com.acme.ObjectDetection.Model/1.0.0/model.zip")["Body"]
            .read()
        )
    )
    assert sorted(archive.namelist()) == sorted(f"model/{name}" for name in FILES)
    recipe = yaml.safe_load(greengrass.recipes[("com.acme.ObjectDetection.Model", "1.0.0")])
    assert recipe["Manifests"][0]["Artifacts"][0]["URI"] == (
        f"s3://{bucket}/components/com.acme.ObjectDetection.Model/1.0.0/model.zip"
    )
    again = module.handler(event, CONTEXT, greengrass=client)  # a retried step changes nothing
    assert again["reused"] and again["componentVersion"] == "1.0.0"
    newer = module.handler({**event, "package": _package(bucket, "models/job-2", "two")}, CONTEXT, greengrass=client)
    assert newer["componentVersion"] == "1.0.1" and not newer["reused"]


def test_publish_never_overwrites_an_artifact(bucket, greengrass, monkeypatch):
    monkeypatch.setenv("ARTIFACTS_BUCKET", bucket)
    monkeypatch.setenv("NAME_PREFIX", "com.acme")
    module = _module("publish_model_component")
    monkeypatch.setattr(module, "TEMPLATE", REPO / "edge_component/recipes/model.yaml")
    boto3.client("s3").put_object(
        Bucket=bucket, Key="components/com.acme.ObjectDetection.Model/1.0.0/model.zip", Body=b"someone else's bytes"
    )
    with pytest.raises(PublishError, match="exists with other content"):
        module.handler(
            {"package": _package(bucket, "models/job-1", "one"), "classes": ["a"]},
            CONTEXT,
            greengrass=greengrass.client(),
        )


def test_deploy_merges_with_what_the_group_runs(bucket, greengrass, monkeypatch):
    monkeypatch.setenv("INFERENCE_COMPONENT", "com.acme.ObjectDetection")
    monkeypatch.setenv("INFERENCE_VERSION", "1.2.0")
    monkeypatch.setenv("NAME_PREFIX", "com.acme")
    monkeypatch.setenv("SYSTEM_RESOURCE_LIMITS", json.dumps({"memory": 1048576, "cpus": 1.5}))
    monkeypatch.setenv("ROLLOUT_MAX_PER_MINUTE", "5")
    target = "arn:aws:iot:us-east-1:123456789012:thinggroup/cameras"
    greengrass.add_deployment(
        target,
        {
            "aws.greengrass.Nucleus": {"componentVersion": "2.14.0"},
            "aws.greengrass.Cli": {"componentVersion": "2.14.0"},
            "com.acme.ObjectDetection.Model": {"componentVersion": "1.0.0"},
        },
    )
    # the deploy step reads what the publish step returned (two publishes: the group runs 1.0.0, we ship 1.0.1)
    monkeypatch.setenv("ARTIFACTS_BUCKET", bucket)
    publisher = _module("publish_model_component")
    monkeypatch.setattr(publisher, "TEMPLATE", REPO / "edge_component/recipes/model.yaml")
    for marker in ("one", "two"):
        event = {"package": _package(bucket, f"models/job-{marker}", marker), "classes": ["blue box"]}
        published = publisher.handler(event, CONTEXT, greengrass=greengrass.client())
    assert published["componentVersion"] == "1.0.1"
    result = _module("deploy_model").handler(
        {"thing_group": "cameras", "component": published}, CONTEXT, greengrass=greengrass.client()
    )
    created = greengrass.deployments[result["deploymentId"]]
    assert created["targetArn"] == target and created["isLatestForTarget"]
    assert created["components"] == {
        "aws.greengrass.Nucleus": {"componentVersion": "2.14.0"},
        "aws.greengrass.Cli": {"componentVersion": "2.14.0"},
        "com.acme.ObjectDetection.Model": {"componentVersion": "1.0.1"},
        "com.acme.ObjectDetection": {
            "componentVersion": "1.2.0",
            "runWith": {"systemResourceLimits": {"memory": 1048576, "cpus": 1.5}},
        },
    }
    assert result["kept"] == ["aws.greengrass.Cli", "aws.greengrass.Nucleus"]
    assert created["deploymentPolicies"]["failureHandlingPolicy"] == "ROLLBACK"
    assert created["iotJobConfiguration"]["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 5}


def test_a_missing_setting_is_named(monkeypatch):
    from odshared.core.lambda_env import LambdaSettingsError

    monkeypatch.delenv("INFERENCE_COMPONENT", raising=False)
    event = {"thing_group": "cameras", "component": {"componentName": "c", "componentVersion": "1.0.0"}}
    with pytest.raises(LambdaSettingsError, match="environment variable INFERENCE_COMPONENT: not set"):
        _module("deploy_model").handler(event, CONTEXT, greengrass=object())
    monkeypatch.setenv("INFERENCE_COMPONENT", "c")
    monkeypatch.setenv("INFERENCE_VERSION", "1.0.0")
    monkeypatch.setenv("NAME_PREFIX", "com.acme")
    monkeypatch.setenv("ROLLOUT_MAX_PER_MINUTE", "ten")
    with pytest.raises(LambdaSettingsError, match="ROLLOUT_MAX_PER_MINUTE='ten'"):
        _module("deploy_model").handler(event, CONTEXT, greengrass=object())
