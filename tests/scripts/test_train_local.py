"""train-local on generated data (a few iterations): SageMaker's artifact layout, logs, and the converter."""

from __future__ import annotations

import json
import re
import tarfile

import onnxruntime as ort
import pytest

from odctl.cli import main
from odctl.train_local import METRIC_REGEX, prepare_hyperparameters, train_local
from odshared.data.hyperparameters import HyperparameterError
from odshared.model.convert import convert_artifact, read_artifact
from tests.reference_models import match_detections, mxnet_forward, preprocess

pytestmark = pytest.mark.integration
FAST = {
    "base_network": "tiny",
    "image_shape": 300,
    "mini_batch_size": 4,
    "epochs": 2,
    "optimizer": "adam",
    "learning_rate": 0.002,
}


@pytest.fixture(scope="module")
def trained(labeled_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "model.tar.gz"
    result = train_local(
        str(labeled_dataset / "prepared/train.manifest"),
        str(labeled_dataset / "prepared/validation.manifest"),
        str(out),
        FAST,
        classes=["blue box", "yellow box"],
        max_batches=3,
    )
    return out, result


def test_artifact_is_laid_out_as_sagemaker_writes_it(trained):
    out, result = trained
    with tarfile.open(out) as archive:
        names = sorted(archive.getnames())
        hyper = json.loads(archive.extractfile("hyperparams.json").read())
        recorded = json.loads(archive.extractfile("classes.json").read())
        validation = json.loads(archive.extractfile("validation.json").read())
    # SageMaker's three, the class names in id order (the model knows what it detects) and the best epoch's
    # validation mAP (the device says when the model is too weak to count)
    assert names == [
        "classes.json",
        "hyperparams.json",
        "model_algo_1-0000.params",
        "model_algo_1-symbol.json",
        "validation.json",
    ]
    assert recorded == {"classes": ["blue box", "yellow box"]}
    assert validation == {"mAP": result.best_map, "epoch": result.best_epoch}
    assert hyper["base_network"] == "tiny" and hyper["num_classes"] == "2" and hyper["image_shape"] == "300"
    assert hyper["_kvstore"] == "device" and hyper["nms_topk"] == "400"
    assert all(isinstance(v, str) for v in hyper.values())
    assert result.epochs_run == 2 and len(result.history) == 2


def test_converter_accepts_it_and_mxnet_and_onnx_agree(trained, labeled_dataset):
    out, _ = trained
    converted = convert_artifact(read_artifact(out), ["blue box", "yellow box"])
    session = ort.InferenceSession(converted.files["model.onnx"], providers=["CPUExecutionProvider"])
    images = [preprocess(frame, 300) for frame in sorted((labeled_dataset / "frames").glob("*.jpg"))[::5]]
    references = mxnet_forward(
        converted.files["deploy_model_algo_1-symbol.json"].decode(),
        converted.files["deploy_model_algo_1-0000.params"],
        images,
    )
    for image, reference_out in zip(images, references, strict=True):
        ours = session.run(None, {"data": image})[0][0]
        reference = reference_out[0][0]
        # after three batches scores are nearly flat, so near-ties may swap places: rows are matched, not zipped
        matched, expected, actual = match_detections(reference, ours)
        assert expected > 0 and matched >= 0.97 * expected and abs(actual - expected) <= 0.03 * expected


def test_metric_lines_match_sagemakers_regex(labeled_dataset, tmp_path, capfd):
    from odshared.core.log import configure

    configure("INFO")
    assert (
        main(
            [
                "train-local",
                "--train",
                str(labeled_dataset / "prepared/train.manifest"),
                "--validation",
                str(labeled_dataset / "prepared/validation.manifest"),
                "--out",
                str(tmp_path),
                "--hyperparameters",
                _hp_file(tmp_path, {**FAST, "epochs": 1}),
                "--seed",
                "1",
            ]
        )
        == 0
    )
    err = capfd.readouterr().err
    values = re.findall(METRIC_REGEX, err)
    assert len(values) == 1 and 0.0 <= float(values[0]) <= 1.0
    assert (tmp_path / "model.tar.gz").exists()


def _hp_file(tmp_path, values):
    path = tmp_path / "hp.json"
    path.write_text(json.dumps(values))
    return str(path)


def test_bad_hyperparameters_stop_before_work(labeled_dataset, tmp_path, capsys):
    code = main(
        [
            "train-local",
            "--train",
            str(labeled_dataset / "prepared/train.manifest"),
            "--validation",
            str(labeled_dataset / "prepared/validation.manifest"),
            "--out",
            str(tmp_path / "m.tar.gz"),
            "--hyperparameters",
            _hp_file(tmp_path, {"image_shape": 128, "learnig_rate": 0.1}),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "image_shape='128'" in err and "learnig_rate: unknown hyperparameter" in err
    assert not (tmp_path / "m.tar.gz").exists()


def test_data_decided_hyperparameters_are_checked():
    with pytest.raises(HyperparameterError, match="num_training_samples=5 but the training manifest has 9 lines"):
        prepare_hyperparameters({"num_training_samples": 5}, "tiny", 9, 2, 2)
    with pytest.raises(HyperparameterError, match="num_classes=1 but the labels use class ids up to 1"):
        prepare_hyperparameters({"num_classes": 1}, "tiny", 9, 2, 2)
    with pytest.raises(HyperparameterError, match="label_width=10 is too small for 3 objects"):
        prepare_hyperparameters({"label_width": 10}, "tiny", 9, 2, 3)


def test_convert_refuses_classes_that_would_swap_the_labels(trained, labeled_dataset, tmp_path, capsys):
    """Red before: ``--classes`` in another order than training converted with exit 0 and swapped the labels."""
    out, _ = trained
    package = tmp_path / "package"
    argv = ["convert", "--model", str(out), "--out", str(package)]
    assert main([*argv, "--classes", "yellow box,blue box"]) == 2
    err = capsys.readouterr().err.strip()
    assert "in class-id order: blue box, yellow box" in err.splitlines()[-1] and "Traceback" not in err
    assert not package.exists()  # nothing written
    assert main(argv) == 0  # the recorded names
    manifest = json.loads((package / "model.json").read_text())
    assert manifest["classes"] == ["blue box", "yellow box"]
    assert manifest["validation"] == {"mAP": round(trained[1].best_map, 4), "source": "training"}
    classes_json = labeled_dataset / "prepared/classes.json"
    assert main([*argv, "--classes-from", str(classes_json)]) == 0
    assert main([*argv, "--classes-from", str(classes_json), "--classes", "blue box,yellow box"]) == 2


def test_a_sagemaker_artifact_without_names_needs_them(tmp_path, capsys):
    from tests.conftest import SEED
    from tests.reference_models import build_resnet50_from_seed

    reference = build_resnet50_from_seed(SEED, tmp_path / "model.tar.gz", 2)  # SageMaker's layout: no names
    argv = ["convert", "--model", str(reference.tarball), "--out", str(tmp_path / "package")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "names no classes" in err.splitlines()[-1] and "--classes-from" in err and "Traceback" not in err
    assert not (tmp_path / "package").exists()
    assert main([*argv, "--classes", "blue box,yellow box"]) == 0
    assert "validation" not in json.loads((tmp_path / "package/model.json").read_text())  # none recorded


def test_a_recorded_validation_score_that_is_not_one_is_named(trained, tmp_path, capsys):
    from odshared.model.convert import make_tarball

    out, _ = trained
    with tarfile.open(out) as archive:
        members = {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}
    broken = tmp_path / "model.tar.gz"
    broken.write_bytes(make_tarball({**members, "validation.json": b'{"mAP": 3}'}))
    assert main(["convert", "--model", str(broken), "--out", str(tmp_path / "package")]) == 2
    err = capsys.readouterr().err.strip()
    assert "validation.json: mAP must be a number in [0, 1] (got 3)" in err.splitlines()[-1]
    assert not (tmp_path / "package").exists()


def test_epochs_on_the_command_line_override_the_hyperparameters(labeled_dataset, tmp_path, capsys):
    hp = tmp_path / "hp.json"
    hp.write_text(json.dumps({**FAST, "epochs": 5, "mini_batch_size": 16}))
    out = tmp_path / "model.tar.gz"
    prepared = labeled_dataset / "prepared"
    argv = ["train-local", "--train", str(prepared / "train.manifest"), "--validation"]
    argv += [str(prepared / "validation.manifest"), "--out", str(out), "--hyperparameters", str(hp), "--epochs", "1"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["epochs_run"] == 1 and result["hyperparameters"]["epochs"] == "1"


def test_training_is_quiet_and_names_a_weak_model(labeled_dataset, tmp_path, capfd):
    """Red before: MXNet printed "learning rate from lr_scheduler has been overwritten" on stdout (Adam's own
    default rate replaced the scheduler's) and a non-JSON MKLDNN line on stderr; a best mAP of 0.001 passed with
    no word."""
    hp = tmp_path / "hp.json"
    hp.write_text(json.dumps({**FAST, "lr_scheduler_step": "1", "lr_scheduler_factor": 0.5}))
    prepared = labeled_dataset / "prepared"
    argv = ["train-local", "--train", str(prepared / "train.manifest"), "--validation"]
    argv += [str(prepared / "validation.manifest"), "--out", str(tmp_path / "model.tar.gz"), "--hyperparameters"]
    assert main([*argv, str(hp), "--epochs", "1"]) == 0
    out, err = capfd.readouterr()
    assert json.loads(out)["epochs_run"] == 1  # stdout holds the result alone
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]  # every stderr line is a JSON event
    weak = [line for line in lines if line["event"] == "train.weak_model"]
    assert weak and weak[0]["level"] == "WARNING" and "--epochs" in weak[0]["detail"]
