"""The synthesized stack: resources, policies, the workflow's shape, cdk-nag and cfn-lint."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk.assertions import Match, Template

from infra.config import ConfigError
from infra.pipeline_functions import SPECS
from tests.infra.conftest import synth
from tests.infra.template_values import Deployment
from tests.rehearsal.harness import NOTICES, PROMOTION_TASKS, TASK_STATES

pytestmark = pytest.mark.integration


def test_buckets_are_private_encrypted_and_logged(synthesized):
    stack, _ = synthesized
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::S3::Bucket", 3)
    template.all_resources_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
        },
    )
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": {"Status": "Enabled"},
            "CorsConfiguration": {"CorsRules": [Match.object_like({"AllowedMethods": ["GET"]})]},
            "LoggingConfiguration": {"DestinationBucketName": Match.any_value(), "LogFilePrefix": "data/"},
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like({"AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}),
                        Match.object_like({"Prefix": "tmp/", "ExpirationInDays": 7}),
                    ]
                )
            },
        },
    )
    policies = [r for r in synthesized[1]["Resources"].values() if r["Type"] == "AWS::S3::BucketPolicy"]
    assert len(policies) == 3
    for policy in policies:
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        )


def test_lambdas(synthesized):
    stack, template = synthesized
    functions = {
        k: r["Properties"]
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == "handler.handler"
    }
    assert len(functions) == len(SPECS) + 1  # the workflows' and the ledger's partition registration
    for props in functions.values():
        assert props["Runtime"] == "python3.13" and props["TracingConfig"] == {"Mode": "Active"}
    roles = {props["Role"]["Fn::GetAtt"][0] for props in functions.values()}
    assert len(roles) == len(functions)  # one role per function


def test_state_machine_shape(synthesized):
    stack, template = synthesized
    Template.from_stack(stack).has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "LoggingConfiguration": {"Level": "ALL", "IncludeExecutionData": True, "Destinations": Match.any_value()},
            "TracingConfiguration": {"Enabled": True},
        },
    )
    definition = Deployment(template).state_machine_definition()
    states = definition["States"]
    assert "QueryLanguage" not in definition or definition["QueryLanguage"] == "JSONPath"
    assert states["CreateTrainingJob"]["Resource"].endswith(":states:::sagemaker:createTrainingJob.sync")
    assert states["CreateLabelingJob"]["Resource"].endswith(":states:::sagemaker:createLabelingJob.sync")
    training = states["CreateTrainingJob"]["Parameters"]
    channel = training["InputDataConfig"][0]
    assert channel["InputMode"] == "Pipe" and channel["RecordWrapperType"] == "RecordIO"
    assert channel["DataSource"]["S3DataSource"]["S3DataType"] == "AugmentedManifestFile"
    assert channel["DataSource"]["S3DataSource"]["AttributeNames"] == ["source-ref", "bb"]
    assert training["AlgorithmSpecification"]["TrainingImage"].endswith("/object-detection:1")
    tasks = {name: s for name, s in states.items() if s["Type"] == "Task"}
    assert set(tasks) == {*TASK_STATES, *NOTICES, "Notify"}
    for name, state in tasks.items():
        if name == "Notify":
            continue
        assert state.get("TimeoutSeconds"), name
        assert any("States.ALL" in c["ErrorEquals"] and c["Next"] == "Notify" for c in state["Catch"]), name
        assert state.get("Retry"), name
    assert states["Notify"]["Next"] == "Failed" and states["Failed"]["Type"] == "Fail"
    assert states["Failed"]["Error"] == "PipelineFailed"
    assert states["Failed"]["CausePath"] == "States.Format('{}: {}', $.error.Error, $.error.Cause)"


def test_promotion_machine_shape_and_its_trigger(synthesized):
    """Every promotion task retries, times out and is caught into the promotion's own failure notice; the rule
    that starts it matches the stack's group's approvals only."""
    _, template = synthesized
    deployment = Deployment(template)
    states = deployment.state_machine_definition("Promotion")["States"]
    tasks = {name: s for name, s in states.items() if s["Type"] == "Task"}
    assert set(tasks) == {*PROMOTION_TASKS, "Notify"}
    for name, state in tasks.items():
        if name != "Notify":
            assert state.get("TimeoutSeconds") and state.get("Retry"), name
            assert any("States.ALL" in c["ErrorEquals"] and c["Next"] == "Notify" for c in state["Catch"]), name
    assert states["Failed"]["Error"] == "PromotionFailed"
    assert states["Soak"]["SecondsPath"] == "$.plan.value.soakSeconds"
    (group,) = deployment.resources("AWS::SageMaker::ModelPackageGroup").values()
    rules = [r for r in deployment.resources("AWS::Events::Rule").values() if "aws.sagemaker" in json.dumps(r)]
    (rule,) = rules
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {
            "ModelPackageGroupName": [group["Properties"]["ModelPackageGroupName"]],
            "ModelApprovalStatus": ["Approved"],
        },
    }


def test_greengrass_component_and_outputs(synthesized):
    stack, template = synthesized
    components = [r for r in template["Resources"].values() if r["Type"] == "AWS::GreengrassV2::ComponentVersion"]
    assert len(components) == 1
    recipe = components[0]["Properties"]["InlineRecipe"]
    text = json.dumps(recipe)
    assert "com.example.ObjectDetection" in text and not re.search(r"\$\{[A-Z_]+\}", text)
    assert components[0]["DependsOn"]
    outputs = template["Outputs"]
    for name in (
        "DataBucketName",
        "ArtifactsBucketName",
        "StateMachineArn",
        "PromotionStateMachineArn",
        "ModelPackageGroupName",
        "DeployFunctionName",
        "InferenceComponentName",
        "ModelComponentName",
        "DevicePolicyArn",
    ):
        assert name in outputs


def test_bad_context_is_named(tmp_path):
    with pytest.raises(ConfigError, match="edge-od:trainingInstanceType: an ml.\\* instance type"):
        synth(tmp_path, **{"edge-od:trainingInstanceType": "p3.2xlarge"})
    with pytest.raises(ConfigError, match="learning_rate='2'"):
        synth(tmp_path, **{"edge-od:hyperparameters": {"learning_rate": "2"}})
    # a typo of a real key would leave the real one at its default without a word
    with pytest.raises(
        ConfigError, match="edge-od:trainingInstanceTyp is not a setting .* edge-od:trainingInstanceType"
    ):
        synth(tmp_path, **{"edge-od:trainingInstanceTyp": "ml.g4dn.xlarge"})
    from infra.config import cdk_json_context

    promotion = cdk_json_context()["edge-od:promotion"]
    for bad, named in (
        ({"approvalMode": "sometimes"}, "approvalMode: auto\\|manual"),
        ({"mapFloor": 1.5}, "mapFloor: a number in \\[0, 1\\]"),
        ({"canary": {**promotion["canary"], "maxDetectionsRatio": 0.5}}, "canary.maxDetectionsRatio: a number >= 1"),
        ({"soakMinute": 30}, "unknown key 'soakMinute' \\(did you mean 'soakMinutes'\\?\\)"),
    ):
        with pytest.raises(ConfigError, match=f"edge-od:promotion: {named}"):
            synth(tmp_path, **{"edge-od:promotion": {**promotion, **bad}})
    # the spooler and log blocks: the same model, so the same messages, key by key
    logs = cdk_json_context()["edge-od:logs"]
    with pytest.raises(
        ConfigError, match="edge-od:logs: unknown key 'interval' \\(did you mean 'intervalSeconds'\\?\\)"
    ):
        synth(tmp_path, **{"edge-od:logs": {**logs, "interval": 60}})
    with pytest.raises(ConfigError, match="edge-od:spooler: storageType: Disk\\|Memory"):
        synth(tmp_path, **{"edge-od:spooler": {**cdk_json_context()["edge-od:spooler"], "storageType": "Flash"}})
    alarms = cdk_json_context()["edge-od:fleetAlarms"]
    with pytest.raises(ConfigError, match="edge-od:fleetAlarms: devices: a list of thing names"):
        synth(tmp_path, **{"edge-od:fleetAlarms": {**alarms, "devices": ["camera 7"]}})
    with pytest.raises(ConfigError, match="edge-od:fleetAlarms: unknown key 'fpsFlor' \\(did you mean 'fpsFloor'"):
        synth(tmp_path, **{"edge-od:fleetAlarms": {**alarms, "fpsFlor": 2}})


def test_cfn_lint_reports_nothing(synthesized, tmp_path):
    stack, template = synthesized
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))
    lint = shutil.which("cfn-lint") or str(Path(sys.executable).with_name("cfn-lint"))
    done = subprocess.run([lint, str(path)], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("construct", ["Pipeline", "Ingestion"])
def test_definition_passes_asl_validator(synthesized, tmp_path, construct):
    """cfn-lint skips CDK state machines (their definition is an Fn::Join), so asl-validator checks it."""
    _, template = synthesized
    validator = Path(__file__).resolve().parents[2] / ".tools" / "node_modules" / ".bin" / "asl-validator"
    assert validator.exists(), "asl-validator is installed by `make setup` (npm install --prefix .tools)"
    path = tmp_path / "definition.json"
    path.write_text(json.dumps(Deployment(template).state_machine_definition(construct)))
    done = subprocess.run([str(validator), "--json-path", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_validate_input_learns_where_ground_truth_runs(synthesized):
    _, template = synthesized
    for region, available in (("eu-south-2", "false"), ("eu-west-1", "true")):
        deployment = Deployment(template, region=region)
        (validate,) = [
            r for k, r in deployment.resources("AWS::Lambda::Function").items() if k.startswith("ValidateInput")
        ]
        defaults = json.loads(
            deployment.resolve(validate["Properties"]["Environment"]["Variables"]["PIPELINE_DEFAULTS"])
        )
        assert defaults["labelingAvailable"] == available and defaults["region"] == region


def test_unhandled_failures_reach_the_topic(synthesized):
    stack, template = synthesized
    Template.from_stack(stack).has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.states"],
                "detail-type": ["Step Functions Execution Status Change"],
                "detail": {"status": ["FAILED", "TIMED_OUT", "ABORTED"], "stateMachineArn": Match.any_value()},
            },
            "Targets": [Match.object_like({"Arn": {"Ref": Match.string_like_regexp("Notifications")}})],
        },
    )
    (topic_policy,) = Deployment(template).resources("AWS::SNS::TopicPolicy").values()
    statements = topic_policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(s.get("Principal") == {"Service": "events.amazonaws.com"} for s in statements)


def test_ingestion_map_reads_and_writes_the_data_bucket_with_valid_requests(synthesized):
    """moto's interpreter writes no ResultWriter result files (its S3 writer says TODO), so the Map's S3 calls are
    also checked here: the ItemReader's Parameters, with the prefix odctl writes, are a valid ListObjectsV2 request
    (botocore's ParamValidator); the ResultWriter targets the data bucket under ingest/map-results/."""
    import botocore.session
    from botocore.validate import ParamValidator

    from odctl.pipeline_cli import ingestion_input

    _, template = synthesized
    deployment = Deployment(template)
    videos = deployment.state_machine_definition("Ingestion")["States"]["Videos"]
    reader = videos["ItemReader"]
    assert reader["Resource"] == "arn:aws:states:::s3:listObjectsV2"
    data_bucket = deployment.name(next(k for k in template["Resources"] if k.startswith("StorageData")))
    run_input = ingestion_input(f"s3://{data_bucket}/videos/", data_bucket, every=10)
    params = {
        k.removesuffix(".$"): (run_input["prefix"] if k.endswith(".$") else v) for k, v in reader["Parameters"].items()
    }
    model = botocore.session.get_session().get_service_model("s3")
    report = ParamValidator().validate(params, model.operation_model("ListObjectsV2").input_shape)
    assert not report.has_errors(), report.generate_report()
    assert params == {"Bucket": data_bucket, "Prefix": "videos/"}
    writer = videos["ResultWriter"]
    assert writer["Resource"] == "arn:aws:states:::s3:putObject"
    assert writer["Parameters"] == {"Bucket": data_bucket, "Prefix": "ingest/map-results"}
    assert videos["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert videos["MaxConcurrency"] == 200 and videos["ToleratedFailurePercentage"] == 10


def test_the_iot_policy_lets_a_device_publish_every_topic_the_component_uses(synthesized):
    """Each default topic of the device loop is in the recipe's accessControl and in the stack's AWS IoT policy,
    under the connection's own thing name."""
    from dataclasses import fields

    from odedge.config import EdgeConfig

    _, template = synthesized
    [policy] = [r for r in template["Resources"].values() if r["Type"] == "AWS::IoT::Policy"]
    published = next(s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Action"] == "iot:Publish")
    text = json.dumps(published["Resource"])
    # what the loop publishes to IoT Core (request_topic is subscribed; local_topic is on-device pub/sub)
    skipped = ("request_topic", "local_topic")
    defaults = {f.name: f.default for f in fields(EdgeConfig) if f.name.endswith("_topic") and f.name not in skipped}
    assert set(defaults) == {"publish_topic", "health_topic", "result_topic", "counts_topic"}
    for name, topic in defaults.items():
        leaf = topic.rsplit("/", 1)[1]
        assert f"od/${{iot:Connection.Thing.ThingName}}/{leaf}" in text, name


def test_the_approval_rule_matches_sagemakers_documented_event_and_nothing_else(synthesized):
    """An event of the shape the SageMaker developer guide documents for "SageMaker Model Package State Change"
    (its envelope and detail keys), matched by EventBridge's own matcher as moto implements it."""
    from moto.events.models import EventPattern

    _, template = synthesized
    deployment = Deployment(template)
    (group,) = deployment.resources("AWS::SageMaker::ModelPackageGroup").values()
    name = group["Properties"]["ModelPackageGroupName"]
    (rule,) = [r for r in deployment.resources("AWS::Events::Rule").values() if "aws.sagemaker" in json.dumps(r)]
    pattern = EventPattern.load(json.dumps(deployment.resolve(rule["Properties"]["EventPattern"])))
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{name}/3"
    event = {
        "version": "0",
        "id": "a1b2c3d4-0000-0000-0000-000000000000",
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": "2026-12-03T10:00:00Z",
        "region": "us-east-1",
        "resources": [arn],
        "detail": {
            "ModelPackageGroupName": name,
            "ModelPackageVersion": 3,
            "ModelPackageArn": arn,
            "CreationTime": "2026-12-03T09:58:00Z",
            "InferenceSpecification": {
                "Containers": [{"Image": "x", "ImageDigest": "sha256:0", "ModelDataUrl": "s3://b/m.tar.gz"}],
                "SupportedContentTypes": ["image/jpeg"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
            "CertifyForMarketplace": False,
            "ModelApprovalStatus": "Approved",
            "MetadataProperties": {"GeneratedBy": "arn:aws:states:us-east-1:123456789012:execution:p:r"},
            "ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": "s3://b/s"}}},
            "LastModifiedTime": "2026-12-03T10:00:00Z",
        },
    }
    assert pattern.matches_event(event)
    for change in ({"ModelApprovalStatus": "PendingManualApproval"}, {"ModelApprovalStatus": "Rejected"}):
        assert not pattern.matches_event({**event, "detail": {**event["detail"], **change}})
    assert not pattern.matches_event({**event, "detail": {**event["detail"], "ModelPackageGroupName": "other"}})
