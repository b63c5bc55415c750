"""The whole workflow rehearsed against the real service contracts (see tests/rehearsal/harness.py).

Red on the code before the cloud-contract fixes: CreateTrainingJob read ``$.prepared.value.hyperparameters``, which
the data-preparation handler never returned (States.Runtime: the run died with no notification), and its
AlgorithmSpecification carried MetricDefinitions.
"""

from __future__ import annotations

import io
import json
import zipfile
from functools import cache

import boto3
import cv2
import pytest
import requests
from moto.events.models import EventPattern

from odctl.pipeline_cli import execution_input
from odshared.core import storage
from odshared.data.input_manifest import build_input_manifest
from tests.conftest import SEED
from tests.lambdas.greengrass_service import GreengrassService
from tests.rehearsal import asl_semantics, sagemaker_task
from tests.rehearsal.harness import TASK_STATES, Rehearsal

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PREPARATION = {"class_from": ["color=blue:blue box", "color=yellow:yellow box"]}
SEED_JOBS = ("blue-box-large-job", "blue-box-small-job", "yellow-box-small-job")
# the functions each path below runs, each from its own bundle on the Lambda runtime (test_lambda_bundles checks
# that together they are every function of the stack)
REHEARSED = {
    "ingestion": ("ExtractVideo", "MergeManifest"),
    "pipeline": (
        "ValidateInput",
        "PrepareTrainingData",
        "PrepareCalibration",
        "ConvertModel",
        "PublishModelComponent",
        "DeployToThingGroup",
    ),
}


def _ran_from_bundles(rehearsal, path: str) -> None:
    """Each function of the path was invoked from its bundle and started (no Runtime.* error: import, handler,
    marshalling)."""
    invoked = {call.function for call in rehearsal.invocations}
    assert set(REHEARSED[path]) <= invoked, sorted(invoked)
    runtime_errors = [
        (c.function, c.error, c.message) for c in rehearsal.invocations if (c.error or "").startswith("Runtime.")
    ]
    assert runtime_errors == []


@pytest.fixture
def rehearsal(synthesized, lambda_bundles, aws, monkeypatch, tmp_path):
    monkeypatch.setenv("MOTO_PORT", aws.rsplit(":", 1)[1])  # the interpreter calls services on moto's own port
    config = {"lambda": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}}
    requests.post(f"{aws}/moto-api/config", timeout=10, json=config)
    greengrass = GreengrassService(strict=True)
    monkeypatch.setenv("AWS_ENDPOINT_URL_GREENGRASSV2", greengrass.endpoint)
    jobs = sagemaker_task.install(monkeypatch)
    asl_semantics.install(monkeypatch)
    stack, template = synthesized
    stage = Rehearsal(stack, template, tmp_path, lambda_bundles)
    stage.route_lambda(monkeypatch)
    stage.deploy()
    stage.create_inference_component(greengrass)
    boto3.client("iot").create_thing_group(thingGroupName="cameras")
    stage.greengrass, stage.jobs = greengrass, jobs
    yield stage
    stage.close()
    greengrass.close()
    requests.post(f"{aws}/moto-api/config", timeout=10, json={"stepfunctions": {"execute_state_machine": False}})


@cache
def _camera_frame() -> bytes:
    """A real camera frame of the original project, made small: every labeled frame's bytes in the bucket."""
    image = cv2.imread(str(SEED / "blue_box_1_000133.jpg"))
    return cv2.imencode(".jpg", cv2.resize(image, (480, 270)))[1].tobytes()


def _labeled_manifests() -> list[str]:
    """The original project's Ground Truth output manifests, as a run that labeled earlier left them in S3, with
    their frames moved into the data bucket (the INT8 calibration step decodes them)."""
    s3, uris = boto3.client("s3"), []
    for job in SEED_JOBS:
        lines = []
        for line in (SEED / f"{job}.output.manifest").read_text().splitlines():
            record = json.loads(line)
            key = "frames/" + record["source-ref"].split("/frames/", 1)[1]
            s3.put_object(Bucket="od-data", Key=key, Body=_camera_frame())
            lines.append(json.dumps({**record, "source-ref": f"s3://od-data/{key}"}))
        key = f"labels/{job}/manifests/output/output.manifest"
        s3.put_object(Bucket="od-data", Key=key, Body="\n".join(lines).encode() + b"\n")
        uris.append(f"s3://od-data/{key}")
    return uris


def _labeling_manifest() -> str:
    """Frames in the data bucket, listed by make-manifest's own code with metadata from the names."""
    s3 = boto3.client("s3")
    for job in SEED_JOBS:
        for line in (SEED / f"{job}.output.manifest").read_text().splitlines():
            name = json.loads(line)["source-ref"].rsplit("/", 1)[-1]
            s3.put_object(Bucket="od-data", Key=f"frames/{name.rsplit('_', 1)[0]}/{name}", Body=_camera_frame())
    out = "s3://od-data/manifests/frames.manifest"
    build_input_manifest(["s3://od-data/frames/"], out, pattern="{color}_{object}_{n}")
    return out


def _prepared_lines(run, name: str) -> int:
    uri = run.output["prepared"]["value"][name]
    bucket, _, key = uri[5:].partition("/")
    return len(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().splitlines())


def test_labeled_manifests_to_a_deployed_model(rehearsal):
    run = rehearsal.run(execution_input(_labeled_manifests(), preparation=PREPARATION, deploy="cameras"))
    assert run.status == "SUCCEEDED", run.failed_state_event()
    assert run.entered == [
        "ValidateInput",
        "LabelingRequested?",
        "UseGivenManifests",
        "PrepareTrainingData",
        "PrepareCalibration",
        "CreateTrainingJob",
        "ConvertModel",
        "PublishModelComponent",
        "DeployRequested?",
        "DeployToThingGroup",
        "Done",
    ]
    ((operation, request),) = rehearsal.jobs.requests
    assert operation == "CreateTrainingJob" and "MetricDefinitions" not in request["AlgorithmSpecification"]
    assert request["HyperParameters"]["num_training_samples"] == str(_prepared_lines(run, "train_manifest"))
    assert request["HyperParameters"]["num_classes"] == "2"
    # the INT8 model, calibrated on the run's validation frames, beside the FP32 one
    calibration = run.output["calibration"]["value"]
    # validation frames first, topped up from the training ones up to 64
    assert calibration["source"].startswith(run.output["prepared"]["value"]["validation_manifest"])
    total = _prepared_lines(run, "validation_manifest") + _prepared_lines(run, "train_manifest")
    assert calibration["images"] == min(64, total) and calibration["available"] == total
    converted = run.output["converted"]["value"]
    assert {"model.onnx", "model.int8.onnx"} <= set(converted["files"])
    model_json = json.loads(storage.read_text(converted["files"]["model.json"]["uri"]))
    assert model_json["files"]["onnx_int8"] == "model.int8.onnx"
    assert model_json["int8"]["calibration"] == {k: calibration[k] for k in ("source", "images", "available")}
    published = run.output["component"]["value"]
    with zipfile.ZipFile(io.BytesIO(storage.read_bytes(published["artifact"]))) as archive:
        assert "model/model.int8.onnx" in archive.namelist()  # the model component ships both precisions
    assert (published["componentName"], published["componentVersion"]) in rehearsal.greengrass.recipes
    deployment = rehearsal.greengrass.deployments[run.output["deployment"]["value"]["deploymentId"]]
    assert deployment["targetArn"].endswith(":thinggroup/cameras")
    assert set(deployment["components"]) == {"com.example.ObjectDetection", "com.example.ObjectDetection.Model"}
    assert rehearsal.notifications() == []
    _ran_from_bundles(rehearsal, "pipeline")


def test_labeling_job_then_training_without_deployment(rehearsal):
    manifest = _labeling_manifest()
    run = rehearsal.run(execution_input(labeling_manifest=manifest, preparation=PREPARATION))
    assert run.status == "SUCCEEDED", run.failed_state_event()
    assert run.entered[:5] == [
        "ValidateInput",
        "LabelingRequested?",
        "CreateLabelingJob",
        "UseLabelingOutput",
        "PrepareTrainingData",
    ]
    assert run.entered[-2:] == ["DeployRequested?", "Done"]
    assert [op for op, _ in rehearsal.jobs.requests] == ["CreateLabelingJob", "CreateTrainingJob"]
    assert run.output["labeled"]["manifests"] == [
        "s3://od-data/labels/" + run.output["config"]["value"]["labelingJobName"] + "/manifests/output/output.manifest"
    ]
    assert rehearsal.greengrass.deployments == {}


def _break(rehearsal, step: str) -> dict:
    """Make one step fail the way it fails on AWS; returns the execution input."""
    given = {"manifests": _labeled_manifests(), "preparation": PREPARATION, "deploy": "cameras"}
    if step == "ValidateInput":  # a hyperparameter SageMaker would refuse: caught before any job is paid for
        return execution_input(**given, hyperparameters={"learning_rate": "2"})
    if step == "CreateLabelingJob":
        rehearsal.jobs.fail["LabelingJob"] = "ClientError: the workforce is not available"
        return execution_input(labeling_manifest=_labeling_manifest(), preparation=PREPARATION)
    if step == "PrepareTrainingData":
        return execution_input(**{**given, "manifests": ["s3://od-data/labels/no-such-job/output.manifest"]})
    if step == "PrepareCalibration":  # frames that are not images: found before training is paid for
        for item in boto3.client("s3").list_objects_v2(Bucket="od-data", Prefix="frames/")["Contents"]:
            boto3.client("s3").put_object(Bucket="od-data", Key=item["Key"], Body=b"not a jpeg")
    if step == "CreateTrainingJob":
        rehearsal.jobs.fail["TrainingJob"] = "AlgorithmError: out of memory"
    if step == "ConvertModel":
        rehearsal.jobs.truncate_artifact = True
    if step == "PublishModelComponent":  # an artifact already published with other bytes is never overwritten
        key = "components/com.example.ObjectDetection.Model/1.0.0/model.zip"
        boto3.client("s3").put_object(Bucket="od-artifacts", Key=key, Body=b"other bytes")
    if step == "DeployToThingGroup":
        return execution_input(**{**given, "deploy": "no-such-group"})
    return execution_input(**given)


@pytest.mark.parametrize("step", TASK_STATES)
def test_every_task_failure_is_caught_notified_and_fails_with_its_cause(rehearsal, step):
    run = rehearsal.run(_break(rehearsal, step))
    assert run.status == "FAILED"
    assert run.entered[-3:] == [step, "Notify", "Failed"]
    (notified,) = rehearsal.notifications()
    assert run.described["error"] == "PipelineFailed"
    assert run.described["cause"] == f"{notified['Error']}: {notified['Cause']}"


def test_a_missing_field_is_states_runtime_which_no_catch_sees(rehearsal, synthesized):
    """A valid Describe* response without LabelingJobOutput: the ResultSelector path is missing. No Catch handles
    States.Runtime; the execution fails without passing Notify, and the status-change rule is what tells the
    operator."""
    rehearsal.jobs.omit.add("LabelingJobOutput")
    run = rehearsal.run(execution_input(labeling_manifest=_labeling_manifest(), preparation=PREPARATION))
    assert run.status == "FAILED" and run.described["error"] == "States.Runtime", run.described
    assert "Notify" not in run.entered and rehearsal.notifications() == []
    event = {  # the status-change event Step Functions emits for this execution (EventBridge's envelope)
        "version": "0",
        "id": "1",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [run.described["executionArn"]],
        "detail": {k: run.described[k] for k in ("executionArn", "stateMachineArn", "status", "error", "cause")},
        "ingestion-time": 0.0,  # EventBridge stamps it on arrival (moto's put_events does the same)
    }
    (rule,) = rehearsal.deployment.resources("AWS::Events::Rule").values()
    pattern = rehearsal.deployment.resolve(rule["Properties"]["EventPattern"])
    assert EventPattern.load(json.dumps(pattern)).matches_event(event), (pattern, event)  # EventBridge's matcher (moto)
    (target,) = rehearsal.deployment.resolve(rule["Properties"]["Targets"])
    assert target["Arn"].endswith(":od-notifications")
    transformer, message = target["InputTransformer"], target["InputTransformer"]["InputTemplate"]
    for name, path in transformer["InputPathsMap"].items():  # EventBridge inserts a JSON value, strings quoted
        value = event
        for part in path.removeprefix("$.").split("."):
            value = value[part]
        message = message.replace(f"<{name}>", json.dumps(value))
    message = json.loads(message)
    assert message == {
        "execution": run.described["executionArn"],
        "status": "FAILED",
        "error": "States.Runtime",
        "cause": run.described["cause"],
    }


@pytest.fixture(scope="module")
def generated_videos(tmp_path_factory):
    from odctl.synth_video import SynthSpec, write_video

    folder = tmp_path_factory.mktemp("videos")
    made = [
        write_video(SynthSpec(n, ("blue box", "yellow box"), frames=f, width=320, height=180), folder)[0]
        for n, f in (("blue_box_1", 30), ("yellow_box_2", 20))
    ]
    corrupt = folder / "broken_cam_3.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    return [*made, corrupt]


def test_ingestion_from_a_prefix_of_videos_to_one_labeling_manifest(rehearsal, generated_videos):
    """The ingestion definition as synthesized, its Distributed Map run by moto's interpreter (ItemReader over
    ListObjectsV2, ResultWriter to S3), ExtractVideo and MergeManifest as their real handlers."""
    from odctl.pipeline_cli import ingestion_input

    s3 = boto3.client("s3")
    for path in generated_videos:
        s3.upload_file(str(path), "od-data", f"videos/{path.name}")
    run_input = ingestion_input("s3://od-data/videos/", "od-data", every=5, metadata_from_name="{color}_{object}_{n}")
    run = rehearsal.run(run_input, machine="Ingestion")
    assert run.status == "SUCCEEDED", (run.described.get("cause"), run.entered)
    summary = run.output["summary"]["value"]
    assert summary["manifest"] == f"s3://od-data/ingest/{run_input['runName']}/labeling.manifest"
    assert summary["videos"] == 2 and summary["lines"] == 10
    (failed,) = summary["failed"]
    assert failed["video"] == "s3://od-data/videos/broken_cam_3.mp4" and "cannot be opened" in failed["cause"]
    key = summary["manifest"].split("/", 3)[3]
    lines = s3.get_object(Bucket="od-data", Key=key)["Body"].read().decode().splitlines()
    assert json.loads(lines[0])["source-ref"] == "s3://od-data/frames/blue_box_1/blue_box_1_000000.jpg"
    (notified,) = rehearsal.notifications()  # some videos failed: said, and the run succeeds
    assert notified["failed"] == summary["failed"]
    from odctl.pipeline_cli import status

    progress = status(run.described["executionArn"])["videos"]  # odctl pipeline status: the map's items
    assert progress["total"] == 3 and progress["failed"] == 1 and progress["succeeded"] == 2
    _ran_from_bundles(rehearsal, "ingestion")
