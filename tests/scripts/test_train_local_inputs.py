"""train-local refuses, before any training, validation data that can only give a wrong mAP: none at all, or
images without a single box (mAP 0.0 and advice to train longer, after minutes of work)."""

from __future__ import annotations

import json

from odctl.cli import main


def _train(dataset, validation, tmp_path, capsys):
    out = tmp_path / "model.tar.gz"
    code = main(
        [
            "train-local",
            "--train",
            str(dataset / "prepared" / "train.manifest"),
            "--validation",
            str(validation),
            "--out",
            str(out),
            "--epochs",
            "1",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1], out


def test_an_empty_validation_manifest_is_refused_with_the_fix(labeled_dataset, tmp_path, capsys):
    empty = tmp_path / "validation.manifest"
    empty.write_text("")
    code, line, out = _train(labeled_dataset, empty, tmp_path, capsys)
    assert code == 2 and not out.exists()
    assert str(empty) in line and "no validation images" in line and "--validation-fraction" in line


def test_a_validation_manifest_without_boxes_is_refused(labeled_dataset, tmp_path, capsys):
    """The box-less lines are prepare-training's own (frames where no box is in view, kept with keep_empty)."""
    from odshared.data.dataprep import PrepareOptions, prepare_training

    prepared = tmp_path / "prepared-with-empty"
    prepare_training(
        [str(labeled_dataset / "out.manifest")],
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
    code, line, out = _train(labeled_dataset, boxless, tmp_path, capsys)
    assert code == 2 and not out.exists()
    assert str(boxless) in line and "has a box" in line
