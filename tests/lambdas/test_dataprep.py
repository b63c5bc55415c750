"""prepare_training on the real seed manifests, on crafted edge cases, and through moto's S3."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from odshared.core.errors import ManifestError
from odshared.data.dataprep import ClassRule, PrepareError, PrepareOptions, flipped_ref, prepare_training, split
from odshared.data.groundtruth import parse_output_line
from tests.helpers import gt_line

SEEDS = (
    "blue-box-large-job.output.manifest",
    "blue-box-small-job.output.manifest",
    "yellow-box-small-job.output.manifest",
)
RULES = (ClassRule.parse("color=blue:blue box"), ClassRule.parse("color=yellow:yellow box"))


def _read(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_seed_jobs_join_with_classes_from_color(seed_dir, tmp_path):
    result = prepare_training([str(seed_dir / n) for n in SEEDS], str(tmp_path), PrepareOptions(class_rules=RULES))
    counts = result.counts
    assert counts["input_lines"] == 624 + 21 + 32
    assert counts["invalid_lines"] == 0 and counts["duplicate_images"] == 0
    # 36 + 2 + 1 seed lines have no box: dropped by default and counted
    assert counts["empty_images_dropped"] == 39
    assert counts["train_images"] + counts["validation_images"] == 677 - 39
    assert result.classes == ["blue box", "yellow box"]
    assert json.loads(Path(result.classes_json).read_text())["classes"] == ["blue box", "yellow box"]
    for line in _read(result.train_manifest) + _read(result.validation_manifest):
        color = line["color"]
        expected = 0 if color == "blue" else 1
        assert {a["class_id"] for a in line["bb"]["annotations"]} == {expected}
        assert line["bb-metadata"]["class-map"] == {str(expected): f"{color} box"}
    stats = json.loads(Path(result.stats_json).read_text())
    per_class = {
        c: stats["splits"]["train"]["boxes_per_class"][c] + stats["splits"]["validation"]["boxes_per_class"][c]
        for c in result.classes
    }
    yellow_boxes = sum(len(o["bb"]["annotations"]) for o in _read(seed_dir / SEEDS[2]))
    assert per_class["yellow box"] == yellow_boxes
    assert Path(result.stats_png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.to_dict()["num_training_samples"] == counts["train_images"]


def test_keep_empty_keeps_images_without_boxes(seed_dir, tmp_path):
    result = prepare_training(
        [str(seed_dir / SEEDS[2])],
        str(tmp_path),
        PrepareOptions(class_rules=RULES, keep_empty=True, validation_fraction=0.0),
    )
    lines = _read(result.train_manifest)
    assert len(lines) == 32
    empty = [line for line in lines if not line["bb"]["annotations"]]
    assert len(empty) == 1 and empty[0]["bb-metadata"]["objects"] == []


def test_min_confidence_drops_low_boxes(seed_dir, tmp_path):
    # the small blue job has 17 boxes at worker confidence 0.09 and 2 at 0.29
    result = prepare_training(
        [str(seed_dir / SEEDS[1])],
        str(tmp_path),
        PrepareOptions(class_rules=RULES, min_confidence=0.2, validation_fraction=0),
    )
    assert result.counts["low_confidence_boxes"] == 17
    lines = _read(result.train_manifest)
    assert len(lines) == 2
    assert all(o["confidence"] == 0.29 for line in lines for o in line["bb-metadata"]["objects"])
    # the large job has only 0.09 boxes: a 0.1 floor leaves nothing to train on
    with pytest.raises(PrepareError, match="no labeled image is left"):
        prepare_training(
            [str(seed_dir / SEEDS[0])], str(tmp_path / "x"), PrepareOptions(class_rules=RULES, min_confidence=0.1)
        )


def test_split_is_reproducible_and_disjoint(seed_dir, tmp_path):
    opts = PrepareOptions(class_rules=RULES, validation_fraction=0.2, seed=7)
    a = prepare_training([str(seed_dir / n) for n in SEEDS], str(tmp_path / "a"), opts)
    b = prepare_training([str(seed_dir / n) for n in SEEDS], str(tmp_path / "b"), opts)
    assert Path(a.train_manifest).read_text() == Path(b.train_manifest).read_text()
    train = {line["source-ref"] for line in _read(a.train_manifest)}
    val = {line["source-ref"] for line in _read(a.validation_manifest)}
    assert not train & val
    assert 0.12 < len(val) / (len(val) + len(train)) < 0.28
    other = prepare_training(
        [str(seed_dir / n) for n in SEEDS],
        str(tmp_path / "c"),
        PrepareOptions(class_rules=RULES, validation_fraction=0.2, seed=8),
    )
    assert {line["source-ref"] for line in _read(other.validation_manifest)} != val


def test_split_keeps_one_validation_image_for_tiny_sets():
    images = [parse_output_line(json.loads(gt_line(f"s3://b/{i}.jpg", [], {}))) for i in range(3)]
    train, val = split(images, 0.01, 1)
    assert len(val) == 1 and len(train) == 2


def test_discard_by_name_stem_or_uri(seed_dir, tmp_path):
    first = _read(seed_dir / SEEDS[1])
    names = [
        first[0]["source-ref"],
        first[1]["source-ref"].rsplit("/", 1)[1],
        first[2]["source-ref"].rsplit("/", 1)[1].rsplit(".", 1)[0],
    ]
    result = prepare_training(
        [str(seed_dir / SEEDS[1])],
        str(tmp_path),
        PrepareOptions(class_rules=RULES, discard=frozenset(names), keep_empty=True),
    )
    assert result.counts["discarded_images"] == 3
    kept = {line["source-ref"] for line in _read(result.train_manifest) + _read(result.validation_manifest)}
    assert len(kept) == 18 and first[0]["source-ref"] not in kept


def test_class_maps_that_differ_between_jobs_are_remapped_by_name(tmp_path):
    job_a = tmp_path / "a.manifest"
    job_b = tmp_path / "b.manifest"
    job_a.write_text(
        gt_line(
            "s3://b/1.jpg",
            [
                {"class_id": 0, "left": 1, "top": 1, "width": 5, "height": 5},
                {"class_id": 1, "left": 9, "top": 9, "width": 5, "height": 5},
            ],
            {"0": "cat", "1": "dog"},
        )
        + "\n"
    )
    job_b.write_text(
        gt_line("s3://b/2.jpg", [{"class_id": 0, "left": 1, "top": 1, "width": 5, "height": 5}], {"0": "dog"}) + "\n"
    )
    result = prepare_training(
        [str(job_a), str(job_b)], str(tmp_path / "out"), PrepareOptions(classes=("dog", "cat"), validation_fraction=0.0)
    )
    by_ref = {line["source-ref"]: line for line in _read(result.train_manifest)}
    assert [a["class_id"] for a in by_ref["s3://b/1.jpg"]["bb"]["annotations"]] == [1, 0]
    assert [a["class_id"] for a in by_ref["s3://b/2.jpg"]["bb"]["annotations"]] == [0]
    assert by_ref["s3://b/1.jpg"]["bb-metadata"]["class-map"] == {"0": "dog", "1": "cat"}


def test_later_job_wins_for_the_same_image(tmp_path):
    first, second = tmp_path / "1.manifest", tmp_path / "2.manifest"
    box = {"class_id": 0, "left": 1, "top": 1, "width": 5, "height": 5}
    first.write_text(gt_line("s3://b/1.jpg", [box], {"0": "a"}) + "\n")
    second.write_text(gt_line("s3://b/1.jpg", [dict(box, width=9)], {"0": "a"}) + "\n")
    result = prepare_training([str(first), str(second)], str(tmp_path / "o"), PrepareOptions(validation_fraction=0))
    assert result.counts["duplicate_images"] == 1
    assert _read(result.train_manifest)[0]["bb"]["annotations"][0]["width"] == 9


def _write_bad(tmp_path) -> Path:
    good = gt_line("s3://b/ok.jpg", [{"class_id": 0, "left": 1, "top": 1, "width": 5, "height": 5}], {"0": "a"})
    lines = [
        good,
        "{not json",
        json.dumps({"source-ref": "s3://b/nolabel.jpg"}),
        gt_line("s3://b/zero.jpg", [{"class_id": 0, "left": 1, "top": 1, "width": 0, "height": 5}], {"0": "a"}),
        gt_line("s3://b/out.jpg", [{"class_id": 0, "left": 90, "top": 1, "width": 50, "height": 5}], {"0": "a"}),
        gt_line("s3://b/unknown.jpg", [{"class_id": 0, "left": 1, "top": 1, "width": 5, "height": 5}], {"0": "zebra"}),
        gt_line("s3://b/ok2.jpg", [{"class_id": 0, "left": 2, "top": 2, "width": 5, "height": 5}], {"0": "a"}),
    ]
    path = tmp_path / "bad.manifest"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_invalid_lines_fail_and_write_nothing(tmp_path):
    path = _write_bad(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(ManifestError) as info:
        prepare_training([str(path)], str(out), PrepareOptions(classes=("a",)))
    message = str(info.value)
    assert "5 invalid manifest line(s)" in message
    for line, reason in (
        (2, "malformed JSON"),
        (3, "missing label attribute 'bb'"),
        (4, "annotation 0: zero-size box"),
        (5, "annotation 0: box [90, 1, 140, 6] is outside the 100x80 image"),
        (6, "annotation 0: unknown class 'zebra'"),
    ):
        assert f"{path}:{line}: {reason}" in message
    assert not out.exists()


def test_skip_invalid_keeps_valid_lines_and_reports_the_rest(tmp_path):
    path = _write_bad(tmp_path)
    result = prepare_training(
        [str(path)], str(tmp_path / "out"), PrepareOptions(classes=("a",), skip_invalid=True, validation_fraction=0)
    )
    assert [line["source-ref"] for line in _read(result.train_manifest)] == ["s3://b/ok.jpg", "s3://b/ok2.jpg"]
    rejected = _read(result.rejected)
    assert [r["line"] for r in rejected] == [2, 3, 4, 5, 6]
    assert rejected[0]["raw"] == "{not json" and all(r["source"] == str(path) for r in rejected)


def test_class_id_missing_from_class_map_without_rule_is_reported(tmp_path):
    path = tmp_path / "m.manifest"
    path.write_text(
        gt_line("s3://b/1.jpg", [{"class_id": 3, "left": 1, "top": 1, "width": 5, "height": 5}], {"0": "a"}) + "\n"
    )
    with pytest.raises(ManifestError, match=r"m.manifest:1: annotation 0: class_id 3 is not in the class-map"):
        prepare_training([str(path)], str(tmp_path / "o"))


def test_bad_options_are_rejected():
    with pytest.raises(PrepareError, match="KEY=VALUE:CLASS"):
        ClassRule.parse("color-blue")
    with pytest.raises(PrepareError, match="validation fraction"):
        PrepareOptions(validation_fraction=1.5)


def test_flip_mirrors_boxes_drawn_on_a_real_frame(seed_dir, tmp_path):
    """Paint the labelled box of a real frame pure red, flip through prepare_training, find the red box."""
    frame = np.array(Image.open(seed_dir / "blue_box_1_000133.jpg").convert("RGB"))
    height, width = frame.shape[:2]
    box = {"class_id": 0, "left": 300, "top": 200, "width": 400, "height": 250}
    frame[200:450, 300:700] = (255, 0, 0)
    image_path = tmp_path / "img" / "blue_box_1_000133.jpg"
    image_path.parent.mkdir()
    Image.fromarray(frame).save(image_path, quality=98)
    manifest = tmp_path / "m.manifest"
    manifest.write_text(
        gt_line(str(image_path), [box], {"0": "storage box"}, width=width, height=height, color="blue") + "\n"
    )
    result = prepare_training(
        [str(manifest)], str(tmp_path / "out"), PrepareOptions(class_rules=RULES, flip=True, validation_fraction=0)
    )
    lines = _read(result.train_manifest)
    assert len(lines) == 2 and result.counts["flipped_images"] == 1
    flipped = lines[1]
    expected_ref = str(image_path.parent / "blue_box_1_000133_flip.jpg")
    assert flipped["source-ref"] == flipped_ref(str(image_path)) == expected_ref
    ann = flipped["bb"]["annotations"][0]
    assert ann == {"class_id": 0, "left": width - 700, "top": 200, "width": 400, "height": 250}
    mirrored = np.array(Image.open(flipped["source-ref"]).convert("RGB")).astype(int)
    red = (mirrored[..., 0] > 200) & (mirrored[..., 1] < 60) & (mirrored[..., 2] < 60)
    ys, xs = np.nonzero(red)
    assert abs(xs.min() - ann["left"]) <= 2 and abs(xs.max() + 1 - (ann["left"] + ann["width"])) <= 2
    assert abs(ys.min() - ann["top"]) <= 2 and abs(ys.max() + 1 - (ann["top"] + ann["height"])) <= 2
    # resumable: a second run reuses the flipped image
    before = Path(flipped["source-ref"]).stat().st_mtime_ns
    prepare_training(
        [str(manifest)], str(tmp_path / "out2"), PrepareOptions(class_rules=RULES, flip=True, validation_fraction=0)
    )
    assert Path(flipped["source-ref"]).stat().st_mtime_ns == before


def test_flip_reads_from_images_and_writes_to_flip_to(seed_dir, tmp_path):
    """The seed job's images live in a bucket nobody here can write: read the copies given by --images, write the
    mirrored ones under --flip-to, and the training manifest names them there."""
    from tests.helpers import seed_manifest_local

    manifest = seed_manifest_local(seed_dir, "blue-box-large-job.output.manifest", tmp_path)  # refs: the S3 bucket
    keep = [line for line in manifest.read_text().splitlines() if "blue_box_1_000133.jpg" in line]
    manifest.write_text("\n".join(keep) + "\n")
    flips = tmp_path / "flips"
    result = prepare_training(
        [str(manifest)],
        str(tmp_path / "out"),
        PrepareOptions(class_rules=RULES, flip=True, validation_fraction=0, flip_to=str(flips), images=str(seed_dir)),
    )
    refs = [line["source-ref"] for line in _read(result.train_manifest)]
    assert refs[0].startswith("s3://gg-sagemaker-object-detection-blog/") and refs[1] == str(
        flips / "blue_box_1_000133_flip.jpg"
    )
    assert Image.open(refs[1]).size == Image.open(seed_dir / "blue_box_1_000133.jpg").size


def test_flip_rejects_labels_whose_size_disagrees_with_the_image(seed_dir, tmp_path):
    manifest = tmp_path / "m.manifest"
    manifest.write_text(
        gt_line(
            str(seed_dir / "blue_box_1_000133.jpg"),
            [{"class_id": 0, "left": 1, "top": 1, "width": 5, "height": 5}],
            {"0": "a"},
            width=640,
            height=480,
        )
        + "\n"
    )
    with pytest.raises(PrepareError, match="image is 1920x1080 but its labels say 640x480"):
        prepare_training([str(manifest)], str(tmp_path / "o"), PrepareOptions(flip=True, validation_fraction=0))


def test_rules_and_filters_that_match_nothing(seed_dir, tmp_path, caplog):
    manifest = str(seed_dir / "blue-box-small-job.output.manifest")
    with pytest.raises(PrepareError, match="--class-from colour=blue:blue box: no line has the key 'colour'"):
        prepare_training(
            [manifest], str(tmp_path / "a"), PrepareOptions(class_rules=(ClassRule.parse("colour=blue:blue box"),))
        )
    assert not (tmp_path / "a").exists()  # nothing partial
    caplog.set_level("WARNING")
    options = PrepareOptions(
        class_rules=(*RULES, ClassRule.parse("color=green:green box")),
        discard=frozenset({"no_such_frame.jpg"}),
        classes=("blue box", "yellow box", "green box"),
    )
    prepare_training([manifest], str(tmp_path / "b"), options)
    text = " ".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
    assert "prepare.rule_matched_nothing" in text and "color=green" in text
    assert "prepare.discard_unmatched" in text and "no_such_frame.jpg" in text
    assert "prepare.classes_without_boxes" in text and "green box" in text


def test_labels_pointing_where_the_frames_are_not_are_one_line_naming_images(tmp_path, capsys):
    """Red before: without --flip nothing read the images, so a manifest whose frames were elsewhere exited 0 and
    training failed later, far from the cause."""
    from odctl.cli import main

    frames = tmp_path / "frames"
    frames.mkdir()
    box = {"class_id": 0, "left": 10, "top": 10, "width": 30, "height": 30}
    lines = []
    for n in range(3):
        Image.new("RGB", (100, 80)).save(frames / f"f{n}.jpg")
        lines.append(gt_line(f"/elsewhere/f{n}.jpg", [dict(box)], {"0": "blue box"}))
    manifest = tmp_path / "output.manifest"
    manifest.write_text("\n".join(lines) + "\n")
    out = tmp_path / "prepared"
    assert main(["prepare-training", str(manifest), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "/elsewhere/f" in err and "3 of 3 labeled images missing" in err and "--images DIR" in err
    assert "Traceback" not in err and not out.exists()
    assert main(["prepare-training", str(manifest), "--out", str(out), "--images", str(frames)]) == 0


def test_the_same_frames_under_another_root_split_the_same_way():
    """Red before: the split hashed the whole path, so every new work folder (and every pytest session's tmp
    folder) trained on another split: another model, other figures."""
    names = [f"video_{v}/video_{v}_{n:06d}.jpg" for v in range(3) for n in range(40)]

    def held_out(root: str) -> list[str]:
        images = [parse_output_line(json.loads(gt_line(f"{root}/{name}", [], {}))) for name in names]
        return [image.source_ref.removeprefix(root) for image in split(images, 0.2, 42)[1]]

    assert held_out("/tmp/run-1/frames") == held_out("/home/me/demo-work/frames") == held_out("s3://b/frames")
    assert held_out("/tmp/run-1/frames")
