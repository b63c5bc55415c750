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

from infra.config import cdk_json_context
from odshared.core.settings import LogSettings, SettingsError, SpoolerSettings, parse
from odshared.greengrass.components import PublishError
from odshared.greengrass.deployments import DeployError, log_manager_component, spooler_components
from tests.conftest import REPO
from tests.helpers import load_handler_module
from tests.lambdas.greengrass_service import GreengrassService

pytestmark = pytest.mark.integration
CONTEXT = SimpleNamespace(invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:step")
FILES = ("model.json", "model.onnx", "deploy_model_algo_1-symbol.json", "deploy_model_algo_1-0000.params", "SHA256SUMS")


SPOOLER = cdk_json_context()["edge-od:spooler"]  # what the stack gives the deploy function
LOGS = cdk_json_context()["edge-od:logs"]
SPOOLER_CONFIG = {"storageType": "Disk", "maxSizeInBytes": SPOOLER["maxSizeInBytes"], "keepQos0WhenOffline": False}


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
    monkeypatch.setenv("SPOOLER", json.dumps(SPOOLER))
    monkeypatch.setenv("LOGS", json.dumps(LOGS))
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
    spooler = {**SPOOLER_CONFIG, "pluginName": "aws.greengrass.DiskSpooler"}
    assert created["components"] == {
        "aws.greengrass.Nucleus": {
            "componentVersion": "2.14.0",  # the group's own: a deployment of ours never updates the nucleus
            "configurationUpdate": {"merge": json.dumps({"mqtt": {"spooler": spooler}})},
        },
        "aws.greengrass.DiskSpooler": {"componentVersion": SPOOLER["diskSpoolerVersion"]},
        "aws.greengrass.LogManager": created["components"]["aws.greengrass.LogManager"],
        "aws.greengrass.Cli": {"componentVersion": "2.14.0"},
        "com.acme.ObjectDetection.Model": {"componentVersion": "1.0.1"},
        "com.acme.ObjectDetection": {
            "componentVersion": "1.2.0",
            "runWith": {"systemResourceLimits": {"memory": 1048576, "cpus": 1.5}},
        },
    }
    assert result["kept"] == ["aws.greengrass.Cli"]
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
    # the blocks the stack passes verbatim go through the same parse as synth's check
    monkeypatch.setenv("ROLLOUT_MAX_PER_MINUTE", "5")
    spooler = {**SPOOLER, "maxSizeInByte": SPOOLER["maxSizeInBytes"]}
    del spooler["maxSizeInBytes"]
    monkeypatch.setenv("SPOOLER", json.dumps(spooler))
    monkeypatch.setenv("LOGS", json.dumps(LOGS))
    with pytest.raises(SettingsError, match="edge-od:spooler: unknown key 'maxSizeInByte' \\(did you mean"):
        _module("deploy_model").handler(event, CONTEXT, greengrass=object())


def test_the_spooler_keeps_the_groups_nucleus_and_its_other_settings():
    spooler = parse(SpoolerSettings, SPOOLER)
    configured = {
        "aws.greengrass.Nucleus": {
            "componentVersion": "2.12.1",
            "configurationUpdate": {
                "merge": json.dumps({"mqtt": {"port": 443}, "logging": {"level": "DEBUG"}}),
                "reset": ["/x"],
            },
        }
    }
    nucleus = spooler_components(configured, spooler)["aws.greengrass.Nucleus"]
    assert nucleus["componentVersion"] == "2.12.1" and nucleus["configurationUpdate"]["reset"] == ["/x"]
    merged = json.loads(nucleus["configurationUpdate"]["merge"])
    assert merged["mqtt"]["port"] == 443 and merged["logging"] == {"level": "DEBUG"}
    assert merged["mqtt"]["spooler"]["storageType"] == "Disk"
    bare = spooler_components({}, spooler)  # a group whose deployment names no nucleus: the configured version
    assert bare["aws.greengrass.Nucleus"]["componentVersion"] == SPOOLER["nucleusVersion"]
    memory = spooler_components({}, parse(SpoolerSettings, {**SPOOLER, "storageType": "Memory"}))
    assert set(memory) == {"aws.greengrass.Nucleus"}
    assert (
        "pluginName"
        not in json.loads(memory["aws.greengrass.Nucleus"]["configurationUpdate"]["merge"])["mqtt"]["spooler"]
    )


def test_a_nucleus_too_old_for_the_disk_spooler_is_named_with_the_fix():
    old = {"aws.greengrass.Nucleus": {"componentVersion": "2.10.3"}}
    with pytest.raises(DeployError, match="nucleus is 2.10.3; the disk spooler needs 2.11.0 or later.*Memory"):
        spooler_components(old, parse(SpoolerSettings, SPOOLER))


# aws.greengrass.LogManager's documented configuration (the component's page in the Greengrass developer guide)
LOG_MANAGER_KEYS = {"logsUploaderConfiguration", "periodicUploadIntervalSec", "deprecatedVersionSupport"}
UPLOADER_KEYS = {"systemLogsConfiguration", "componentLogsConfigurationMap"}
COMPONENT_LOG_KEYS = {"minimumLogLevel", "diskSpaceLimit", "diskSpaceLimitUnit", "deleteLogFileAfterCloudUpload"}


def test_the_log_manager_uploads_the_inference_log_with_documented_keys_and_keeps_the_groups_own():
    group = {
        "aws.greengrass.LogManager": {
            "componentVersion": "2.3.7",
            "configurationUpdate": {
                "merge": json.dumps(
                    {"logsUploaderConfiguration": {"systemLogsConfiguration": {"uploadToCloudWatch": "true"}}}
                )
            },
        }
    }
    (manager,) = log_manager_component(group, "com.acme.ObjectDetection", parse(LogSettings, LOGS)).values()
    assert manager["componentVersion"] == "2.3.7"
    config = json.loads(manager["configurationUpdate"]["merge"])
    assert set(config) <= LOG_MANAGER_KEYS and set(config["logsUploaderConfiguration"]) <= UPLOADER_KEYS
    assert config["logsUploaderConfiguration"]["systemLogsConfiguration"] == {"uploadToCloudWatch": "true"}
    ours = config["logsUploaderConfiguration"]["componentLogsConfigurationMap"]["com.acme.ObjectDetection"]
    assert set(ours) == COMPONENT_LOG_KEYS and ours["minimumLogLevel"] == LOGS["level"]
    assert config["periodicUploadIntervalSec"] == str(LOGS["intervalSeconds"])
    (fresh,) = log_manager_component({}, "c", parse(LogSettings, LOGS)).values()
    assert fresh["componentVersion"] == LOGS["logManagerVersion"]
