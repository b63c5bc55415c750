"""record: a file stands in for the camera; stops at --seconds or at the end of the stream."""

from __future__ import annotations

import cv2
import pytest

from odctl.record import record
from odshared.core.errors import InputDataError


def test_record_until_end_of_stream(small_video, tmp_path):
    video, _, spec = small_video
    summary = record(str(video), "blue_box_2", str(tmp_path))
    assert summary.frames == spec.frames and summary.stopped_by == "end of stream"
    capture = cv2.VideoCapture(str(tmp_path / "blue_box_2.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == spec.frames
    assert not list(tmp_path.glob("*.part*"))


def test_record_stops_after_seconds(small_video, tmp_path):
    summary = record(str(small_video[0]), "short", str(tmp_path), seconds=0.0)
    assert summary.stopped_by == "--seconds" and summary.frames == 1


def test_unreachable_camera(tmp_path):
    with pytest.raises(InputDataError, match="rtsp://127.0.0.1:9/none"):
        record("rtsp://127.0.0.1:9/none", "x", str(tmp_path))


def test_seconds_of_a_file_are_video_seconds(small_video, tmp_path):
    """A file is read as fast as it decodes: --seconds counts its frames at its frame rate, not wall-clock time."""
    video, _, spec = small_video
    summary = record(str(video), "part", str(tmp_path), seconds=1.0)
    assert summary.stopped_by == "--seconds" and summary.frames == round(spec.fps)
    assert summary.seconds == pytest.approx(1.0)


def test_an_existing_recording_is_not_overwritten(small_video, tmp_path):
    record(str(small_video[0]), "take", str(tmp_path))
    before = (tmp_path / "take.mp4").read_bytes()
    with pytest.raises(InputDataError, match="take.mp4: a recording of that name exists; .* --overwrite"):
        record(str(small_video[0]), "take", str(tmp_path), seconds=0.0)
    assert (tmp_path / "take.mp4").read_bytes() == before
    assert record(str(small_video[0]), "take", str(tmp_path), seconds=0.0, overwrite=True).frames == 1
