"""preview-manifest and show-labels on real seed frames."""

from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest

from odctl.previews import preview_manifest, show_labels
from odshared.core.errors import ManifestError
from tests.helpers import gt_line


def _local_manifest(seed_dir, tmp_path):
    lines = [
        gt_line(
            str(seed_dir / "blue_box_1_000133.jpg"),
            [{"class_id": 0, "left": 600, "top": 500, "width": 500, "height": 400, "confidence": 0.29}],
            {"0": "storage box"},
            width=1920,
            height=1080,
        ),
        gt_line(str(seed_dir / "yellow_box_1_000086.jpg"), [], {}, width=1920, height=1080),
    ]
    path = tmp_path / "out.manifest"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_show_labels_draws_boxes_where_the_labels_say(seed_dir, tmp_path):
    manifest = _local_manifest(seed_dir, tmp_path)
    summary = show_labels(str(manifest), str(tmp_path / "labels"))
    assert summary["written"] == 2
    drawn = cv2.imread(str(tmp_path / "labels" / "blue_box_1_000133.labels.jpg")).astype(int)
    original = cv2.imread(str(seed_dir / "blue_box_1_000133.jpg")).astype(int)
    changed = np.abs(drawn - original).sum(axis=2) > 60
    assert changed[700, 598:603].any() and changed[700, 1098:1103].any()  # left and right edges of the box
    assert not changed[200:300, 100:200].any()  # far from the box nothing is drawn
    assert cv2.imread(str(tmp_path / "labels" / "grid.png")) is not None


def test_show_labels_rejects_bad_lines_unless_skipped(seed_dir, tmp_path):
    manifest = _local_manifest(seed_dir, tmp_path)
    manifest.write_text(manifest.read_text() + "{broken\n")
    with pytest.raises(ManifestError, match=r"out.manifest:3: malformed JSON"):
        show_labels(str(manifest), str(tmp_path / "l"))
    summary = show_labels(str(manifest), str(tmp_path / "l"), skip_invalid=True)
    assert summary["invalid_lines"] == 1
    assert json.loads((tmp_path / "l" / "rejected.jsonl").read_text())["line"] == 3


def test_preview_manifest_grid(seed_dir, tmp_path):
    manifest = tmp_path / "in.manifest"
    manifest.write_text(
        "".join(
            json.dumps({"source-ref": str(seed_dir / n)}) + "\n"
            for n in ("blue_box_1_000133.jpg", "yellow_box_1_000086.jpg", "missing.jpg")
        )
    )
    summary = preview_manifest(str(manifest), str(tmp_path / "grid.png"))
    assert summary == {"out": str(tmp_path / "grid.png"), "lines": 3, "shown": 2, "invalid_lines": 0}
    grid = cv2.imread(str(tmp_path / "grid.png"))
    assert grid.shape[1] == 2 * 244


def test_preview_manifest_from_s3(seed_dir, bucket, tmp_path):
    import boto3

    s3 = boto3.client("s3")
    s3.upload_file(str(seed_dir / "blue_box_1_000133.jpg"), bucket, "f/blue_box_1_000133.jpg")
    s3.put_object(
        Bucket=bucket,
        Key="m.manifest",
        Body=json.dumps({"source-ref": f"s3://{bucket}/f/blue_box_1_000133.jpg"}) + "\n",
    )
    summary = preview_manifest(f"s3://{bucket}/m.manifest", f"s3://{bucket}/preview.png")
    assert summary["shown"] == 1
    assert s3.head_object(Bucket=bucket, Key="preview.png")["ContentType"] == "image/png"


def test_no_readable_image_is_an_error_that_says_where_to_look(seed_dir, tmp_path, capsys):
    """The seed job's 624 frames live in the original project's bucket: with none readable, one line and exit 2
    (not a grid that says 'no images' and exit 0); --images points at where the files are."""
    from odctl.cli import main
    from tests.helpers import seed_manifest_local

    manifest = seed_manifest_local(seed_dir, "blue-box-large-job.output.manifest", tmp_path, tmp_path / "nowhere")
    assert main(["show-labels", str(manifest), "--out", str(tmp_path / "labels")]) == 2
    err = capsys.readouterr().err
    assert "none of its 624 images could be read" in err and "--images" in err
    assert len([line for line in err.splitlines() if "preview.image_unreadable" in line]) == 5
    assert '"count": 624, "more": "and 619 more"' in err
    assert not (tmp_path / "labels" / "grid.png").exists()
    assert main(["preview-manifest", str(manifest), "--out", str(tmp_path / "p.png")]) == 2
    assert not (tmp_path / "p.png").exists()
    capsys.readouterr()
    assert main(["show-labels", str(manifest), "--out", str(tmp_path / "labels"), "--images", str(seed_dir)]) == 0
    assert json.loads(capsys.readouterr().out)["written"] == 1  # the one seed frame of that job shipped here


def _undecodable(folder, count: int) -> list:
    """Files named like frames that are not images: text, an empty file, a JPEG cut after its header."""
    folder.mkdir(exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"broken_{i:06d}.jpg"
        path.write_bytes([b"not a picture", b"", b"\xff\xd8\xff\xe0\x00\x10JFIF"][i % 3])
        paths.append(path)
    return paths


def test_undecodable_images_are_named_in_warnings_then_counted(seed_dir, tmp_path, caplog):
    broken = _undecodable(tmp_path / "broken", 7)
    good = [seed_dir / "blue_box_1_000133.jpg", seed_dir / "yellow_box_1_000086.jpg"]
    manifest = tmp_path / "in.manifest"
    manifest.write_text("".join(json.dumps({"source-ref": str(p)}) + "\n" for p in [good[0], *broken, good[1]]))
    with caplog.at_level(logging.WARNING, logger="odctl.previews"):
        summary = preview_manifest(str(manifest), str(tmp_path / "grid.png"))
    assert summary["shown"] == 2 and summary["lines"] == 9
    named = [r.__dict__["fields"] for r in caplog.records if r.getMessage() == "preview.image_unreadable"]
    assert [f["uri"] for f in named] == [str(p) for p in broken[:5]]  # each of the first five, by name
    assert all(f["error"].startswith("not a decodable image") for f in named)
    [rest] = [r.__dict__["fields"] for r in caplog.records if r.getMessage() == "preview.images_unreadable"]
    assert rest == {"count": 7, "more": "and 2 more"}
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.getMessage().startswith("preview.image"))


def test_no_decodable_image_is_one_line_and_exit_2(tmp_path, capsys):
    from odctl.cli import main

    broken = _undecodable(tmp_path / "broken", 3)
    manifest = tmp_path / "in.manifest"
    manifest.write_text("".join(json.dumps({"source-ref": str(p)}) + "\n" for p in broken))
    assert main(["preview-manifest", str(manifest), "--out", str(tmp_path / "grid.png")]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("odctl ")]
    assert errors == [
        f"odctl preview-manifest: error: {manifest}: none of its 3 images could be decoded (first: {broken[0]}: not a "
        "decodable image (13 bytes)); they are not image files (JPEG, PNG): fix the files or the manifest's lines"
    ]
    assert not (tmp_path / "grid.png").exists()
