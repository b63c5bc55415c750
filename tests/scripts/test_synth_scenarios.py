"""Generated videos for any number of classes and any direction: every class appears as often as the others, in
a colour of its own, and the crossings scenario's truth is what the device's tracker and counter make of its boxes
on the line the scenario names."""

from __future__ import annotations

import colorsys
import hashlib
import itertools
import json
from collections import Counter as Tally

import pytest

from odctl.cli import main
from odctl.cli_types import shape_option
from odctl.synth_video import CROSSING_DIRECTIONS, SynthSpec, class_colour, class_colours, read_boxes, render
from odedge.counting import Counter, parse_lines
from odedge.postprocess import Detection
from odedge.tracking import Tracker

CLASSES = ("carton", "crate", "pallet")


def _hue(bgr: tuple[int, int, int]) -> float:
    b, g, r = (c / 255 for c in bgr)
    return colorsys.rgb_to_hsv(r, g, b)[0] * 360


def _hue_apart(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    gap = abs(_hue(a) - _hue(b)) % 360
    return min(gap, 360 - gap)


def _tracks_per_class(spec: SynthSpec) -> dict[str, int]:
    seen = {(box["class"], box["track_id"]) for _, boxes in render(spec) for box in boxes}
    return dict(Tally(name for name, _ in seen))


@pytest.mark.parametrize("scenario", ["random", "crossings"])
@pytest.mark.parametrize("classes", [CLASSES, ("a", "b", "c", "d", "e")])
def test_every_class_appears_as_often_as_the_others(scenario, classes):
    spec = SynthSpec("x", classes, frames=160, width=320, height=180, seed=7, scenario=scenario)
    per_class = _tracks_per_class(spec)
    assert set(per_class) == set(classes) and len(set(per_class.values())) == 1, per_class


def test_the_demos_two_class_crossings_video_is_the_one_it_was():
    """The demo's counting video (its trained model's figures were measured on it): the same boxes as before."""
    spec = SynthSpec("mixed_boxes_3", ("blue box", "yellow box"), frames=160, seed=303, scenario="crossings")
    boxes = [boxes for _, boxes in render(spec)]
    assert hashlib.sha256(json.dumps(boxes).encode()).hexdigest()[:16] == "1c90314301755567"
    assert class_colours(spec.classes) == [class_colour("blue box"), class_colour("yellow box")]


def test_classes_whose_names_hash_alike_get_colours_far_apart():
    """'pallet' and 'tote' both hash to a green: a model trained on them mixed them up."""
    assert _hue_apart(class_colour("pallet"), class_colour("tote")) < 10
    pallet, tote = class_colours(["pallet", "tote"])
    assert _hue_apart(pallet, tote) >= 170
    assert class_colours(["pallet", "tote"]) == [pallet, tote]  # the same list, the same colours


def test_colour_words_keep_their_colour_and_the_others_keep_away_from_them():
    colours = class_colours(["blue box", "carton", "green_bag", "crate", "blue bin"])
    assert colours[0] == class_colour("blue box") and colours[2] == class_colour("green bag")
    assert colours[4] != colours[0] and _hue_apart(colours[4], colours[0]) < 1  # a second blue: a darker blue
    for unnamed in (colours[1], colours[3]):
        assert min(_hue_apart(unnamed, other) for other in colours if other != unnamed) >= 60


def test_many_classes_are_all_told_apart():
    names = [f"part {n}" for n in range(12)]
    colours = class_colours(names)
    for a, b in itertools.combinations(colours, 2):
        assert _hue_apart(a, b) >= 25 or sum(abs(x - y) for x, y in zip(a, b, strict=True)) >= 90, (a, b)


def _tracked_counts(boxes_file, line: str) -> dict:
    """The device's tracker and counter fed the video's true boxes (no identities given: the tracker makes them)
    on the line as odctl passes it to the device."""
    lines = parse_lines(json.dumps([shape_option(line, "--line")]))
    tracker, counter = Tracker(high=0.5, low=0.1), Counter(lines, ())
    for frame, record in sorted(read_boxes(boxes_file).items()):
        seen = [
            Detection(
                b["class"], b["class_id"], 0.9, (b["left"], b["top"], b["left"] + b["width"], b["top"] + b["height"])
            )
            for b in record["boxes"]
        ]
        tracked = [d for d in tracker.update(seen) if d.track_id is not None]
        counter.observe(tracked, (record["width"], record["height"]), float(frame))
    return counter.summary()["lines"]


BOTH_WAYS = {"in": {"carton": 2, "crate": 1, "pallet": 1}, "out": {"carton": 1, "crate": 1, "pallet": 1}}
ONE_WAY = {"in": {"carton": 2, "crate": 2, "pallet": 2}, "out": {"carton": 1}}


@pytest.mark.parametrize(
    ("direction", "line", "truth"),
    [
        ("top-bottom", "middle:0,0.5,1,0.5:top-to-bottom", BOTH_WAYS),
        ("top-to-bottom", "middle:0,0.5,1,0.5:top-to-bottom", ONE_WAY),
        ("bottom-to-top", "middle:0,0.5,1,0.5:bottom-to-top", ONE_WAY),
        ("right-to-left", "middle:0.5,0,0.5,1:right-to-left", ONE_WAY),
        ("left-right", "middle:0.5,0,0.5,1:left-to-right", BOTH_WAYS),
    ],
)
def test_a_crossings_video_names_its_line_and_its_truth_is_what_the_device_counts(
    direction, line, truth, tmp_path, capsys
):
    """Six boxes, two per class, of four kinds: across, across the other way (one way: the same way), stopping on
    the line, turning back after crossing (in, then out)."""
    argv = ["synth-video", "--out", str(tmp_path), "--name", "v", "--classes", ",".join(CLASSES), "--frames", "160"]
    argv += ["--width", "320", "--height", "180", "--scenario", "crossings", "--direction", direction]
    assert main(argv) == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)
    assert result["line"] == line
    assert result["true_counts"] == {"middle": truth}
    assert _tracked_counts(result["boxes"], line) == {"middle": truth}


@pytest.mark.parametrize("direction", CROSSING_DIRECTIONS)
def test_boxes_move_along_the_axis_asked(direction):
    spec = SynthSpec("x", CLASSES, frames=160, width=320, height=180, scenario="crossings", direction=direction)
    centres: dict[int, list[tuple[float, float]]] = {}
    for _, boxes in render(spec):
        for b in boxes:
            centres.setdefault(b["track_id"], []).append((b["left"] + b["width"] / 2, b["top"] + b["height"] / 2))
    across = 0 if direction in ("left-right", "left-to-right", "right-to-left") else 1
    for path in centres.values():
        spans = [max(p[axis] for p in path) - min(p[axis] for p in path) for axis in (0, 1)]
        assert spans[across] / (320, 180)[across] > 0.4 and spans[1 - across] / (320, 180)[1 - across] < 0.25


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--direction", "top-bottom"], "--direction top-bottom: applies to --scenario crossings"),
        (["--scenario", "crossings", "--frames", "50", "--classes", "a,b,c,d,e"], "at least 80 frames"),
    ],
)
def test_what_the_video_cannot_be_is_one_line_and_exit_2(args, said, tmp_path, capsys):
    argv = ["synth-video", "--out", str(tmp_path), "--name", "v", "--classes", "a,b", *args]
    assert main(argv) == 2
    assert said in capsys.readouterr().err and not list(tmp_path.iterdir())
