"""The ingestion Lambdas against moto server on generated videos: frames, names, manifest part, contact sheet; a
corrupt video fails naming itself while the others succeed; a re-run redoes nothing; the merge keeps video order."""

from __future__ import annotations

import json

import boto3
import pytest

from odctl.synth_video import SynthSpec, write_video
from tests.helpers import load_handler_module

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    made = {}
    for name, frames in (("blue_box_1", 30), ("yellow_box_2", 20)):
        video, _ = write_video(
            SynthSpec(name, ("blue box", "yellow box"), frames=frames, width=320, height=180), folder
        )
        made[name] = video
    corrupt = folder / "broken_cam_3.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    made["broken_cam_3"] = corrupt
    return made


def _items(bucket: str, prefix: str) -> list[dict]:
    """What the Distributed Map's ItemReader hands each item: ListObjectsV2's entries."""
    return boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]


def _event(bucket: str, item: dict) -> dict:
    return {
        "item": {k: str(v) for k, v in item.items()},
        "bucket": bucket,
        "sampling": {"every": 5},
        "frames_prefix": f"s3://{bucket}/frames",
        "output_prefix": f"s3://{bucket}/ingest/run-1",
        "metadata_from_name": "{color}_{object}_{n}",
    }


def test_videos_to_frames_parts_sheets_and_one_manifest(videos, bucket):
    s3 = boto3.client("s3")
    for path in videos.values():
        s3.upload_file(str(path), bucket, f"videos/{path.name}")
    s3.put_object(Bucket=bucket, Key="videos/notes.txt", Body=b"not a video")
    extract = load_handler_module("extract_video")
    results, failures = {}, {}
    for item in _items(bucket, "videos/"):
        try:
            results[item["Key"]] = extract.handler(_event(bucket, item))
        except Exception as exc:  # the map records it; the others go on
            failures[item["Key"]] = f"{type(exc).__name__}: {exc}"
    assert set(failures) == {"videos/broken_cam_3.mp4"}, failures
    assert (
        "broken_cam_3.mp4" in failures["videos/broken_cam_3.mp4"]
        and "cannot be opened" in failures["videos/broken_cam_3.mp4"]
    )
    assert results["videos/notes.txt"]["status"] == "skipped"
    blue = results["videos/blue_box_1.mp4"]
    assert blue["status"] == "done" and blue["lines"] == 6 and blue["frames_in_video"] == 30
    keys = {o["Key"] for o in _items(bucket, "frames/blue_box_1/")}
    assert keys == {f"frames/blue_box_1/blue_box_1_{i:06d}.jpg" for i in range(0, 30, 5)}
    part = s3.get_object(Bucket=bucket, Key="ingest/run-1/parts/blue_box_1.manifest")["Body"].read().decode()
    first = json.loads(part.splitlines()[0])
    assert first == {
        "source-ref": f"s3://{bucket}/frames/blue_box_1/blue_box_1_000000.jpg",
        "color": "blue",
        "object": "box",
    }
    sheet = s3.get_object(Bucket=bucket, Key="ingest/run-1/sheets/blue_box_1.png")["Body"].read()
    assert sheet.startswith(b"\x89PNG")

    # a re-run redoes nothing
    before = {o["Key"]: o["ETag"] for o in _items(bucket, "frames/")}
    again = extract.handler(
        _event(bucket, next(i for i in _items(bucket, "videos/") if i["Key"].endswith("blue_box_1.mp4")))
    )
    assert again["status"] == "unchanged"
    assert {o["Key"]: o["ETag"] for o in _items(bucket, "frames/")} == before

    merged = load_handler_module("merge_manifest").handler({"output_prefix": f"s3://{bucket}/ingest/run-1"})
    manifest = s3.get_object(Bucket=bucket, Key="ingest/run-1/labeling.manifest")["Body"].read().decode().splitlines()
    refs = [json.loads(line)["source-ref"].rsplit("/", 1)[1] for line in manifest]
    assert refs == [f"blue_box_1_{i:06d}.jpg" for i in range(0, 30, 5)] + [
        f"yellow_box_2_{i:06d}.jpg" for i in range(0, 20, 5)
    ]
    assert {k: merged[k] for k in ("manifest", "videos", "lines")} == {
        "manifest": f"s3://{bucket}/ingest/run-1/labeling.manifest",
        "videos": 2,
        "lines": 10,
    }
    (failed,) = merged["failed"]  # recorded by the failing invocation itself
    assert failed["video"] == f"s3://{bucket}/videos/broken_cam_3.mp4" and "cannot be opened" in failed["cause"]


def test_a_video_larger_than_the_ephemeral_storage_fails_naming_the_limit(bucket, monkeypatch, tmp_path):
    from odshared.data import ingest

    boto3.client("s3").put_object(Bucket=bucket, Key="videos/huge.mp4", Body=b"0" * 4096)
    monkeypatch.setattr(ingest.shutil, "disk_usage", lambda _: type("Usage", (), {"free": 1024})())
    request = ingest.IngestVideo(f"s3://{bucket}/videos/huge.mp4", f"s3://{bucket}/frames", f"s3://{bucket}/ingest/r")
    with pytest.raises(
        ingest.IngestError, match="huge.mp4 is 0 MiB but the ExtractVideo function has 0 MiB of ephemeral"
    ):
        ingest.ingest_video(request, workdir=str(tmp_path))


def test_a_warm_function_keeps_no_video_in_its_tmp(videos, bucket, monkeypatch, tmp_path):
    """Each download lives in a folder of its own, removed after the video, failed ones too: a warm Lambda's
    /tmp (8 GB here) would otherwise fill with every video it processed."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the handler's workdir: tempfile.gettempdir()
    s3 = boto3.client("s3")
    for path in videos.values():
        s3.upload_file(str(path), bucket, f"videos/{path.name}")
    extract = load_handler_module("extract_video")
    for item in _items(bucket, "videos/"):
        try:
            extract.handler(_event(bucket, item))
        except Exception:  # noqa: S110 - the corrupt video fails; its download must still be gone
            pass
    assert list(tmp_path.iterdir()) == []
