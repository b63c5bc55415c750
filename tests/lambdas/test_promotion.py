"""The promotion gate's parts on real models: scores from the real conversion of a trained model and of a worse
conversion of the same training, the gate against a deployment record, the registry request against SageMaker's
model (patterns included), the canary verdict on a real device's health through CloudWatch (moto)."""

from __future__ import annotations

import json
import shutil

import boto3
import botocore.session
import numpy as np
import pytest
import regex

from odedge.model import ModelPackage
from odedge.runtimes import create_runtime
from odshared.model.calibration import build_evaluation_set
from odshared.model.convert import convert
from odshared.model.package import withhold_int8
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
    withhold_int8(str(package_dir), scores.int8_withheld)
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


@pytest.fixture(scope="module")
def health(scene, tmp_path_factory):
    from tests.rehearsal.device_health import health_messages

    root = tmp_path_factory.mktemp("health")
    messages = health_messages(scene["package"], scene["video"], root / "good.jsonl")
    # red before: the source never said it was connected, so every canary failed on SourceConnected
    assert messages and all(m["source_connected"] == 1 for m in messages)
    return messages


def test_the_canary_verdict_reads_each_devices_metrics(aws, health):
    import datetime as dt

    from odshared.fleet.canary import CanaryBounds, check_canary
    from odshared.fleet.metrics import HEALTH_METRICS, emf_record
    from tests.rehearsal.emf_extraction import put_records

    bounds = CanaryBounds(0.8, 0, 0.95, 0.5, 2.0)
    iot, cloudwatch = boto3.client("iot"), boto3.client("cloudwatch")
    iot.create_thing_group(thingGroupName="canaries")
    empty = check_canary("canaries", "2026-12-03T10:00:00+00:00", bounds, iot, cloudwatch)
    assert not empty["healthy"] and "no devices" in empty["reason"]
    iot.create_thing(thingName="camera-07")
    iot.add_thing_to_thing_group(thingGroupName="canaries", thingName="camera-07")
    deployed = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=10)
    ms = int(deployed.timestamp() * 1000)
    before = [emf_record(HEALTH_METRICS, m, ms - 240_000 + 1000 * i) for i, m in enumerate(health)]
    put_records(before)
    silent = check_canary("canaries", deployed.isoformat(), bounds, iot, cloudwatch)
    assert not silent["healthy"] and "camera-07: no health report since the deployment" in silent["reason"]
    disconnected = [{**m, "source_connected": 0} for m in health]
    put_records([emf_record(HEALTH_METRICS, m, ms + 60_000 + 1000 * i) for i, m in enumerate(disconnected)])
    verdict = check_canary("canaries", deployed.isoformat(), bounds, iot, cloudwatch)
    assert not verdict["healthy"] and "camera-07: camera connected 0% of the soak" in verdict["reason"]
    assert verdict["devices"]["camera-07"]["soak"]["HealthReports"] == len(health)
    json.dumps(verdict)  # the state's output
