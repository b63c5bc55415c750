"""A newcomer's own scenario, end to end with the commands the documentation gives: three classes, a horizontal
door line, the demo's CPU settings (`train-local --preset cpu`), and the counts beside the truth.

The frames are generated and labelled from their known boxes (the offline stand-in for Label Studio); everything
after that is what a user runs on their own labelled frames.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from odctl.cli import main

CLASSES = "carton,crate,pallet"
TRAINING = (("bay_1", 11), ("bay_2", 12), ("bay_3", 13))

logger = logging.getLogger(__name__)


def _odctl(capsys, *argv: str) -> dict:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0, (argv[0], err[-2000:])
    return json.loads(out) if out.strip().startswith("{") else {}


def _labelled(capsys, root: Path) -> Path:
    """Training videos -> frames -> a labeling manifest -> labels (from the known boxes) -> prepared data."""
    videos, frames = root / "videos", root / "frames"
    for name, seed in TRAINING:
        _odctl(
            capsys,
            "synth-video",
            "--out",
            videos,
            "--name",
            name,
            "--classes",
            CLASSES,
            "--frames",
            160,
            "--seed",
            seed,
        )
        _odctl(capsys, "extract-frames", videos / f"{name}.mp4", "--out", frames / name, "--every", 2)
    manifest = root / "labeling.manifest"
    _odctl(capsys, "make-manifest", *(frames / name for name, _ in TRAINING), "--out", manifest)
    labelled = root / "labelled.manifest"
    _odctl(capsys, "label-local", manifest, "--boxes-dir", videos, "--out", labelled, "--classes", CLASSES)
    prepared = root / "prepared"
    _odctl(capsys, "prepare-training", labelled, "--out", prepared, "--classes", CLASSES, "--flip")
    return prepared


@pytest.mark.integration
@pytest.mark.slow
def test_three_classes_a_horizontal_line_and_the_demos_settings_count_what_crossed(tmp_path, capsys):
    prepared = _labelled(capsys, tmp_path)
    model = tmp_path / "training" / "model.tar.gz"
    trained = _odctl(
        capsys,
        "train-local",
        "--train",
        prepared / "train.manifest",
        "--validation",
        prepared / "validation.manifest",
        "--out",
        model,
        "--preset",
        "cpu",
    )
    assert trained["epochs_run"] == 14
    package = tmp_path / "models" / "bay"
    _odctl(capsys, "convert", "--model", model, "--out", package, "--classes-from", prepared / "classes.json")

    door = _odctl(
        capsys,
        "synth-video",
        "--out",
        tmp_path / "videos",
        "--name",
        "door_day",
        "--classes",
        CLASSES,
        "--frames",
        160,
        "--seed",
        21,
        "--scenario",
        "crossings",
        "--direction",
        "top-bottom",
    )
    assert door["line"].endswith(":top-to-bottom")  # a horizontal line, named in the image's own words
    report = _odctl(
        capsys,
        "evaluate-tracking",
        tmp_path / "videos" / "door_day.mp4",
        "--model",
        package,
        "--line",
        door["line"],
        "--precision",
        "fp32",
    )
    (counts,) = report["counts"].values()
    logger.info("three classes, a horizontal line: %s", json.dumps(counts))
    counted = {way: {c: n["counted"] for c, n in row.items() if n["counted"]} for way, row in counts.items()}
    assert counted == next(iter(door["true_counts"].values())), counts
