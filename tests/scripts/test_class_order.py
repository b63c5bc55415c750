"""A SageMaker artifact records no class names (#32): ``convert --classes`` in another order than training used gave
a mislabelled package with exit 0, and ``evaluate`` then showed a low mAP with no hint. Now convert says the order is
unchecked and where the right one is, ``--classes-from`` takes it from the training's class map, evaluate names the
order that fits, the package keeps the held-out mAP the device's weak-model check reads first, and ``--report``
writes the demo's page."""

from __future__ import annotations

import html
import json
import re
import tarfile
from datetime import datetime

import numpy as np
import pytest

from odctl.cli import main
from odctl.evaluate import best_class_order, reordered_warnings
from odedge.model import ModelPackage
from odshared.model.evaluation import ImageResult, mean_average_precision

TRAINED = ["blue box", "yellow box"]  # tests/conftest.py's scene, in class-id order
SWAPPED = "yellow box,blue box"


def _run(capsys, argv):
    """Exit code, the JSON result, and the JSON log lines of one odctl command."""
    code = main(argv)
    captured = capsys.readouterr()
    events = [json.loads(line) for line in captured.err.splitlines() if line.startswith("{")]
    assert "Traceback" not in captured.err
    return code, (json.loads(captured.out) if code == 0 else captured.err.strip().splitlines()[-1]), events


@pytest.fixture(scope="module")
def sagemaker_artifact(scene, tmp_path_factory):
    """The scene's model.tar.gz as SageMaker's built-in algorithm writes it: the same members without classes.json
    (the local trainer's validation.json kept, so the package has a training validation mAP)."""
    from odshared.model.convert import make_tarball

    with tarfile.open(scene["root"] / "model.tar.gz") as archive:
        members = {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}
    assert "classes.json" in members and "validation.json" in members
    del members["classes.json"]
    path = tmp_path_factory.mktemp("sagemaker") / "model.tar.gz"
    path.write_bytes(make_tarball(members))
    return path


def _convert(capsys, artifact, out, *options):
    return _run(capsys, ["convert", "--model", str(artifact), "--out", str(out), *map(str, options)])


@pytest.mark.integration
@pytest.mark.slow
def test_an_unchecked_order_is_said_and_evaluate_names_the_one_that_fits(scene, sagemaker_artifact, tmp_path, capsys):
    validation = str(scene["root"] / "prepared" / "validation.manifest")
    code, converted, events = _convert(capsys, sagemaker_artifact, tmp_path / "wrong", "--classes", SWAPPED)
    assert code == 0 and converted["classes"] == ["yellow box", "blue box"]
    [warning] = converted["warnings"]
    assert "comes from --classes and cannot be checked" in warning
    assert "--classes-from PREPARED_FOLDER" in warning and "describe-training-job" in warning
    assert [e["level"] for e in events if e["event"] == "convert.class_order_unchecked"] == ["WARNING"]

    report_dir = tmp_path / "report"
    code, report, events = _run(
        capsys, ["evaluate", "--model", str(tmp_path / "wrong"), validation, "--report", str(report_dir)]
    )
    assert code == 0 and report["mAP"] < 0.3  # right about this package: it labels every box as the other class
    reordered = report["warnings"][0]
    assert reordered.startswith("the package's classes look reordered: with order [blue box, yellow box] mAP is ")
    assert [e["event"] for e in events if e["level"] == "WARNING"][0] == "evaluate.classes_reordered"
    suggested = re.search(r"convert again with --classes '([^']+)'$", reordered).group(1)
    fitting = float(re.search(r"mAP is ([0-9.]+)", reordered).group(1))

    page = (report_dir / "report.html").read_text()  # the demo's page: headline figures, AP per class, warnings
    assert report["report"] == str(report_dir / "report.html") and (report_dir / "precision_recall.png").exists()
    assert "mAP@0.5 per class on" in page and html.escape(reordered) in page

    code, _, _ = _convert(capsys, sagemaker_artifact, tmp_path / "right", "--classes", suggested)
    assert code == 0
    before = (tmp_path / "right" / "model.json").read_bytes()
    code, again, _ = _run(capsys, ["evaluate", "--model", str(tmp_path / "right"), validation, "--no-record"])
    assert code == 0 and again["warnings"] == [] and again["held_out"] is None
    assert round(again["mAP"], 3) == fitting > 0.6  # what the warning promised, measured on the new package
    assert (tmp_path / "right" / "model.json").read_bytes() == before  # --no-record: the package as it was


@pytest.mark.integration
@pytest.mark.slow
def test_the_held_out_figure_is_kept_and_the_device_reads_it_first(scene, sagemaker_artifact, tmp_path, capsys):
    """A package with a high training validation mAP whose held-out mAP is under the floor is named weak."""
    from odedge.config import EdgeConfig
    from odshared.model.package import read_package

    package, validation = tmp_path / "package", str(scene["root"] / "prepared" / "validation.manifest")
    assert _convert(capsys, sagemaker_artifact, package, "--classes", SWAPPED)[0] == 0
    trained = json.loads((package / "model.json").read_text())["validation"]["mAP"]
    assert ModelPackage.load(package).recorded_map == trained > EdgeConfig.weak_model_map

    code, report, _ = _run(capsys, ["evaluate", "--model", str(package), validation])
    assert code == 0
    held_out = json.loads((package / "model.json").read_text())["held_out"]
    lines = (scene["root"] / "prepared" / "validation.manifest").read_text().splitlines()
    assert held_out == {k: v for k, v in report["held_out"].items() if k != "recorded_in"}
    assert held_out["map"] == round(report["mAP"], 4) < EdgeConfig.weak_model_map
    assert (held_out["precision"], held_out["images"], held_out["source"]) == ("fp32", len(lines), validation)
    assert datetime.fromisoformat(held_out["measured_at"]).tzinfo is not None
    assert report["held_out"]["recorded_in"] == str(package / "model.json")
    assert "under the device's floor" in report["warnings"][-1]
    read_package(str(package))  # SHA256SUMS names model.json's new bytes
    assert ModelPackage.load(package).recorded_map == held_out["map"]

    out = tmp_path / "detections.jsonl"
    argv = ["detect", str(scene["video"]), "--model", str(package), "--line", "door:0.5,0,0.5,1", "--out", str(out)]
    code, summary, _ = _run(capsys, argv)
    weak = f"held-out mAP {held_out['map']:.2f} is under {EdgeConfig.weak_model_map:.2f}"
    assert code == 0 and weak in summary["warnings"][0]


@pytest.mark.integration
@pytest.mark.slow
def test_classes_from_the_training_class_map(scene, sagemaker_artifact, tmp_path, capsys):
    """prepare-training's folder, its classes.json, the manifest the training read, the Ground Truth output."""
    prepared = scene["root"] / "prepared"
    sources = (prepared, prepared / "classes.json", prepared / "train.manifest", scene["root"] / "out.manifest")
    for number, source in enumerate(sources):
        code, converted, events = _convert(
            capsys, sagemaker_artifact, tmp_path / f"p{number}", "--classes-from", source
        )
        assert code == 0, source
        assert converted["classes"] == TRAINED and converted["warnings"] == []
        assert [e["read_from"] for e in events if e["event"] == "convert.classes_from"] == [str(source)]


@pytest.mark.integration
@pytest.mark.slow
def test_classes_from_a_training_job_description(scene, sagemaker_artifact, bucket, tmp_path, capsys):
    """What `aws sagemaker describe-training-job` prints: classes.json beside its train channel's manifest, else
    that manifest's class-map."""
    import boto3

    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    prepared = scene["root"] / "prepared"
    for key, name in (("prepared/classes.json", "classes.json"), ("prepared/train.manifest", "train.manifest")):
        s3.upload_file(str(prepared / name), bucket, key)
    s3.upload_file(str(prepared / "train.manifest"), bucket, "bare/train.manifest")
    for job, prefix in (("job-prepared", "prepared"), ("job-bare", "bare")):
        source = {"S3DataType": "AugmentedManifestFile", "S3Uri": f"s3://{bucket}/{prefix}/train.manifest"}
        sagemaker.create_training_job(
            TrainingJobName=job,
            AlgorithmSpecification={
                "TrainingImage": "811284229777.dkr.ecr.us-east-1.amazonaws.com/od:1",
                "TrainingInputMode": "Pipe",
            },
            RoleArn="arn:aws:iam::123456789012:role/sm",
            InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": source}}],
            OutputDataConfig={"S3OutputPath": f"s3://{bucket}/training"},
            ResourceConfig={"InstanceType": "ml.p3.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
            StoppingCondition={"MaxRuntimeInSeconds": 3600},
        )
        described = tmp_path / f"{job}.json"
        described.write_text(json.dumps(sagemaker.describe_training_job(TrainingJobName=job), default=str))
        code, converted, _ = _convert(capsys, sagemaker_artifact, tmp_path / job, "--classes-from", described)
        assert code == 0 and converted["classes"] == TRAINED and converted["warnings"] == []


def test_classes_from_what_holds_no_class_order_is_refused(tmp_path, capsys):
    """Refused before the artifact is read, with the file and what --classes-from takes."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "model.tar.gz").write_bytes(bytes(range(256)))
    for source, said in (("empty", "a folder without classes.json"), ("model.tar.gz", "not text")):
        code, line, _ = _convert(
            capsys, tmp_path / "none.tar.gz", tmp_path / "pkg", "--classes-from", tmp_path / source
        )
        assert code == 2 and f"{tmp_path / source}: {said}" in line and "prepare-training's classes.json" in line
    assert not (tmp_path / "pkg").exists()


def test_a_report_folder_in_s3_is_refused_before_the_work(labeled_dataset, capsys):
    manifest = str(labeled_dataset / "prepared" / "validation.manifest")
    code, line, _ = _run(capsys, ["evaluate", "--model", "models/none", manifest, "--report", "s3://bucket/report"])
    assert code == 2 and "--report s3://bucket/report: must be a local folder" in line


def _results(label_of: list[int], classes: int = 3, images: int = 4) -> list[ImageResult]:
    """One box of each class per image, each found by the detector and labelled ``label_of[its class]``."""
    results = []
    for i in range(images):
        boxes = np.array([[0.1 * c, 0.1 * i, 0.1 * c + 0.08, 0.1 * i + 0.08] for c in range(classes)], np.float32)
        scores = np.full(classes, 0.9) - 0.01 * i
        results.append(ImageResult(boxes, np.arange(classes), boxes.copy(), np.array(label_of), scores))
    return results


def test_the_order_that_fits_is_found_among_every_order():
    """Arithmetic of the check: three classes rotated (no single swap undoes it), and a right order left alone."""
    names = ["car", "van", "bus"]
    rotated = _results([1, 2, 0])  # the model's id 1 is what the package calls car, 2 van, 0 bus
    order, score = best_class_order(rotated, names, 0.5)
    assert order == ["bus", "car", "van"] and score == 1.0
    report = mean_average_precision(rotated, names)
    [warning] = reordered_warnings(rotated, names, report, "held.manifest")
    assert warning.endswith(
        f"mAP is 1.000 (as packaged {report['mAP']:.3f}): convert again with --classes 'bus,car,van'"
    )
    right = _results([0, 1, 2])
    assert best_class_order(right, names, 0.5) == (names, 1.0)
    assert reordered_warnings(right, names, mean_average_precision(right, names), "held.manifest") == []
