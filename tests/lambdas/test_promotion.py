"""The promotion gate's parts on real models: scores from the real conversion of a trained model and of a worse
conversion of the same training, the gate against a deployment record, the registry request against SageMaker's
model (patterns included), the canary verdict on a real device's health through CloudWatch (moto)."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace

import boto3
import botocore.session
import numpy as np
import pytest
import regex

from odedge.model import ModelPackage
from odedge.runtimes import create_runtime
from odshared.core.settings import CanarySettings
from odshared.model.calibration import build_evaluation_set
from odshared.model.convert import convert
from odshared.model.package import update_manifest
from odshared.model.registry import (
    Candidate,
    GateSettings,
    gate,
    metadata_value,
    model_package_request,
    read_deployed,
    write_deployed,
)
from odshared.model.scoring import EvaluationSet, decide_precision, final_metric, score_package
from tests.conftest import CLASSES

pytestmark = pytest.mark.integration
SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")
GATE = GateSettings("auto", map_floor=0.2, max_map_drop=0.02)
BOUNDS = CanarySettings(  # cdk.json's edge-od:promotion canary
    min_fps_ratio=0.8,
    max_publish_errors=0,
    min_source_connected=0.95,
    min_detections_ratio=0.5,
    max_detections_ratio=2.0,
)


@pytest.fixture(scope="module")
def evaluation(scene) -> EvaluationSet:
    """The scene's validation frames as the calibration step prepares them for the scoring step."""
    built = build_evaluation_set(str(scene["root"] / "prepared/validation.manifest"), "bb", 300, 200)
    return EvaluationSet.from_bytes(built.to_bytes())  # what the scoring Lambda reads back


@pytest.fixture(scope="module")
def worse_package(scene, tmp_path_factory):
    """The same training converted for real with a 0.99 score floor: most true boxes are never reported."""
    out = tmp_path_factory.mktemp("worse") / "package"
    convert(str(scene["root"] / "model.tar.gz"), str(out), list(CLASSES), threshold=0.99)
    return out


def test_the_evaluation_set_survives_its_round_trip(scene, evaluation):
    lines = (scene["root"] / "prepared/validation.manifest").read_text().splitlines()
    assert len(evaluation) == len(lines) and evaluation.frames.dtype == np.uint8
    assert evaluation.frames.shape[1:] == (3, 300, 300)
    assert all(len(b) == len(names) for b, names in zip(evaluation.boxes, evaluation.labels, strict=True))
    assert {n for names in evaluation.labels for n in names} <= set(CLASSES)


def test_a_worse_conversion_scores_lower_and_the_gate_rejects_it_against_the_deployed(scene, evaluation, worse_package):
    good = score_package(ModelPackage.load(scene["package_int8"]), evaluation, 0.61, int8_max_drop=1.0)
    worse = score_package(ModelPackage.load(worse_package), evaluation, 0.61, int8_max_drop=1.0)
    assert good.int8_map is not None and worse.int8_map is None  # the worse one has no INT8 model
    assert good.map > GATE.map_floor and worse.map < good.map - GATE.max_map_drop, (good, worse)
    deployed = {"version": 4, "scores": {"mAP": good.map}}
    decision = gate(worse.to_dict(), deployed, GATE)
    assert not decision.passed
    assert f"mAP {worse.map:.3f}" in decision.reason and f"{good.map:.3f}" in decision.reason
    assert "version 4" in decision.reason
    assert gate(good.to_dict(), deployed, GATE).passed  # the same model again: within the margin
    assert gate(good.to_dict(), None, GATE).passed  # nothing deployed: the floor alone
    floor = GateSettings("auto", map_floor=0.99, max_map_drop=0.02)
    below = gate(good.to_dict(), None, floor)
    assert not below.passed and "below the floor 0.99" in below.reason


def test_int8_that_loses_too_much_is_withheld_and_the_device_says_so(scene, evaluation, tmp_path):
    package_dir = tmp_path / "package"
    shutil.copytree(scene["package_int8"], package_dir)
    scores = score_package(ModelPackage.load(package_dir), evaluation, None, int8_max_drop=-1.0)  # any loss is too much
    assert scores.precision == "fp32" and "below FP32" in scores.int8_withheld and scores.map == scores.fp32_map
    update_manifest(str(package_dir), {"int8": {"withheld": scores.int8_withheld}})  # as score_model writes it
    package = ModelPackage.load(package_dir)  # checksums still hold after the rewrite
    lines = dict(reversed(line.split()) for line in (package_dir / "SHA256SUMS").read_text().splitlines())
    import hashlib

    assert lines["model.json"] == hashlib.sha256((package_dir / "model.json").read_bytes()).hexdigest()
    runtime = create_runtime("onnx", package, precision="int8")
    assert runtime.choice.precision == "fp32" and scores.int8_withheld in runtime.choice.fallback
    assert decide_precision(0.70, 0.69, 0.02) == ("int8", "")
    assert decide_precision(0.70, None, 0.02) == ("fp32", "")


def test_the_final_metric_is_read_from_a_described_job():
    described = {"FinalMetricDataList": [{"MetricName": "train:loss", "Value": 2.0}]}
    assert final_metric(described) is None and final_metric({}) is None
    described["FinalMetricDataList"].append({"MetricName": "validation:mAP", "Value": 0.734})
    assert final_metric(described) == pytest.approx(0.734)


def _pattern_problems(shape, value, path="") -> list[str]:
    """What botocore's validator leaves to the service: string patterns and maximum lengths (Java regexes)."""
    problems = []
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            if name in value:
                problems += _pattern_problems(member, value[name], f"{path}.{name}")
    elif shape.type_name == "list":
        for i, item in enumerate(value):
            problems += _pattern_problems(shape.member, item, f"{path}[{i}]")
    elif shape.type_name == "map":
        for key, item in value.items():
            problems += _pattern_problems(shape.key, key, f"{path}<key>")
            problems += _pattern_problems(shape.value, item, f"{path}.{key}")
    elif shape.type_name == "string":
        pattern, longest = shape.metadata.get("pattern"), shape.metadata.get("max")
        if pattern and not regex.fullmatch(pattern.removesuffix("${1,128}").removesuffix("${1,256}"), value):
            problems.append(f"{path}: {value!r} does not match {pattern}")
        if longest and len(value) > longest:
            problems.append(f"{path}: longer than {longest}")
    return problems


def test_the_model_package_request_passes_sagemakers_model_and_patterns():
    from botocore.validate import ParamValidator

    scores = {"mAP": 0.71, "trainingMap": None, "fp32Map": 0.72, "int8Map": 0.71, "precision": "int8"}
    scores |= {"int8Withheld": "", "images": 40, "scoresUri": "s3://artifacts/models/od-1/scores.json"}
    candidate = Candidate(
        scores,
        {"componentName": "com.example.ObjectDetection.Model", "componentVersion": "1.0.3"},
        "s3://artifacts/training/od-1/output/model.tar.gz",
        "od-1-train",
        "arn:aws:states:us-east-1:123456789012:execution:Pipeline:od-20261203T101500",
        ["s3://data/prepared/od-1/train.manifest", "s3://data/prepared/od-1/validation.manifest"],
        ["blue box", "yellow (big) box; fragile"],
        "cameras",
    )
    reason = "mAP 0.710 >= floor 0.5; the deployed model (version 3) has mAP 0.700"
    image = "811284229777.dkr.ecr.us-east-1.amazonaws.com/object-detection:1"
    request = model_package_request("edgeobjectdetector-models", candidate, "PendingManualApproval", reason, image, "x")
    shape = SAGEMAKER.operation_model("CreateModelPackage").input_shape
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()
    assert _pattern_problems(shape, request) == []
    metadata = request["CustomerMetadataProperties"]
    assert metadata["classes"] == "blue box / yellow big box fragile" and metadata["trainingMap"] == "-"
    assert metadata["gate"].startswith("mAP 0.710 = floor 0.5")
    assert len(metadata_value("x" * 300)) == 256


def test_deployment_records_keep_one_step_of_history(tmp_path, bucket):
    assert read_deployed(bucket, "cameras") is None
    for version in (1, 2, 3):
        write_deployed(bucket, "cameras", {"version": version, "scores": {"mAP": 0.5 + version / 10}})
    record = read_deployed(bucket, "cameras")
    assert record["version"] == 3 and record["previous"]["version"] == 2 and "previous" not in record["previous"]


MODEL = "com.example.ObjectDetection.Model"
CANARIES = "arn:aws:iot:us-east-1:123456789012:thinggroup/canaries"
FLEET = "arn:aws:iot:us-east-1:123456789012:thinggroup/cameras"


@pytest.fixture(scope="module")
def health(scene, tmp_path_factory):
    """The real device loop's health messages as model 1.0.0 (before) and 1.0.1 (the canary's version)."""
    from tests.rehearsal.device_health import health_messages

    root = tmp_path_factory.mktemp("health")
    messages = {
        version: health_messages(scene["package"], scene["video"], root / f"{version}.jsonl", model_component=version)
        for version in ("1.0.0", "1.0.1")
    }
    # red before: the source never said it was connected, so every canary failed on SourceConnected
    assert all(m["source_connected"] == 1 for ms in messages.values() for m in ms)
    assert {m["model_component"] for m in messages["1.0.1"]} == {"1.0.1"}
    return messages


@pytest.fixture
def devices(aws):
    """camera-07 in the canary group, camera-01 in the fleet's; the Greengrass stand-in applying deployments 0.3 s
    after they are made."""
    from tests.lambdas.greengrass_service import GreengrassService

    iot = boto3.client("iot")
    for group in ("canaries", "cameras"):
        iot.create_thing_group(thingGroupName=group)
    for thing, group in (("camera-07", "canaries"), ("camera-01", "cameras")):
        iot.create_thing(thingName=thing)
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
    service = GreengrassService(apply_delay=0.3)
    for target in (CANARIES, FLEET):
        service.add_deployment(target, {MODEL: {"componentVersion": "1.0.0"}})
    time.sleep(0.5)
    yield service
    service.close()


def _canary(service, version: str = "1.0.1", soak: int = 20, fleet: str = ""):
    """What the canary deploy step returns (the part the check reads), for a deployment made now."""
    import datetime as dt

    from odshared.fleet.canary import CanaryRun

    made = service.add_deployment(CANARIES, {MODEL: {"componentVersion": version}})
    state = {
        "thingGroup": "canaries",
        "deploymentId": made["deploymentId"],
        "deployedAt": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "previous": {MODEL: {"componentVersion": "1.0.0"}},
        "healthIntervalSeconds": 1,
    }
    plan = {"component": {"componentName": MODEL, "componentVersion": version}, "soakSeconds": soak}
    return CanaryRun.from_state(state, {**plan, "thingGroup": fleet} if fleet else plan)


def test_the_canary_counts_only_the_new_versions_reports_from_the_switch(devices, health):
    """Old-model reports in the same minute as the switch (GetMetricData rounds StartTime down) count for nothing:
    with none of the new version the canary fails, with them all through the soak it passes."""
    import datetime as dt

    from odshared.fleet.canary import check_canary
    from tests.rehearsal.device_health import report

    iot, cloudwatch, greengrass = boto3.client("iot"), boto3.client("cloudwatch"), devices.client()
    run = _canary(devices, soak=20)
    assert check_canary(run, BOUNDS, iot, greengrass, cloudwatch)["state"] == "soaking"  # not applied yet
    time.sleep(0.5)
    switched = time.time()
    report(health["1.0.0"][:5], at=switched - 30)  # the old model, before
    for i in range(20):  # the old model keeps reporting (the device never really switched its process)
        report(health["1.0.0"][i % len(health["1.0.0"]) : i % len(health["1.0.0"]) + 1], at=switched + i)
    later = dt.datetime.fromtimestamp(switched + 21, dt.UTC)
    soaking = check_canary(
        run, BOUNDS, iot, greengrass, cloudwatch, now=dt.datetime.fromtimestamp(switched + 5, dt.UTC)
    )
    assert soaking["state"] == "soaking" and 14 <= soaking["waitSeconds"] <= 16
    silent = check_canary(run, BOUNDS, iot, greengrass, cloudwatch, now=later)
    assert silent["state"] == "unhealthy" and "camera-07: no health report as model 1.0.1" in silent["reason"]
    for i in range(21):
        report([health["1.0.1"][i % len(health["1.0.1"])]], at=switched + i)
    verdict = check_canary(run, BOUNDS, iot, greengrass, cloudwatch, now=later)
    assert verdict["state"] == "healthy", verdict["reason"]
    assert verdict["devices"]["camera-07"]["soak"]["HealthReports"] == 21
    json.dumps(verdict)  # the state's output


def test_a_device_that_goes_silent_part_way_fails(devices, health):
    import datetime as dt

    from odshared.fleet.canary import check_canary
    from tests.rehearsal.device_health import report

    run = _canary(devices, soak=20)
    time.sleep(0.5)
    switched = time.time()
    for i in range(5):  # then nothing: it hung
        report([health["1.0.1"][i]], at=switched + i)
    at = dt.datetime.fromtimestamp(switched + 21, dt.UTC)
    verdict = check_canary(run, BOUNDS, boto3.client("iot"), devices.client(), boto3.client("cloudwatch"), now=at)
    assert verdict["state"] == "unhealthy" and "5 health reports as 1.0.1, of about 21 expected" in verdict["reason"]


def test_a_canary_device_also_in_the_fleet_group_fails_its_deployment_and_the_canary(devices, health):
    """Both groups pin the model: the nucleus refuses the conflict, the device keeps 1.0.0 (whose reports, healthy
    as they are, are no evidence about 1.0.1). Knowing the fleet group, the check says so on sight: the device,
    both groups and what to do."""
    from odshared.fleet.canary import check_canary
    from tests.rehearsal.device_health import report

    boto3.client("iot").add_thing_to_thing_group(thingGroupName="cameras", thingName="camera-07")
    run = _canary(devices, soak=20)
    time.sleep(0.6)
    assert devices.running("camera-07", MODEL) == "1.0.0"
    report(health["1.0.0"])
    clients = (boto3.client("iot"), devices.client(), boto3.client("cloudwatch"))
    verdict = check_canary(run, BOUNDS, *clients)
    assert verdict["state"] == "unhealthy"
    assert "camera-07: the canary deployment FAILED on the device: Conflicts in component version" in verdict["reason"]
    on_sight = check_canary(_canary(devices, soak=20, fleet="cameras"), BOUNDS, *clients)
    assert on_sight["state"] == "unhealthy" and on_sight["waitSeconds"] == 0
    assert on_sight["reason"].startswith("camera-07 in both the canary group canaries and the fleet group cameras")
    fix = "aws iot remove-thing-from-thing-group --thing-group-name cameras --thing-name camera-07"
    assert fix in on_sight["reason"] and "odctl model approve VERSION --override" in on_sight["reason"]


def test_a_device_offline_never_applies_and_fails_after_the_soak(devices):
    import datetime as dt

    from odshared.fleet.canary import check_canary

    devices.set_offline("camera-07")
    run = _canary(devices, soak=20)
    time.sleep(0.5)
    clients = (boto3.client("iot"), devices.client(), boto3.client("cloudwatch"))
    assert check_canary(run, BOUNDS, *clients)["state"] == "soaking"
    after = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=25)
    verdict = check_canary(run, BOUNDS, *clients, now=after)
    assert (
        verdict["state"] == "unhealthy"
        and "camera-07: never applied the canary deployment (QUEUED" in verdict["reason"]
    )
    devices.set_offline("camera-07", False)  # back: it applies what it was sent meanwhile
    assert devices.running("camera-07", MODEL) == "1.0.1"


def test_the_stand_in_replaces_a_groups_deployment_and_rolls_back_a_broken_component(devices):
    greengrass = devices.client()
    devices.broken.add((MODEL, "1.0.2"))
    broken = devices.add_deployment(CANARIES, {MODEL: {"componentVersion": "1.0.2"}})
    time.sleep(0.5)
    assert devices.running("camera-07", MODEL) == "1.0.0"  # rolled back
    (effective,) = greengrass.list_effective_deployments(coreDeviceThingName="camera-07")["effectiveDeployments"]
    assert effective["deploymentId"] == broken["deploymentId"] and effective["coreDeviceExecutionStatus"] == "FAILED"
    (latest,) = greengrass.list_deployments(targetArn=CANARIES, historyFilter="LATEST_ONLY")["deployments"]
    assert latest["deploymentId"] == broken["deploymentId"]
    installed = greengrass.list_installed_components(coreDeviceThingName="camera-07")["installedComponents"]
    assert [(c["componentName"], c["componentVersion"]) for c in installed] == [(MODEL, "1.0.0")]


@pytest.fixture(scope="module")
def slow_health(scene, tmp_path_factory):
    """The real device loop's health as 1.0.1 where it gets a quarter of the frames a second (a model four times
    slower leaves the same mark: the loop reads what the camera delivers while it infers)."""
    import cv2

    from tests.rehearsal.device_health import health_messages

    root = tmp_path_factory.mktemp("slow")
    source = cv2.VideoCapture(str(scene["video"]))
    fps = source.get(cv2.CAP_PROP_FPS)
    frames = []
    while (read := source.read())[0]:
        frames.append(read[1])
    slow = root / "slow.avi"
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(slow), cv2.VideoWriter_fourcc(*"MJPG"), fps / 4, (width, height))
    for frame in frames[::4]:
        writer.write(frame)
    writer.release()
    return health_messages(scene["package"], slow, root / "1.0.1.jsonl", model_component="1.0.1")


def test_a_canary_that_runs_slower_fails_on_its_frame_rate(devices, health, slow_health):
    """The same device's reports before (1.0.0) and after the switch (1.0.1 at a quarter of the frame rate)."""
    import datetime as dt

    from odshared.fleet.canary import check_canary
    from tests.rehearsal.device_health import report

    run = _canary(devices, soak=20)
    time.sleep(0.5)
    switched = time.time()
    for i in range(18):  # the window before is as long as the soak so far, ending at the switch
        report([health["1.0.0"][i % len(health["1.0.0"])]], at=switched - 19 + i)
    for i in range(21):
        report([slow_health[i % len(slow_health)]], at=switched + i)
    at = dt.datetime.fromtimestamp(switched + 21, dt.UTC)
    bounds = replace(BOUNDS, min_detections_ratio=0.0, max_detections_ratio=100.0)
    verdict = check_canary(run, bounds, boto3.client("iot"), devices.client(), boto3.client("cloudwatch"), now=at)
    assert verdict["state"] == "unhealthy" and "camera-07: FPS" in verdict["reason"], verdict
    assert "(minFpsRatio)" in verdict["reason"] and "DetectionsPerFrame" not in verdict["reason"]


def _lock_settings(bucket: str):
    from odshared.model.promotion import PromotionSettings

    return PromotionSettings("canaries", 1800, "cameras", bucket)


def test_the_group_lock_is_held_released_and_taken_over_only_by_its_rules(bucket):
    """One holder at a time; only the holder releases; a release of a lock not there is no error; an expired lock
    goes to one waiter only: the other's conditional write (If-Match on the ETag it read) loses and it waits."""
    from odshared.core import storage
    from odshared.model import promotion

    settings, uri = _lock_settings(bucket), f"s3://{bucket}/promotion/locks/canaries.json"
    assert promotion.acquire_lock(settings, "canaries", "exec-1", 1) is None
    assert promotion.acquire_lock(settings, "canaries", "exec-2", 2)["execution"] == "exec-1"
    assert not promotion.release_lock(bucket, "canaries", "exec-2") and storage.exists(uri)
    assert promotion.release_lock(bucket, "canaries", "exec-1") and not storage.exists(uri)
    assert not promotion.release_lock(bucket, "canaries", "exec-1")  # not there: nothing to release
    expired = {"execution": "exec-1", "version": 1, "group": "canaries", "expires": 0}
    storage.write_text(uri, json.dumps(expired))
    real = storage.s3_client()

    class Racing:  # the real client; another waiter takes the expired lock between this one's read and write
        raced = False

        def __getattr__(self, name):
            return getattr(real, name)

        def get_object(self, **kwargs):
            read = real.get_object(**kwargs)
            if not Racing.raced:
                Racing.raced = True
                assert promotion.acquire_lock(settings, "canaries", "exec-3", 3) is None  # the other waiter, first
            return read

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(storage, "s3_client", lambda: Racing())
        holder = promotion.acquire_lock(settings, "canaries", "exec-2", 2)
    assert holder["execution"] == "exec-1"  # it lost the takeover: it waits, and the lock is the winner's
    assert json.loads(storage.read_text(uri))["execution"] == "exec-3"


def test_an_s3_fault_on_a_lock_or_a_claim_raises_instead_of_passing_for_someone_elses(bucket):
    """An object S3 will not serve (archived: InvalidObjectState) says nothing about who holds it: the claim, the
    lock's release and a lock in a bucket that is not there raise, where they used to read as "another's"."""
    from odshared.core import storage
    from odshared.core.errors import StorageError
    from odshared.model import promotion

    s3 = boto3.client("s3")
    claim = f"s3://{bucket}/promotion/claims/1.json"
    s3.put_object(Bucket=bucket, Key="promotion/claims/1.json", Body=b'{"execution": "x"}', StorageClass="GLACIER")
    with pytest.raises(StorageError, match="InvalidObjectState"):
        promotion._claimed(claim, {"version": 1}, "exec-1")
    body = json.dumps({"execution": "exec-1", "expires": 0}).encode()
    s3.put_object(Bucket=bucket, Key="promotion/locks/canaries.json", Body=body, StorageClass="GLACIER")
    with pytest.raises(StorageError, match="InvalidObjectState"):
        promotion.release_lock(bucket, "canaries", "exec-1")
    with pytest.raises(StorageError, match="does not exist"):
        promotion.acquire_lock(_lock_settings("no-such-bucket-here"), "canaries", "exec-1", 1)
    storage.delete(claim)  # released (odctl model approve --override): the next execution's, and only its
    assert promotion._claimed(claim, {"version": 1}, "exec-2")
    assert not promotion._claimed(claim, {"version": 1}, "exec-3")
