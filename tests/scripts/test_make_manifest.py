"""make-manifest: frame order, sampling per video, name metadata, merging, S3 pagination, bad names."""

from __future__ import annotations

import json

import pytest

from odshared.core.errors import ManifestError
from odshared.data.input_manifest import NamePattern, PatternError, build_input_manifest, video_stem
from tests.helpers import put_keys_in_moto


def _frames(folder, stem, count):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"{stem}_{i:06d}.jpg").write_bytes(b"")
    return folder


def _read(path):
    return [json.loads(line) for line in open(path)]


def test_local_frames_in_order_sampled_per_video_with_metadata(tmp_path):
    blue = _frames(tmp_path / "blue", "blue_box_1", 10)
    yellow = _frames(tmp_path / "yellow", "yellow_box_1", 7)
    (blue / "notes.txt").write_text("ignored")
    out = tmp_path / "m.manifest"
    summary = build_input_manifest([str(blue), str(yellow)], str(out), every=3, pattern="{color}_{object}_{n}")
    lines = _read(out)
    assert [line["source-ref"].rsplit("/", 1)[1] for line in lines] == [
        "blue_box_1_000000.jpg",
        "blue_box_1_000003.jpg",
        "blue_box_1_000006.jpg",
        "blue_box_1_000009.jpg",
        "yellow_box_1_000000.jpg",
        "yellow_box_1_000003.jpg",
        "yellow_box_1_000006.jpg",
    ]
    assert lines[0] == {"source-ref": str(blue / "blue_box_1_000000.jpg"), "color": "blue", "object": "box"}
    assert lines[-1]["color"] == "yellow"
    assert summary.lines == 7 and summary.listed == 17


def test_a_relative_folder_gives_absolute_source_refs(tmp_path, monkeypatch):
    """The manifest is read later from another directory (or by a labeling tool): relative refs would break."""
    _frames(tmp_path / "frames", "blue_box_1", 2)
    monkeypatch.chdir(tmp_path)
    build_input_manifest(["frames"], "m.manifest")
    refs = [line["source-ref"] for line in _read(tmp_path / "m.manifest")]
    assert refs == [str(tmp_path / "frames" / f"blue_box_1_00000{i}.jpg") for i in range(2)]


def test_names_that_do_not_match_the_pattern(tmp_path):
    frames = _frames(tmp_path / "f", "blue_box_1", 2)
    (frames / "snapshot.jpg").write_bytes(b"")
    out = tmp_path / "m.manifest"
    with pytest.raises(ManifestError, match="'snapshot.jpg' does not match --metadata-from-name"):
        build_input_manifest([str(frames)], str(out), pattern="{color}_{object}_{n}")
    assert not out.exists()
    summary = build_input_manifest([str(frames)], str(out), pattern="{color}_{object}_{n}", skip_invalid=True)
    assert summary.lines == 2 and summary.invalid == 1
    rejected = _read(tmp_path / "rejected.jsonl")
    assert rejected[0]["raw"].endswith("snapshot.jpg")


@pytest.mark.parametrize(
    "pattern, error",
    [
        ("plain", "no {field}"),
        ("{a}_{a}", "appears twice"),
        ("{a-b}", "not a valid field name"),
        ("{a}_{b", "unbalanced"),
    ],
)
def test_bad_patterns(pattern, error):
    with pytest.raises(PatternError, match=error):
        NamePattern.compile(pattern)


def test_video_stem():
    assert video_stem("blue_box_1_000043.jpg") == "blue_box_1"
    assert video_stem("s.jpg") == "s"


@pytest.mark.integration
def test_s3_listing_over_10000_objects_to_s3_manifest(bucket):
    import boto3

    keys = [f"frames/blue_box_1/blue_box_1_{i:06d}.jpg" for i in range(10_050)]
    put_keys_in_moto(bucket, keys)
    out = f"s3://{bucket}/manifests/all.manifest"
    summary = build_input_manifest([f"s3://{bucket}/frames/blue_box_1"], out, every=10, pattern="{color}_{object}_{n}")
    assert summary.listed == 10_050 and summary.lines == 1_005
    body = boto3.client("s3").get_object(Bucket=bucket, Key="manifests/all.manifest")["Body"].read().decode()
    lines = [json.loads(x) for x in body.splitlines()]
    assert lines[1] == {
        "source-ref": f"s3://{bucket}/frames/blue_box_1/blue_box_1_000010.jpg",
        "color": "blue",
        "object": "box",
    }
    assert lines[-1]["source-ref"].endswith("blue_box_1_010040.jpg")


def test_a_folder_without_images_is_an_error_and_writes_nothing(tmp_path):
    from odshared.core.errors import OdError

    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "notes.txt").write_text("no frames")
    with pytest.raises(OdError, match="no image listed under"):
        build_input_manifest([str(tmp_path / "frames")], str(tmp_path / "m.manifest"))
    assert not (tmp_path / "m.manifest").exists()
