"""odctl preview-lines draws the lines (with the way in) and zones on the camera's own frame; a bad source, frame
or output is one line and exit 2 with nothing written."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from odctl.cli import main


def test_lines_and_zones_are_drawn_on_the_chosen_frame(small_video, tmp_path, capsys):
    video = small_video[0]
    out = tmp_path / "preview" / "line.png"
    argv = ["preview-lines", str(video), "--line", "door:0,0.5,1,0.5:top-to-bottom", "--out", str(out)]
    code = main([*argv, "--zone", "bay:0.1,0.1,0.4,0.1,0.4,0.4,0.1,0.4", "--frame", "5"])
    assert code == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)
    assert result["lines"][0]["in"] == "top-to-bottom"  # as said: the device reads the image's words for it
    drawn = cv2.imread(str(out))
    capture = cv2.VideoCapture(str(video))
    for _ in range(6):
        _, frame = capture.read()
    capture.release()
    difference = np.abs(drawn.astype(int) - frame.astype(int)).max(axis=2)
    height, width = difference.shape
    assert (difference[height // 2 - 1 : height // 2 + 2, :] > 40).mean() > 0.8  # the line across the middle
    zone = difference[int(0.15 * height) : int(0.35 * height), int(0.15 * width) : int(0.35 * width)]
    assert (zone > 8).mean() > 0.9  # the zone's tint over the whole of it


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{tmp}/none.mp4"], "none.mp4: no such file or folder"),
        (["{video}", "--frame", "999"], "--frame 999 is past the video's end"),
        (["{tmp}/empty", "--frame", "0"], "--frame 0 but the folder holds 0 images"),
        (["{video}", "--line", "door:0,0.5,1,0.5:left-to-right"], "runs along this line: say top-to-bottom"),
    ],
)
def test_bad_input_is_one_line_and_nothing_is_written(small_video, tmp_path, capsys, args, message):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "p.png"
    argv = [a.format(tmp=tmp_path, video=small_video[0]) for a in args]
    if "--line" not in argv:
        argv += ["--line", "door:0.5,0,0.5,1"]
    assert main(["preview-lines", *argv, "--out", str(out)]) == 2
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.startswith("odctl")]
    assert message in line and not out.exists()


@pytest.mark.parametrize(("word", "head_below"), [("top-to-bottom", True), ("bottom-to-top", False), ("", False)])
def test_the_arrow_points_to_the_side_the_counter_calls_in(word, head_below, tmp_path, capsys):
    """On a plain picture, the arrow's head and the label are drawn on the in-side: below a horizontal line for
    top-to-bottom; above it for bottom-to-top, and for no word on a line drawn left to right (the old default)."""
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((360, 640, 3), 90, np.uint8))
    out = tmp_path / "p.png"
    line = "door:0,0.5,1,0.5" + (f":{word}" if word else "")
    assert main(["preview-lines", str(folder), "--line", line, "--out", str(out)]) == 0, capsys.readouterr().err
    changed = np.abs(cv2.imread(str(out)).astype(int) - 90).max(axis=2) > 30
    above, below = changed[100:170, 300:640].sum(), changed[190:260, 300:640].sum()
    assert (below > 2 * above) if head_below else (above > 2 * below), (above, below)
    label = json.loads(capsys.readouterr().out)["lines"][0]
    assert label["in"] == (word or "bottom-to-top")


def test_an_image_that_cannot_be_read_is_named(tmp_path, capsys):
    broken = tmp_path / "camera.jpg"
    broken.write_bytes(b"not a picture")
    out = tmp_path / "p.png"
    assert main(["preview-lines", str(broken), "--line", "door:0.5,0,0.5,1", "--out", str(out)]) == 2
    assert "camera.jpg: OpenCV cannot read this image" in capsys.readouterr().err and not out.exists()
