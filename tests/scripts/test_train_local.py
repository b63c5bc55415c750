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
    assert names == ["hyperparams.json", "model_algo_1-0000.params", "model_algo_1-symbol.json"]
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
