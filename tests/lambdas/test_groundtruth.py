"""Parsing Ground Truth output lines: the real seed files and every kind of bad line."""

from __future__ import annotations

import json

import pytest

from odshared.core.errors import LineError
from odshared.data.groundtruth import parse_output_line, to_output_line


def _lines(seed_dir, name):
    return [json.loads(line) for line in (seed_dir / name).read_text().splitlines()]


def test_every_seed_line_parses_and_round_trips(seed_dir):
    for name in (
        "blue-box-large-job.output.manifest",
        "blue-box-small-job.output.manifest",
        "yellow-box-small-job.output.manifest",
    ):
        for obj in _lines(seed_dir, name):
            image = parse_output_line(obj, "bb")
            assert (image.width, image.height) == (1920, 1080)
            assert image.extra["color"] in ("blue", "yellow")
            back = to_output_line(image, "bb")
            assert back["bb"] == obj["bb"]
            assert back["bb-metadata"]["objects"] == obj["bb-metadata"]["objects"]
            assert back["bb-metadata"]["job-name"] == obj["bb-metadata"]["job-name"]
            assert back["color"] == obj["color"]


def test_seed_confidence_and_class_map_are_read(seed_dir):
    image = parse_output_line(_lines(seed_dir, "blue-box-large-job.output.manifest")[0])
    assert image.boxes[0].confidence == pytest.approx(0.09)
    assert image.boxes[0].class_name == "storage box"
    assert image.boxes[0].left == 608 and image.boxes[0].width == 429


def _base():
    return {
        "source-ref": "s3://b/x.jpg",
        "bb": {
            "image_size": [{"width": 100, "height": 80, "depth": 3}],
            "annotations": [{"class_id": 0, "left": 10, "top": 10, "width": 20, "height": 20}],
        },
        "bb-metadata": {"class-map": {"0": "a"}, "objects": [{"confidence": 0.5}]},
    }


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda o: o.pop("bb"), "missing label attribute 'bb'"),
        (lambda o: o.pop("source-ref"), "missing 'source-ref'"),
        (lambda o: o["bb"]["annotations"][0].update(width=0), "zero-size box"),
        (lambda o: o["bb"]["annotations"][0].update(left=95), "outside the 100x80 image"),
        (lambda o: o["bb"]["annotations"][0].update(top=-1), "outside the 100x80 image"),
        (lambda o: o["bb"]["annotations"][0].update(left="x"), "left must be a number"),
        (lambda o: o["bb"]["annotations"][0].pop("class_id"), "class_id must be an integer"),
        (lambda o: o["bb"].update(image_size=[]), "image_size must be a list"),
        (lambda o: o["bb"].update(annotations={}), "annotations must be a list"),
    ],
)
def test_bad_lines_name_the_field(mutate, message):
    obj = _base()
    mutate(obj)
    with pytest.raises(LineError, match=message):
        parse_output_line(obj, "bb")


def test_failure_reason_from_metadata_is_reported():
    obj = _base()
    obj.pop("bb")
    obj["bb-metadata"] = {"failure-reason": "ClientError: worker timeout"}
    with pytest.raises(LineError, match="worker timeout"):
        parse_output_line(obj, "bb")
