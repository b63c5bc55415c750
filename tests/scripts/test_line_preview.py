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
    assert result["lines"][0]["in"] == "right-to-left"  # the line's own word for a move down the picture
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
