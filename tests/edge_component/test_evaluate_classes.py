"""evaluate scores ground truth against the model by class name: relabelled or re-numbered manifests are never
scored against the wrong class, and a manifest with no image is an error, not mAP 0.0."""

from __future__ import annotations

import json

import pytest

from odctl.evaluate import EvaluateError, evaluate

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _rewrite(source, target, change):
    lines = [json.loads(line) for line in source.read_text().splitlines()]
    target.write_text("".join(json.dumps(change(line)) + "\n" for line in lines[::6]))
    return str(target)


def _renumbered(line):
    """Swap the class ids and the class-map together: the same labels, other numbers."""
    swap = {0: 1, 1: 0}
    for box in line["bb"]["annotations"]:
        box["class_id"] = swap[box["class_id"]]
    metadata = line["bb-metadata"]
    metadata["class-map"] = {str(swap[int(k)]): v for k, v in metadata["class-map"].items()}
    return line


def _renamed(line):
    metadata = line["bb-metadata"]
    metadata["class-map"] = {k: v.replace("blue box", "storage box") for k, v in metadata["class-map"].items()}
    return line


def test_classes_are_matched_by_name(scene, tmp_path):
    labels = scene["root"] / "out.manifest"
    package = str(scene["package"])
    same = _rewrite(labels, tmp_path / "same.manifest", lambda line: line)
    baseline = evaluate(package, same)["mAP"]
    assert baseline > 0.3
    assert evaluate(package, _rewrite(labels, tmp_path / "renumbered.manifest", _renumbered))["mAP"] == baseline
    renamed = _rewrite(labels, tmp_path / "renamed.manifest", _renamed)
    with pytest.raises(EvaluateError, match=r"classes \['storage box'\] that the model does not know"):
        evaluate(package, renamed)
    assert evaluate(package, renamed, class_map={"storage box": "blue box"})["mAP"] == baseline
    with pytest.raises(EvaluateError, match=r"--class-map: \['green box'\] never occur"):
        evaluate(package, renamed, class_map={"green box": "blue box"})


def test_an_empty_manifest_is_an_error(scene, tmp_path):
    empty = tmp_path / "empty.manifest"
    empty.write_text("")
    with pytest.raises(EvaluateError, match="no labeled image to evaluate on"):
        evaluate(str(scene["package"]), str(empty))
