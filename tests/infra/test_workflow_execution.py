"""The synthesized workflow executed by moto's Step Functions interpreter (over moto server).

moto runs no ``.sync`` integration and has no labeling-job API, so this test rewrites the two SageMaker
``.sync`` task resources to a Lambda standing in for the job (it returns the Describe* shape the real ``.sync``
returns) or, for the training-failure case, to a real SageMaker SDK call that fails in moto. The production
definition keeps ``.sync``. Lambdas run in moto's Docker-free mode: each invocation returns the next queued
result, in invocation order.
"""

from __future__ import annotations

import io
import json
import time
import zipfile

import boto3
import pytest
import requests

from tests.infra.conftest import state_machine_definition

pytestmark = pytest.mark.integration
ACCOUNT, REGION = "123456789012", "us-east-1"
FUNCTIONS = ("ValidateInput", "PrepareTrainingData", "ConvertModel", "PublishModelComponent", "DeployToThingGroup")


def _fn_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


@pytest.fixture
def moto_sfn(aws, monkeypatch):
    # the interpreter calls the other services through moto's own endpoint: tell it which port that is
    monkeypatch.setenv("MOTO_PORT", aws.rsplit(":", 1)[1])
    requests.post(
        f"{aws}/moto-api/config",
        timeout=10,
        json={"lambda": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}},
    )
    yield aws
    requests.post(f"{aws}/moto-api/config", timeout=10, json={"stepfunctions": {"execute_state_machine": False}})


def _definition(template: dict, topic_arn: str) -> dict:
    resources = template["Resources"]
    refs = {}
    for logical, resource in resources.items():
        if resource["Type"] == "AWS::SNS::Topic":
            refs[logical] = topic_arn
        if resource["Type"] == "AWS::Lambda::Function" and resource["Properties"].get("Handler") == "handler.handler":
            name = next(n for n in FUNCTIONS if logical.startswith(n))
            refs[logical] = _fn_arn(name)
        if resource["Type"] in ("AWS::S3::Bucket", "AWS::IAM::Role"):
            refs[logical] = f"arn:aws:iam::{ACCOUNT}:role/{logical}" if "Role" in resource["Type"] else logical.lower()
    return state_machine_definition(template, refs)


def _stand_in_jobs(definition: dict, training_fails: bool = False) -> dict:
    states = definition["States"]
    states["CreateLabelingJob"]["Resource"] = _fn_arn("FakeLabelingJob")
    states["CreateLabelingJob"]["Parameters"] = {"LabelingJobName.$": "$.config.value.labelingJobName"}
    if training_fails:
        states["CreateTrainingJob"]["Resource"] = "arn:aws:states:::aws-sdk:sagemaker:describeTrainingJob"
        states["CreateTrainingJob"]["Parameters"] = {"TrainingJobName": "no-such-training-job"}
        del states["CreateTrainingJob"]["ResultSelector"]
    else:
        states["CreateTrainingJob"]["Resource"] = _fn_arn("FakeTrainingJob")
        states["CreateTrainingJob"]["Parameters"] = {"TrainingJobName.$": "$.config.value.trainingJobName"}
    return definition


def _deploy(definition: dict) -> tuple[str, str]:
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    role = boto3.client("iam").create_role(RoleName="exec", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    client = boto3.client("lambda")
    for name in (*FUNCTIONS, "FakeLabelingJob", "FakeTrainingJob"):
        client.create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=role,
            Handler="handler.handler",
            Code={"ZipFile": zipped.getvalue()},
        )
    queue_url = boto3.client("sqs").create_queue(QueueName="notifications")["QueueUrl"]
    queue_arn = boto3.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    topic = boto3.client("sns").create_topic(Name="pipeline-notifications")["TopicArn"]
    boto3.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    machine = boto3.client("stepfunctions").create_state_machine(
        name="pipeline", definition=json.dumps(definition), roleArn=role
    )["stateMachineArn"]
    return machine, queue_url


def _queue(endpoint: str, results: list[dict]) -> None:
    requests.post(
        f"{endpoint}/moto-api/static/lambda-simple/response",
        timeout=10,
        json={"account_id": ACCOUNT, "region": REGION, "results": [json.dumps(r) for r in results]},
    )


def _run(machine: str, payload: dict) -> tuple[dict, list[str]]:
    client = boto3.client("stepfunctions")
    arn = client.start_execution(stateMachineArn=machine, input=json.dumps(payload))["executionArn"]
    for _ in range(200):
        described = client.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            break
        time.sleep(0.05)
    events = client.get_execution_history(executionArn=arn)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]
    return described, entered


def _config(labeling: bool, deploy: bool) -> dict:
    return {
        "runName": "run-1",
        "labelingRequested": labeling,
        "labelingJobName": "run-1-labels",
        "manifests": ["s3://data/labels/out.manifest"],
        "classes": ["blue box"],
        "preparation": {},
        "preparedPrefix": "s3://data/prepared/run-1",
        "hyperparameters": {"num_classes": "1"},
        "trainingJobName": "run-1-train",
        "deployRequested": deploy,
        "thingGroup": "cameras" if deploy else "",
    }


PREPARED = {
    "train_manifest": "s3://data/prepared/run-1/train.manifest",
    "hyperparameters": {"num_classes": "1"},
    "validation_manifest": "s3://data/prepared/run-1/validation.manifest",
}
TRAINED = {
    "ModelArtifacts": {"S3ModelArtifacts": "s3://artifacts/training/run-1-train/output/model.tar.gz"},
    "TrainingJobName": "run-1-train",
}
CONVERTED = {"package": "s3://artifacts/models/run-1-train"}
PUBLISHED = {"componentName": "com.example.ObjectDetection.Model", "componentVersion": "1.0.0"}


@pytest.mark.parametrize("labeling, deploy", [(False, True), (True, True), (False, False)])
def test_paths_through_the_workflow(synthesized, moto_sfn, labeling, deploy):
    _, template = synthesized
    topic = "arn:aws:sns:us-east-1:123456789012:pipeline-notifications"
    machine, _ = _deploy(_stand_in_jobs(_definition(template, topic)))
    results = [_config(labeling, deploy)]
    if labeling:
        results.append({"LabelingJobOutput": {"OutputDatasetS3Uri": "s3://data/labels/run-1-labels/output.manifest"}})
    results += [PREPARED, TRAINED, CONVERTED, PUBLISHED] + ([{"deploymentId": "d-1"}] if deploy else [])
    _queue(moto_sfn, results)
    described, entered = _run(machine, {"manifests": ["s3://data/labels/out.manifest"]})
    assert described["status"] == "SUCCEEDED", described
    expected = [
        "ValidateInput",
        "LabelingRequested?",
        *(["CreateLabelingJob", "UseLabelingOutput"] if labeling else ["UseGivenManifests"]),
        "PrepareTrainingData",
        "CreateTrainingJob",
        "ConvertModel",
        "PublishModelComponent",
        "DeployRequested?",
        *(["DeployToThingGroup"] if deploy else []),
        "Done",
    ]
    assert entered == expected
    output = json.loads(described["output"])
    assert output["training"] == {
        "modelArtifact": TRAINED["ModelArtifacts"]["S3ModelArtifacts"],
        "trainingJobName": "run-1-train",
    }
    assert output["labeled"]["manifests"] == (
        ["s3://data/labels/run-1-labels/output.manifest"] if labeling else ["s3://data/labels/out.manifest"]
    )
    assert output["component"]["value"] == PUBLISHED


def _failure(described: dict, queue_url: str) -> dict:
    assert described["status"] == "FAILED"
    messages = boto3.client("sqs").receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", [])
    assert messages, "the failure was not notified"
    return json.loads(json.loads(messages[0]["Body"])["Message"])


def test_training_failure_notifies_and_fails_with_the_cause(synthesized, moto_sfn):
    _, template = synthesized
    topic = "arn:aws:sns:us-east-1:123456789012:pipeline-notifications"
    machine, queue_url = _deploy(_stand_in_jobs(_definition(template, topic), training_fails=True))
    _queue(moto_sfn, [_config(False, True), PREPARED])
    described, entered = _run(machine, {})
    assert entered[-3:] == ["CreateTrainingJob", "Notify", "Failed"]
    notified = _failure(described, queue_url)
    assert described["error"] == notified["Error"] and described["cause"] == notified["Cause"]
    assert "no-such-training-job" in described["cause"] or described["error"].startswith("SageMaker")


def test_conversion_error_notifies_and_fails(synthesized, moto_sfn):
    _, template = synthesized
    topic = "arn:aws:sns:us-east-1:123456789012:pipeline-notifications"
    definition = _stand_in_jobs(_definition(template, topic))
    # moto's Docker-free Lambdas cannot raise, so the failing conversion is a failing S3 read standing in for
    # ConvertModel's error: both are task failures that the state's Catch must route to Notify -> Fail
    convert = definition["States"]["ConvertModel"]
    convert["Resource"] = "arn:aws:states:::aws-sdk:s3:getObject"
    convert["Parameters"] = {"Bucket": "no-such-bucket", "Key": "training/run-1-train/output/model.tar.gz"}
    del convert["ResultSelector"]
    machine, queue_url = _deploy(definition)
    _queue(moto_sfn, [_config(False, True), PREPARED, TRAINED])
    described, entered = _run(machine, {})
    assert entered[-3:] == ["ConvertModel", "Notify", "Failed"]
    notified = _failure(described, queue_url)
    assert described["error"] == notified["Error"]
