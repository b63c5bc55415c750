"""odctl pipeline against moto server: a deployed-looking stack (outputs served by moto's CloudFormation)
whose state machine moto runs."""

from __future__ import annotations

import json
import time

import boto3
import pytest
import requests

from odctl import pipeline_cli
from odctl.cli import main

pytestmark = pytest.mark.integration

DEFINITION = {
    "StartAt": "ValidateInput",
    "States": {
        "ValidateInput": {"Type": "Pass", "Result": {"ok": True}, "ResultPath": "$.config", "Next": "Check"},
        "Check": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.runName", "StringEquals": "bad-run", "Next": "Failed"}],
            "Default": "Done",
        },
        "Failed": {"Type": "Fail", "Error": "PipelineInputError", "Cause": "invalid execution input: classes"},
        "Done": {"Type": "Succeed"},
    },
}


@pytest.fixture
def deployed(aws):
    requests.post(f"{aws}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=10)
    iam = boto3.client("iam")
    role = iam.create_role(
        RoleName="pipeline-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "states.amazonaws.com"}}
                ],
            }
        ),
    )["Role"]["Arn"]
    machine = boto3.client("stepfunctions").create_state_machine(
        name="Pipeline", definition=json.dumps(DEFINITION), roleArn=role
    )["stateMachineArn"]
    # the stack as `cdk deploy` leaves it, as far as odctl is concerned: its outputs
    template = {
        "Resources": {"DataBucket": {"Type": "AWS::S3::Bucket"}},
        "Outputs": {
            "StateMachineArn": {"Value": machine},
            "IngestionStateMachineArn": {"Value": machine},
            "DataBucketName": {"Value": {"Ref": "DataBucket"}},
        },
    }
    boto3.client("cloudformation").create_stack(StackName="EdgeObjectDetector", TemplateBody=json.dumps(template))
    yield
    requests.post(f"{aws}/moto-api/config", json={"stepfunctions": {"execute_state_machine": False}}, timeout=10)


def _wait(execution):
    client = boto3.client("stepfunctions")
    for _ in range(100):
        if client.describe_execution(executionArn=execution)["status"] != "RUNNING":
            return
        time.sleep(0.05)


def test_start_status_and_list(deployed, capsys):
    assert (
        main(
            [
                "pipeline",
                "start",
                "--manifest",
                "s3://data/labels/out.manifest",
                "--classes",
                "blue box",
                "--run-name",
                "run-1",
                "--deploy",
            ]
        )
        == 0
    )
    started = json.loads(capsys.readouterr().out)
    assert started["input"] == {
        "runName": "run-1",
        "manifests": ["s3://data/labels/out.manifest"],
        "classes": ["blue box"],
        "deploy": True,
    }
    _wait(started["executionArn"])
    result = pipeline_cli.status(started["executionArn"])
    assert result["status"] == "SUCCEEDED"
    assert [s["state"] for s in result["steps"]][:2] == ["ValidateInput", "Check"]
    assert all(s["status"] == "SUCCEEDED" for s in result["steps"])
    runs = pipeline_cli.list_runs()
    assert [r["name"] for r in runs] == ["run-1"]


def test_failure_cause_is_shown(deployed):
    payload = pipeline_cli.execution_input(manifests=["s3://d/m"], run_name="bad-run")
    started = pipeline_cli.start("EdgeObjectDetector", payload)
    _wait(started["executionArn"])
    result = pipeline_cli.status()  # the latest run
    assert result["status"] == "FAILED" and result["error"] == "PipelineInputError"
    assert result["cause"] == "invalid execution input: classes"


def test_missing_stack_is_named(aws, capsys):
    assert main(["pipeline", "list", "--stack", "NoSuchStack"]) == 2
    assert "stack 'NoSuchStack' not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["pipeline", "list"], "pipeline list: no AWS region; set AWS_DEFAULT_REGION"),
        (["pipeline", "status"], "pipeline status: no AWS region; set AWS_DEFAULT_REGION"),
        (["pipeline", "start", "--manifest", "s3://d/m"], "pipeline start: no AWS region; set AWS_DEFAULT_REGION"),
        (["pipeline", "start"], "give --manifest (labeled output manifests) or --labeling-manifest"),
        (["pipeline", "start", "--manifest", "out.manifest"], "--manifest out.manifest: the workflow reads S3"),
        (["watch", "--seconds", "1"], "no AWS region; set AWS_DEFAULT_REGION or pass --region"),
    ],
)
def test_no_region_no_credentials_or_a_local_path_is_one_line(argv, message, monkeypatch, tmp_path, capsys):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("{")]
    assert len(err) == 1 and message in err[0], err


def test_no_credentials_is_one_line(monkeypatch, tmp_path, capsys):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # as in a fresh process: nothing resolved yet
    assert main(["pipeline", "list"]) == 2
    assert "pipeline list: no AWS credentials" in capsys.readouterr().err


def test_ingest_starts_a_run_and_says_where_the_manifest_will_be(deployed, capsys):
    bucket = pipeline_cli.stack_outputs("EdgeObjectDetector")["DataBucketName"]
    argv = ["pipeline", "ingest", f"s3://{bucket}/videos/", "--every", "10", "--run-name", "ingest-1"]
    assert main([*argv, "--metadata-from-name", "{color}_{object}_{n}"]) == 0
    started = json.loads(capsys.readouterr().out)
    assert started["manifest"] == f"s3://{bucket}/ingest/ingest-1/labeling.manifest"
    execution = boto3.client("stepfunctions").describe_execution(executionArn=started["executionArn"])
    assert json.loads(execution["input"]) == {
        "runName": "ingest-1",
        "prefix": "videos/",
        "sampling": {"every": 10},
        "metadataFromName": "{color}_{object}_{n}",
    }
    assert main(["pipeline", "ingest", "s3://someone-elses/videos/"]) == 2
    assert "the ingestion workflow reads the stack's data bucket" in capsys.readouterr().err
    assert main(["pipeline", "ingest", f"s3://{bucket}/videos/", "--every", "2", "--fps", "1"]) == 2
    assert "give --every or --fps, not both" in capsys.readouterr().err
