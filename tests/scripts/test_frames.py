"""extract-frames: naming, sampling, resuming, previews, S3 output and unreadable videos."""

from __future__ import annotations

import boto3
import cv2
import pytest

from odshared.core.errors import InputDataError, OdError, StorageError
from odshared.data.frames import extract_frames


def test_every_n_names_frames_after_the_video(small_video, tmp_path):
    video, _, spec = small_video
    summary = extract_frames(str(video), str(tmp_path / "f"), every=5, preview=str(tmp_path / "p.png"))
    names = sorted(p.name for p in (tmp_path / "f").iterdir())
    assert names == [f"blue_box_1_{i:06d}.jpg" for i in range(0, spec.frames, 5)]
    assert summary.frames_in_video == spec.frames and summary.written == len(names)
    image = cv2.imread(str(tmp_path / "f" / names[1]))
    assert image.shape == (180, 320, 3)
    preview = cv2.imread(str(tmp_path / "p.png"))
    assert preview is not None and preview.shape[0] > 100


def test_fps_sampling(small_video, tmp_path):
    video, _, spec = small_video
    extract_frames(str(video), str(tmp_path), fps=2.0)  # video is 10 fps -> every 5th frame
    assert len(list(tmp_path.glob("*.jpg"))) == spec.frames // 5


def test_resume_skips_frames_already_present(small_video, tmp_path):
    video, _, _ = small_video
    first = extract_frames(str(video), str(tmp_path), every=4)
    (tmp_path / "blue_box_1_000008.jpg").unlink()
    second = extract_frames(str(video), str(tmp_path), every=4)
    assert second.written == 1 and second.skipped_existing == first.written - 1


def test_upload_to_s3_and_resume(small_video, bucket):
    video, _, spec = small_video
    out = f"s3://{bucket}/frames/blue_box_1"
    summary = extract_frames(str(video), out, every=2, workers=4)
    keys = [o["Key"] for o in boxes3(bucket)]
    assert len(keys) == spec.frames // 2 == summary.written
    assert keys[0] == "frames/blue_box_1/blue_box_1_000000.jpg"
    again = extract_frames(str(video), out, every=2)
    assert again.written == 0 and again.skipped_existing == summary.written


def test_video_read_from_s3(small_video, bucket, tmp_path):
    video, _, spec = small_video
    boto3.client("s3").upload_file(str(video), bucket, "videos/blue_box_1.mp4")
    extract_frames(f"s3://{bucket}/videos/blue_box_1.mp4", str(tmp_path), every=10)
    assert sorted(p.name for p in tmp_path.iterdir())[0] == "blue_box_1_000000.jpg"


def boxes3(bucket):
    return boto3.client("s3").list_objects_v2(Bucket=bucket)["Contents"]


def test_unreadable_video_is_named(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video")
    with pytest.raises(InputDataError, match="broken.mp4"):
        extract_frames(str(bad), str(tmp_path / "out"))
    with pytest.raises(InputDataError, match="missing.mp4: no such video file"):
        extract_frames(str(tmp_path / "missing.mp4"), str(tmp_path / "out"))


def test_missing_destination_bucket(small_video, aws):
    with pytest.raises(StorageError, match="bucket 'absent-bucket' does not exist"):
        extract_frames(str(small_video[0]), "s3://absent-bucket/frames")


def test_every_and_fps_are_exclusive(small_video, tmp_path):
    with pytest.raises(OdError, match="--every or --fps"):
        extract_frames(str(small_video[0]), str(tmp_path), every=2, fps=1.0)
