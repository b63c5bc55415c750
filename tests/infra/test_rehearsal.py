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

from infra.config import cdk_json_context
from odctl.pipeline_cli import execution_input
from odshared.core import storage
from odshared.data.input_manifest import build_input_manifest
from odshared.model.registry import read_deployed
from tests.conftest import SEED
from tests.lambdas.greengrass_service import GreengrassService
from tests.rehearsal import asl_semantics, sagemaker_task
from tests.rehearsal.canary_device import CanaryDevice, wait_for
from tests.rehearsal.device_health import Trouble
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
        "ScoreModel",
        "PublishModelComponent",
        "RegisterModel",
    ),
    "promotion": ("PlanPromotion", "DeployToThingGroup", "CheckCanary", "RecordPromotion"),
    "ended promotion": ("EndPromotion",),
    # the ledger's: invoked from its bundle on the events S3 sends through EventBridge (test_fleet_data)
    "ledger": ("RegisterPartitions",),
}
GATE_PASSED = {"mapFloor": 0.0}  # the stand-in training's seeded weights score about 0 mAP: a floor they pass
CANARY = {"canaryThingGroup": "canaries", "soakMinutes": 0.5}
EVALUATION = 8  # validation frames the ResNet-50 is scored on (the stack's default, 200, takes minutes here)


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
    iot = boto3.client("iot")
    for group in ("cameras", "canaries"):
        iot.create_thing_group(thingGroupName=group)
    iot.create_thing(thingName="camera-07")  # the thing the canary's health messages come from
    iot.add_thing_to_thing_group(thingGroupName="canaries", thingName="camera-07")
    stage.greengrass, stage.jobs = greengrass, jobs
    yield stage
    stage.close()
    greengrass.close()
    requests.post(f"{aws}/moto-api/config", timeout=10, json={"stepfunctions": {"execute_state_machine": False}})


@pytest.fixture(scope="module")
def canary_models(scene, tmp_path_factory):
    """The model packages a canary camera runs: the trained model ("good"), and a worse one ("worse": the same
    training converted for real with a 0.99 score floor)."""
    from odshared.model.convert import convert

    root = tmp_path_factory.mktemp("canary")
    convert(str(scene["root"] / "model.tar.gz"), str(root / "worse"), ["blue box", "yellow box"], threshold=0.99)
    return {"good": scene["package"], "worse": root / "worse", "video": scene["video"], "root": root}


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


def _promotion_settings(rehearsal, **changes) -> None:
    """cdk.json edge-od:promotion changed and the stack redeployed: each function that reads it."""
    promotion = {**cdk_json_context()["edge-od:promotion"], **changes}
    for function in ("RegisterModel", "PlanPromotion", "CheckCanary"):
        rehearsal.configure(function, PROMOTION=json.dumps(promotion))


def _deployment_of(rehearsal, run, result: str) -> dict:
    return rehearsal.greengrass.deployments[run.output[result]["value"]["deploymentId"]]


def test_labeled_manifests_to_a_scored_registered_and_promoted_model(rehearsal):
    """Gate passed, auto mode: the version is registered Approved with its scores, and its approval event starts
    the promotion, which deploys it to the run's group and records it there."""
    _promotion_settings(rehearsal, **GATE_PASSED)
    run = rehearsal.run(
        execution_input(_labeled_manifests(), preparation=PREPARATION, deploy="cameras", evaluation_images=EVALUATION)
    )
    assert run.status == "SUCCEEDED", run.failed_state_event()
    assert run.entered == [
        "ValidateInput",
        "LabelingRequested?",
        "UseGivenManifests",
        "PrepareTrainingData",
        "PrepareCalibration",
        "CreateTrainingJob",
        "ConvertModel",
        "ScoreModel",
        "PublishModelComponent",
        "RegisterModel",
        "GatePassed?",
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
    # the frames it is scored on: the run's evaluationImages of the validation frames, spread evenly
    assert calibration["evaluation"]["images"] == min(EVALUATION, _prepared_lines(run, "validation_manifest"))
    converted = run.output["converted"]["value"]
    assert {"model.onnx", "model.int8.onnx"} <= set(converted["files"])
    model_json = json.loads(storage.read_text(converted["files"]["model.json"]["uri"]))
    assert model_json["files"]["onnx_int8"] == "model.int8.onnx"
    assert model_json["int8"]["calibration"] == {k: calibration[k] for k in ("source", "images", "available")}
    scored = run.output["scored"]["value"]
    assert scored["images"] == calibration["evaluation"]["images"] and scored["fp32Map"] is not None
    assert scored["int8Map"] is not None and scored["mAP"] == (
        scored["int8Map"] if scored["precision"] == "int8" else scored["fp32Map"]
    )
    assert json.loads(storage.read_text(scored["scoresUri"]))["mAP"] == scored["mAP"]
    # the score the devices' precision made, in the package: a device names a model under its floor too weak
    assert model_json["validation"] == {"mAP": round(scored["mAP"], 4), "source": "scoring"}
    published = run.output["component"]["value"]
    with zipfile.ZipFile(io.BytesIO(storage.read_bytes(published["artifact"]))) as archive:
        assert "model/model.int8.onnx" in archive.namelist()  # the model component ships both precisions
        assert json.loads(archive.read("model/model.json"))["validation"] == model_json["validation"]
    assert (published["componentName"], published["componentVersion"]) in rehearsal.greengrass.recipes
    registered = run.output["registered"]["value"]
    assert registered["outcome"] == "approved" and registered["version"] == 1
    sagemaker = boto3.client("sagemaker")
    described = sagemaker.describe_model_package(ModelPackageName=registered["modelPackageArn"])
    assert described["ModelApprovalStatus"] == "Approved"
    metadata = described["CustomerMetadataProperties"]
    assert metadata["componentVersion"] == published["componentVersion"] and metadata["thingGroup"] == "cameras"
    assert float(metadata["mAP"]) == pytest.approx(scored["mAP"], abs=1e-6)
    assert metadata["classes"] == "blue box / yellow box" and metadata["manifest1"].endswith("validation.manifest")
    container = described["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == run.output["training"]["modelArtifact"]
    assert container["Image"] == request["AlgorithmSpecification"]["TrainingImage"]
    assert rehearsal.greengrass.deployments == {} and rehearsal.notifications() == []  # nothing deployed yet

    event = rehearsal.approval_event(registered["modelPackageArn"])
    promotion = rehearsal.run(event, machine="Promotion")
    assert promotion.status == "SUCCEEDED", promotion.failed_state_event()
    assert promotion.entered == [
        "PlanPromotion",
        "Proceed?",
        "NoCanary",  # no canary group configured: straight to the fleet, said in the plan's route
        "DeployToFleet",
        "RecordPromotion",
        "NotifyPromoted",
        "Promoted",
    ]
    deployment = _deployment_of(rehearsal, promotion, "fleet")
    assert deployment["targetArn"].endswith(":thinggroup/cameras")
    components = deployment["components"]
    assert set(components) == {
        "com.example.ObjectDetection",
        "com.example.ObjectDetection.Model",
        "aws.greengrass.Nucleus",  # the disk spooler, from the stack's edge-od:spooler (a group with no nucleus yet)
        "aws.greengrass.DiskSpooler",
        "aws.greengrass.LogManager",  # the inference component's log to CloudWatch Logs (edge-od:logs)
    }
    assert components["com.example.ObjectDetection.Model"]["componentVersion"] == published["componentVersion"]
    spooler = json.loads(components["aws.greengrass.Nucleus"]["configurationUpdate"]["merge"])["mqtt"]["spooler"]
    assert spooler["storageType"] == "Disk" and spooler["pluginName"] == "aws.greengrass.DiskSpooler"
    record = read_deployed("od-artifacts", "cameras")
    assert record["version"] == 1 and record["scores"]["mAP"] == pytest.approx(scored["mAP"], abs=1e-6)
    (notice,) = rehearsal.notifications()
    assert notice["version"] == 1 and "cameras" in notice["reason"]
    # SageMaker may send a state change twice: the second execution finds the version claimed and does nothing
    again = rehearsal.run(event, machine="Promotion")
    assert again.status == "SUCCEEDED" and again.entered == ["PlanPromotion", "Proceed?", "NothingToDo"]
    assert len(rehearsal.greengrass.deployments) == 1
    _ran_from_bundles(rehearsal, "pipeline")


def test_labeling_job_then_a_model_the_gate_rejects(rehearsal):
    """The stand-in training's seeded weights, converted and scored for real, fall below the stack's mAP floor:
    registered Rejected with its scores, the topic says why, nothing is deployed."""
    manifest = _labeling_manifest()
    run = rehearsal.run(
        execution_input(labeling_manifest=manifest, preparation=PREPARATION, evaluation_images=EVALUATION)
    )
    assert run.status == "SUCCEEDED", run.failed_state_event()
    assert run.entered[:5] == [
        "ValidateInput",
        "LabelingRequested?",
        "CreateLabelingJob",
        "UseLabelingOutput",
        "PrepareTrainingData",
    ]
    assert run.entered[-4:] == ["RegisterModel", "GatePassed?", "NotifyRejected", "Done"]
    assert [op for op, _ in rehearsal.jobs.requests] == ["CreateLabelingJob", "CreateTrainingJob"]
    assert run.output["labeled"]["manifests"] == [
        "s3://od-data/labels/" + run.output["config"]["value"]["labelingJobName"] + "/manifests/output/output.manifest"
    ]
    registered = run.output["registered"]["value"]
    floor = cdk_json_context()["edge-od:promotion"]["mapFloor"]
    assert registered["outcome"] == "rejected" and registered["mAP"] < floor
    described = boto3.client("sagemaker").describe_model_package(ModelPackageName=registered["modelPackageArn"])
    assert described["ModelApprovalStatus"] == "Rejected"
    (notice,) = rehearsal.notifications()
    assert (
        notice["outcome"] == "rejected"
        and f"mAP {registered['mAP']:.3f} is below the floor {floor:g}" in notice["reason"]
    )
    assert rehearsal.greengrass.deployments == {}


def _component(registered: dict) -> tuple[str, str]:
    """(model component, version) the registry records for a registered version."""
    described = boto3.client("sagemaker").describe_model_package(ModelPackageName=registered["modelPackageArn"])
    metadata = described["CustomerMetadataProperties"]
    return metadata["componentName"], metadata["componentVersion"]


def _canary_device(
    rehearsal, canary_models, component: str, package_for, thing: str = "camera-07", trouble_for=None
) -> CanaryDevice:
    """camera-07 as the stand-in runs it: its health comes from the real device loop running the package of the
    model component version the stand-in says it runs (misbehaving as ``trouble_for`` says)."""
    root = canary_models["root"]
    video = canary_models["video"]
    return CanaryDevice(rehearsal.greengrass, thing, component, package_for, video, root, trouble_for=trouble_for)


def test_manual_approval_then_a_healthy_canary_then_the_fleet(rehearsal, canary_models):
    _promotion_settings(rehearsal, **GATE_PASSED, **CANARY, approvalMode="manual")
    run = rehearsal.run(
        execution_input(_labeled_manifests(), preparation=PREPARATION, deploy="cameras", evaluation_images=EVALUATION)
    )
    assert run.status == "SUCCEEDED", run.failed_state_event()
    assert run.entered[-3:] == ["GatePassed?", "NotifyAwaitingApproval", "Done"]
    registered = run.output["registered"]["value"]
    assert registered["outcome"] == "pending"
    (notice,) = rehearsal.notifications()
    assert notice["outcome"] == "pending" and notice["version"] == registered["version"]
    from odctl.model_versions import approve

    sagemaker = boto3.client("sagemaker")
    group = rehearsal.model_package_group
    approve(group, registered["version"], sagemaker)  # odctl model approve VERSION
    component, version = _component(registered)
    with _canary_device(rehearsal, canary_models, component, lambda _: canary_models["good"]) as device:
        promotion = rehearsal.run(rehearsal.approval_event(registered["modelPackageArn"]), machine="Promotion")
    assert promotion.status == "SUCCEEDED", promotion.failed_state_event()
    assert promotion.entered[:6] == [
        "PlanPromotion",
        "Proceed?",
        "DeployToCanary",
        "Soak",
        "CheckCanary",
        "CanaryHealthy?",
    ]
    assert promotion.entered[-4:] == ["DeployToFleet", "RecordPromotion", "NotifyPromoted", "Promoted"]
    check = promotion.output["check"]["value"]
    assert check["healthy"], check
    # judged on the reports camera-07 sent running the new version, which the stand-in applied to it
    assert device.ran == [version]
    assert 0 < check["devices"]["camera-07"]["soak"]["HealthReports"] <= device.reported[version]
    assert rehearsal.greengrass.running("camera-07", component) == version
    assert _deployment_of(rehearsal, promotion, "canary")["targetArn"].endswith(":thinggroup/canaries")
    assert _deployment_of(rehearsal, promotion, "fleet")["targetArn"].endswith(":thinggroup/cameras")
    assert read_deployed("od-artifacts", "canaries")["version"] == registered["version"]
    from odctl.model_versions import list_models

    (row,) = list_models(group, "od-artifacts", sagemaker)  # odctl model list
    assert row["status"] == "Approved" and row["deployedTo"] == ["cameras", "canaries"]
    _ran_from_bundles(rehearsal, "promotion")


def _registered_version(rehearsal) -> dict:
    """The pipeline run from the labeled manifests to a registered (approved) version."""
    run = rehearsal.run(
        execution_input(_labeled_manifests(), preparation=PREPARATION, deploy="cameras", evaluation_images=EVALUATION)
    )
    assert run.status == "SUCCEEDED", run.failed_state_event()
    return run.output["registered"]["value"]


def test_an_unhealthy_canary_is_rolled_back_and_the_version_rejected(rehearsal, canary_models):
    """A first version soaks well on the canary camera and reaches the fleet; a second, running a worse model on
    the camera (the same training converted with a 0.99 score floor), sees far fewer boxes than the first did: the
    canary group gets its previous deployment back, the camera the first version, and the fleet keeps the first."""
    _promotion_settings(rehearsal, **GATE_PASSED, **CANARY)
    first = _registered_version(rehearsal)
    component, first_version = _component(first)

    def package_for(version: str):
        return canary_models["good"] if version == first_version else canary_models["worse"]

    with _canary_device(rehearsal, canary_models, component, package_for) as device:
        promoted = rehearsal.run(rehearsal.approval_event(first["modelPackageArn"]), machine="Promotion")
        assert promoted.status == "SUCCEEDED" and promoted.entered[-1] == "Promoted", promoted.output
        before = _deployment_of(rehearsal, promoted, "canary")
        registered = _registered_version(rehearsal)
        _, version = _component(registered)
        assert version != first_version
        promotion = rehearsal.run(rehearsal.approval_event(registered["modelPackageArn"]), machine="Promotion")
        # the stand-in applies the rollback asynchronously; the camera sees it at its next poll
        wait_for(lambda: device.ran[-1:] == [first_version] and len(device.ran) == 3)
    assert promotion.status == "SUCCEEDED", promotion.failed_state_event()
    assert promotion.entered[-5:] == [
        "CanaryHealthy?",
        "RollBackCanary",
        "RejectVersion",
        "NotifyRolledBack",
        "RolledBack",
    ]
    check = promotion.output["check"]["value"]
    assert not check["healthy"] and "DetectionsPerFrame" in check["reason"] and "camera-07" in check["reason"]
    assert device.ran == [first_version, version, first_version]  # the stand-in applied the canary, then the rollback
    restored = _deployment_of(rehearsal, promotion, "rollback")
    assert restored["components"] == before["components"]
    described = boto3.client("sagemaker").describe_model_package(ModelPackageName=registered["modelPackageArn"])
    assert described["ModelApprovalStatus"] == "Rejected" and "DetectionsPerFrame" in described["ApprovalDescription"]
    assert described["CustomerMetadataProperties"]["componentVersion"]  # the update kept the metadata
    assert read_deployed("od-artifacts", "cameras")["version"] == first["version"]  # the fleet never got it
    notices = rehearsal.notifications()
    assert notices[-1]["reason"] == check["reason"]
    _override_then_roll_back_twice(rehearsal, canary_models, registered, first)


def _override_then_roll_back_twice(rehearsal, canary_models, rejected: dict, first: dict) -> None:
    """The operator ships the canary-rejected version anyway (``odctl model approve --override``): its promotion
    runs again, canary included (the camera runs it well this time), and reaches the fleet. Then ``odctl model
    rollback --group cameras`` twice: the first puts the fleet back on the first version exactly, the second
    changes nothing."""
    from odctl.model_versions import approve, rollback

    sagemaker = boto3.client("sagemaker")
    component, first_version = _component(first)
    _, version = _component(rejected)
    approve(rehearsal.model_package_group, rejected["version"], sagemaker, override=True, bucket="od-artifacts")
    with _canary_device(rehearsal, canary_models, component, lambda _: canary_models["good"]) as device:
        again = rehearsal.run(rehearsal.approval_event(rejected["modelPackageArn"]), machine="Promotion")
    assert again.status == "SUCCEEDED" and again.entered[-1] == "Promoted", again.failed_state_event()
    assert "DeployToCanary" in again.entered and device.ran == [first_version, version]
    assert read_deployed("od-artifacts", "cameras")["version"] == rejected["version"]
    clients = (sagemaker, rehearsal.greengrass.client(), boto3.client("lambda"))
    done = rollback("cameras", "od-artifacts", "DeployToThingGroup", *clients, "camera-01 hangs")
    assert done["changed"] and (done["version"], done["from"]) == (first["version"], rejected["version"])
    fleet = rehearsal.greengrass.deployments[done["deploymentId"]]
    assert fleet["targetArn"].endswith(":thinggroup/cameras")
    assert fleet["components"][component]["componentVersion"] == first_version
    made = len(rehearsal.greengrass.deployments)
    twice = rollback("cameras", "od-artifacts", "DeployToThingGroup", *clients, "again")
    assert not twice["changed"] and len(rehearsal.greengrass.deployments) == made
    described = sagemaker.describe_model_package(ModelPackageName=rejected["modelPackageArn"])
    assert described["ModelApprovalStatus"] == "Rejected"
    assert described["ApprovalDescription"] == "rolled back from cameras: camera-01 hangs"


# what the second version does on the canary camera, and what the canary's reason then says
TROUBLES = {
    "slow": (Trouble(slow_inference=0.25), "(minFpsRatio)"),  # 0.25 s more per frame: under 4 FPS, not 10
    # the link refuses everything for 1 s in front of a 3-message buffer: detections and health given up
    "undelivered": (Trouble(outage=1.0, buffer_size=3), "messages never delivered (DeliveryFailures + CountsLost"),
    "offline": (None, "camera-07: never applied the canary deployment"),  # and sends nothing at all
}


def test_a_slow_an_undelivering_and_an_offline_canary_each_reject_the_version(rehearsal, canary_models):
    """The first version soaks on camera-07 through a link that refuses its first publish (retried, delivered: a
    blip is no harm even at maxPublishErrors 0) and reaches the fleet. The second is then approved three times
    (``odctl model approve --override`` after each rejection): camera-07 runs it slower, then loses messages to a
    link that stays down past its buffer, then is offline and never applies it. Each time the canary says why, the
    canary group gets its previous deployment back, the version is Rejected and the fleet gets nothing new."""
    from odctl.model_versions import approve

    _promotion_settings(rehearsal, **GATE_PASSED, **CANARY)
    sagemaker, greengrass = boto3.client("sagemaker"), rehearsal.greengrass
    first = _registered_version(rehearsal)
    component, first_version = _component(first)
    trouble = {first_version: Trouble(refuse_first=1)}
    with _canary_device(
        rehearsal, canary_models, component, lambda _: canary_models["good"], "camera-07", trouble.get
    ) as device:
        promoted = rehearsal.run(rehearsal.approval_event(first["modelPackageArn"]), machine="Promotion")
        assert promoted.status == "SUCCEEDED" and promoted.entered[-1] == "Promoted", promoted.output
        blip = device.messages(first_version)
        assert blip[-1]["publish_retries"] >= 1 and not any(m.get("delivery_failures") for m in blip)
        before = _deployment_of(rehearsal, promoted, "canary")
        second = _registered_version(rehearsal)  # camera-07 reports as the first version meanwhile
        _, version = _component(second)
        fleet = {i for i, d in greengrass.deployments.items() if d["targetArn"].endswith(":thinggroup/cameras")}
        for scenario, (given, reason) in TROUBLES.items():
            if scenario != "slow":
                approve(
                    rehearsal.model_package_group, second["version"], sagemaker, override=True, bucket="od-artifacts"
                )
            trouble[version] = given
            greengrass.set_offline("camera-07", scenario == "offline")
            promotion = rehearsal.run(rehearsal.approval_event(second["modelPackageArn"]), machine="Promotion")
            assert promotion.status == "SUCCEEDED", (scenario, promotion.failed_state_event())
            assert promotion.entered[-4:] == ["RollBackCanary", "RejectVersion", "NotifyRolledBack", "RolledBack"]
            check = promotion.output["check"]["value"]
            assert not check["healthy"] and reason in check["reason"], (scenario, check)
            assert _deployment_of(rehearsal, promotion, "rollback")["components"] == before["components"]
            now = {i for i, d in greengrass.deployments.items() if d["targetArn"].endswith(":thinggroup/cameras")}
            assert now == fleet and read_deployed("od-artifacts", "cameras")["version"] == first["version"]
            described = sagemaker.describe_model_package(ModelPackageName=second["modelPackageArn"])
            assert described["ModelApprovalStatus"] == "Rejected" and reason in described["ApprovalDescription"]
            assert rehearsal.notifications()[-1]["reason"] == check["reason"]
            if scenario != "offline":  # back on the first version before the next try
                wait_for(lambda: device.ran[-1:] == [first_version])
        assert device.ran == [first_version, version, first_version, version, first_version]  # offline: not again
        greengrass.set_offline("camera-07", False)
    assert greengrass.running("camera-07", component) == first_version


def test_a_model_that_dies_on_start_never_reaches_the_fleet(rehearsal, canary_models):
    """The canary camera applies the new version and never sends a health report as it (the model dies on
    start): the canary is unhealthy on that alone, and the fleet group gets no deployment."""
    _promotion_settings(rehearsal, **GATE_PASSED, **CANARY)
    registered = _registered_version(rehearsal)
    component, version = _component(registered)
    with _canary_device(rehearsal, canary_models, component, lambda _: None) as device:
        promotion = rehearsal.run(rehearsal.approval_event(registered["modelPackageArn"]), machine="Promotion")
    assert promotion.status == "SUCCEEDED", promotion.failed_state_event()
    assert promotion.entered[-4:] == ["RollBackCanary", "RejectVersion", "NotifyRolledBack", "RolledBack"]
    assert device.ran[:1] == [version] and device.reported[version] == 0
    check = promotion.output["check"]["value"]
    assert not check["healthy"] and "camera-07: no health report as model" in check["reason"], check
    fleet = [d for d in rehearsal.greengrass.deployments.values() if d["targetArn"].endswith(":thinggroup/cameras")]
    assert fleet == [] and read_deployed("od-artifacts", "cameras") is None
    described = boto3.client("sagemaker").describe_model_package(ModelPackageName=registered["modelPackageArn"])
    assert described["ModelApprovalStatus"] == "Rejected"
    assert rehearsal.notifications()[-1]["reason"] == check["reason"]


def test_a_canary_device_still_on_the_fleet_version_fails_the_canary(rehearsal, canary_models):
    """camera-07 is in the fleet group too: the fleet's deployment pins the first version, the canary's the second,
    and the device refuses the conflict and keeps the first. Its healthy reports of the first version are no
    evidence about the second: the canary fails on sight, naming the device, both groups and what to do, and the
    fleet keeps the first version. ``odctl model approve`` warns the same before approving it again."""
    _promotion_settings(rehearsal, **GATE_PASSED, **CANARY)
    first = _registered_version(rehearsal)
    component, first_version = _component(first)
    with _canary_device(rehearsal, canary_models, component, lambda _: canary_models["good"]) as device:
        promoted = rehearsal.run(rehearsal.approval_event(first["modelPackageArn"]), machine="Promotion")
        assert promoted.status == "SUCCEEDED" and promoted.entered[-1] == "Promoted", promoted.output
        boto3.client("iot").add_thing_to_thing_group(thingGroupName="cameras", thingName="camera-07")
        registered = _registered_version(rehearsal)
        _, version = _component(registered)
        promotion = rehearsal.run(rehearsal.approval_event(registered["modelPackageArn"]), machine="Promotion")
    assert promotion.status == "SUCCEEDED", promotion.failed_state_event()
    assert promotion.entered[-4:] == ["RollBackCanary", "RejectVersion", "NotifyRolledBack", "RolledBack"]
    assert version not in device.ran and rehearsal.greengrass.running("camera-07", component) == first_version
    check = promotion.output["check"]["value"]
    assert not check["healthy"], check
    assert check["reason"].startswith("camera-07 in both the canary group canaries and the fleet group cameras")
    assert read_deployed("od-artifacts", "cameras")["version"] == first["version"]
    from odctl.model_versions import approve

    sagemaker, iot = boto3.client("sagemaker"), boto3.client("iot")
    group = rehearsal.model_package_group
    again = approve(group, registered["version"], sagemaker, True, "od-artifacts", iot=iot, canary_group="canaries")
    assert again["warning"] == f"the canary will fail: {check['reason']}"
    fleet = [d for d in rehearsal.greengrass.deployments.values() if d["targetArn"].endswith(":thinggroup/cameras")]
    assert all(d["components"][component]["componentVersion"] == first_version for d in fleet)


def test_two_approvals_close_together_then_the_first_stopped_mid_soak(rehearsal, canary_models):
    """Two versions approved a moment apart: the second waits for the canary group while the first soaks. An
    operator stops the first mid-soak: the stack's rule on the execution's end runs EndPromotion, which gives the
    canary group its deployment from before (none: this is its first ever), Rejects the first version and frees the
    group at once, so the second goes through the canary to the fleet without waiting for the lock to expire."""
    _promotion_settings(rehearsal, **GATE_PASSED, **CANARY)
    first, second = _registered_version(rehearsal), _registered_version(rehearsal)
    component, first_version = _component(first)
    _, second_version = _component(second)
    stepfunctions = boto3.client("stepfunctions")
    with _canary_device(rehearsal, canary_models, component, lambda _: canary_models["good"]) as device:
        one = rehearsal.start(rehearsal.approval_event(first["modelPackageArn"]), machine="Promotion")
        wait_for(lambda: "Soak" in rehearsal.entered(one), timeout=60)
        two = rehearsal.start(rehearsal.approval_event(second["modelPackageArn"]), machine="Promotion")
        wait_for(lambda: "WaitForGroup" in rehearsal.entered(two), timeout=60)
        wait_for(lambda: device.ran == [first_version], timeout=60)
        stepfunctions.stop_execution(executionArn=one, cause="operator: the wrong camera group")
        assert rehearsal.wait(one).status == "ABORTED"
        event, function = rehearsal.status_change_event(one)
        response = boto3.client("lambda").invoke(FunctionName=function, Payload=json.dumps(event).encode())
        ended = json.loads(response["Payload"].read())
        assert ended["restored"] and ended["rejected"] and ended["lock"], ended
        promotion = rehearsal.wait(two)
    assert promotion.status == "SUCCEEDED", promotion.failed_state_event()
    assert promotion.entered.count("WaitForGroup") >= 1 and promotion.entered[-1] == "Promoted"
    restored = rehearsal.greengrass.deployments[ended["restored"]]
    assert restored["targetArn"].endswith(":thinggroup/canaries") and restored["components"] == {}
    assert device.ran == [first_version, second_version]  # back to nothing in between, then the second
    sagemaker = boto3.client("sagemaker")
    described = sagemaker.describe_model_package(ModelPackageName=first["modelPackageArn"])
    assert described["ModelApprovalStatus"] == "Rejected" and "ABORTED" in described["ApprovalDescription"]
    assert read_deployed("od-artifacts", "cameras")["version"] == second["version"]
    assert "ABORTED" in ended["why"] and ended["status"] == "ABORTED"
    _ran_from_bundles(rehearsal, "ended promotion")


def _break(rehearsal, step: str) -> dict:
    """Make one step fail the way it fails on AWS; returns the execution input."""
    given = {"manifests": _labeled_manifests(), "preparation": PREPARATION, "deploy": "cameras"}
    given["evaluation_images"] = EVALUATION
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
    if step == "ScoreModel":  # a setting the stack lost: the function says which, and the run fails there
        rehearsal.configure("ScoreModel", INT8_MAX_MAP_DROP="")
    if step == "RegisterModel":  # the model package group it names is not there (deleted by hand): SageMaker refuses
        rehearsal.configure("RegisterModel", MODEL_PACKAGE_GROUP="deleted-by-hand")
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
    matched = [  # EventBridge's own matcher (moto); EndPromotion's rule may take it too, and runs a function
        rule
        for rule in rehearsal.deployment.resources("AWS::Events::Rule").values()
        if "EventPattern" in rule["Properties"]
        and EventPattern.load(
            json.dumps(rehearsal.deployment.resolve(rule["Properties"]["EventPattern"]))
        ).matches_event(event)
    ]
    (target,) = [
        t
        for rule in matched
        for t in rehearsal.deployment.resolve(rule["Properties"]["Targets"])
        if t["Arn"].endswith(":od-notifications")
    ]
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
