"""Generated videos: deterministic, with exact boxes that match what is drawn."""

from __future__ import annotations

import json

import cv2
import numpy as np

from odctl.synth_video import SynthSpec, class_colour, render


def test_same_seed_same_frames_and_boxes():
    spec = SynthSpec("x", ("blue box", "yellow box"), frames=30, width=160, height=90, seed=5)
    first = list(render(spec))
    second = list(render(spec))
    assert all(np.array_equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(first, second, strict=True))
    other = list(render(SynthSpec("x", ("blue box", "yellow box"), frames=30, width=160, height=90, seed=6)))
    assert any(a[1] != b[1] for a, b in zip(first, other, strict=True))


def test_scene_has_empty_frames_both_classes_and_scale_change():
    spec = SynthSpec("x", ("blue box", "yellow box"), frames=200, width=320, height=180, seed=2)
    frames = list(render(spec))
    counts = [len(boxes) for _, boxes in frames]
    assert counts[0] == 0 and 0 in counts[len(counts) // 3 :]  # empty at the start and again later
    classes = {box["class"] for _, boxes in frames for box in boxes}
    assert classes == {"blue box", "yellow box"}
    heights = [box["height"] for _, boxes in frames for box in boxes if box["class"] == "blue box"]
    assert max(heights) > 1.3 * min(heights)
    for _, boxes in frames:
        for box in boxes:
            assert box["left"] >= 0 and box["top"] >= 0 and box["width"] > 0 and box["height"] > 0
            assert box["left"] + box["width"] <= 320 and box["top"] + box["height"] <= 180


def test_boxes_cover_the_drawn_colour():
    spec = SynthSpec("x", ("blue box",), frames=60, width=320, height=180, seed=4)
    checked = 0
    for frame, boxes in render(spec):
        for box in boxes:
            patch = frame[box["top"] : box["top"] + box["height"], box["left"] : box["left"] + box["width"]]
            blue = np.all(np.abs(patch.astype(int) - class_colour("blue box")) < 80, axis=2)
            assert blue.mean() > 0.2
            checked += 1
    assert checked > 10


def test_written_video_decodes_with_one_boxes_line_per_frame(small_video):
    video, boxes, spec = small_video
    capture = cv2.VideoCapture(str(video))
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == spec.frames
    lines = [json.loads(x) for x in boxes.read_text().splitlines()]
    assert [line["frame"] for line in lines] == list(range(spec.frames))
    assert lines[0]["width"] == 320 and lines[0]["height"] == 180
