"""train-local refuses, before any training, data that can only give a wrong answer: validation data with no image
or no box (mAP 0.0 and advice to train longer, after minutes of work), training data with no image or no box."""

from __future__ import annotations

import json

import pytest

from odctl import mxnet_env
from odctl.cli import main


@pytest.fixture(autouse=True)
def no_training(monkeypatch):
    """The refusals come before the MXNet environment is asked for anything."""

    def refuse(*args, **kwargs):
        raise AssertionError("MXNet was invoked before the inputs were checked")

    monkeypatch.setattr(mxnet_env, "call", refuse)


def _train(dataset, validation, tmp_path, capsys, train=None):
    out = tmp_path / "model.tar.gz"
    code = main(
        [
            "train-local",
            "--train",
            str(train or dataset / "prepared" / "train.manifest"),
            "--validation",
            str(validation),
            "--out",
            str(out),
            "--epochs",
            "1",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert not any("Traceback" in line for line in err)
    return code, err[-1], out


def _boxless_lines(dataset, tmp_path):
    """Lines without a box, as prepare-training writes them (frames where no box is in view, kept with keep_empty)."""
    from odshared.data.dataprep import PrepareOptions, prepare_training

    prepared = tmp_path / "prepared-with-empty"
    prepare_training(
        [str(dataset / "out.manifest")],
        str(prepared),
        PrepareOptions(classes=("blue box", "yellow box"), validation_fraction=0.5, keep_empty=True),
    )
    lines = [
        line
        for name in ("train.manifest", "validation.manifest")
        for line in (prepared / name).read_text().splitlines()
        if not json.loads(line)["bb"]["annotations"]
    ]
    assert lines, "the small video has frames without boxes"
    boxless = tmp_path / "boxless.manifest"
    boxless.write_text("\n".join(lines) + "\n")
    return boxless


def test_an_empty_validation_manifest_is_refused_with_the_fix(labeled_dataset, tmp_path, capsys):
    """What prepare-training writes when its split leaves nothing for validation (--validation-fraction 0)."""
    from odshared.data.dataprep import PrepareOptions, prepare_training

    prepared = tmp_path / "prepared-no-validation"
    prepare_training(
        [str(labeled_dataset / "out.manifest")],
        str(prepared),
        PrepareOptions(classes=("blue box", "yellow box"), validation_fraction=0.0),
    )
    empty = prepared / "validation.manifest"
    assert empty.read_text().strip() == ""
    code, line, out = _train(labeled_dataset, empty, tmp_path, capsys)
    assert code == 2 and not out.exists()
    assert line.startswith(f"odctl train-local: error: {empty} has no images")
    assert "prepare-training's split left none for validation" in line and "--validation-fraction" in line


def test_a_validation_manifest_without_boxes_is_refused(labeled_dataset, tmp_path, capsys):
    boxless = _boxless_lines(labeled_dataset, tmp_path)
    code, line, out = _train(labeled_dataset, boxless, tmp_path, capsys)
    assert code == 2 and not out.exists()
    assert str(boxless) in line and "has a box" in line and "--keep-empty" in line


def test_an_empty_train_manifest_is_refused_with_the_fix(labeled_dataset, tmp_path, capsys):
    empty = tmp_path / "train.manifest"
    empty.write_text("")
    validation = labeled_dataset / "prepared" / "validation.manifest"
    code, line, out = _train(labeled_dataset, validation, tmp_path, capsys, train=empty)
    assert code == 2 and not out.exists()
    assert line.startswith(f"odctl train-local: error: {empty} has no images") and "prepare-training" in line


def test_a_train_manifest_without_boxes_is_refused(labeled_dataset, tmp_path, capsys):
    boxless = _boxless_lines(labeled_dataset, tmp_path)
    validation = labeled_dataset / "prepared" / "validation.manifest"
    code, line, out = _train(labeled_dataset, validation, tmp_path, capsys, train=boxless)
    assert code == 2 and not out.exists()
    assert str(boxless) in line and "nothing to learn" in line and "--keep-empty" in line
