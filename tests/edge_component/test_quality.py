"""A weak model is named before its counts are trusted (#25): the recorded validation score under its floor, a
flood of tracks, the detect summary's totals and warnings; low boxes carry only well-established tracks."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

from odedge.counting import Counter, Line
from odedge.postprocess import Detection
from odedge.quality import ModelQuality
from odedge.tracking import Tracker


def _box(x: float, score: float = 0.9, label: str = "blue box", y: float = 180) -> Detection:
    return Detection(label, 0, score, (int(x - 30), int(y - 30), int(x + 30), int(y + 30)), None)


def test_a_recorded_score_under_the_floor_is_named_once(caplog):
    caplog.set_level(logging.WARNING, logger="odedge.quality")
    weak = ModelQuality(floor=0.6, flood=0.2)
    weak.check_recorded(0.53)
    assert "validation mAP 0.53 is under 0.60" in weak.warning
    assert [r.getMessage() for r in caplog.records] == ["model.weak"]
    for recorded in (0.6, 0.91, None):  # at the floor, above it, or nothing recorded (a SageMaker artifact)
        fine = ModelQuality(floor=0.6, flood=0.2)
        fine.check_recorded(recorded)
        assert fine.warning == ""


def _noise(rng: np.random.Generator, count: int) -> list[Detection]:
    """A weak model's false boxes: strong-looking, anywhere, never in the same place twice."""
    return [_box(float(rng.uniform(40, 600)), 0.6, y=float(rng.uniform(40, 320))) for _ in range(count)]


def test_a_flood_of_new_tracks_names_the_model_and_a_steady_scene_does_not():
    rng = np.random.default_rng(7)
    tracker, quality = Tracker(high=0.5, low=0.1, max_lost=30), ModelQuality(0.6, 0.2)
    for _ in range(200):  # false boxes that sometimes repeat close enough to confirm a track
        boxes = _noise(rng, 12)
        tracker.update(boxes + [_box(b.box[0] + 32, 0.6, y=b.box[1] + 32) for b in boxes[:6]])
        tracker.update(boxes)
        quality.observe(tracker.confirmed_now)
    assert "tracks flood" in quality.warning
    steady_tracker, steady = Tracker(high=0.5, low=0.1, max_lost=30), ModelQuality(0.6, 0.2)
    for step in range(300):  # three boxes crossing the frame, a new one every 100 frames
        boxes = [
            _box(40 + (step - start) * 5.0, y=80 + 90 * k) for k, start in enumerate((0, 100, 200)) if step >= start
        ]
        steady_tracker.update(boxes)
        steady.observe(steady_tracker.confirmed_now)
    assert steady.warning == ""


def test_low_boxes_continue_only_well_established_tracks():
    young = Tracker(high=0.5, low=0.1, max_lost=10)
    for step in range(2):  # seen strongly twice: confirmed, not established
        young.update([_box(100 + 10 * step)])
    carried = [young.update([_box(120 + 10 * step, 0.3)]) for step in range(5)]
    assert all(not frame for frame in carried)  # the weak boxes around a young track are not it
    old = Tracker(high=0.5, low=0.1, max_lost=10)
    ids = {d.track_id for step in range(6) for d in old.update([_box(100 + 10 * step)])} - {None}
    kept = [old.update([_box(160 + 10 * step, 0.3)]) for step in range(5)]
    assert {d.track_id for frame in kept for d in frame} == ids  # an established track dips and is kept


def test_a_track_left_on_weak_boxes_alone_ends_before_it_drifts_over_a_line():
    """A duplicate box outlived its object (a second, oversized box of it, kept by NMS at low overlap): the track
    it made is established, then only the weak boxes left where the object was carry it, drifting over the door.
    It takes ``max_weak`` of them, then no more until a strong box comes back, so it is not counted again."""
    door = Line("door", (0.5, 0.0), (0.5, 1.0), "left-to-right")
    tracker, counter = Tracker(high=0.5, low=0.1, max_lost=10, max_weak=10), Counter([door], [])
    events, carried = [], []
    for step in range(8):  # seen strongly, up to 80 px before the door (x = 320)
        events += counter.observe(tracker.update([_box(100 + 20 * step)]), (640, 360), float(step))
    for step in range(1, 41):  # then weak boxes only, drifting over it
        frame = tracker.update([_box(240 + 5 * step, 0.3)])
        carried.append(bool(frame))
        events += counter.observe(frame, (640, 360), float(8 + step))
    assert events == []
    assert carried[:10] == [True] * 10 and not any(carried[10:])  # what ended it: the cap, not a missing box


@pytest.mark.integration
def test_detect_names_a_weak_model_and_sums_its_crossings(scene, tmp_path, capsys):
    """A package whose recorded validation mAP (as the scoring step records it) is under the floor: detect's
    summary and every health message say so; the summary carries the line's totals."""
    from odctl.cli import main
    from odshared.model.package import update_manifest

    good = json.loads((scene["package"] / "model.json").read_text())["validation"]
    assert good["source"] == "training" and good["mAP"] > 0.6  # local training recorded its best epoch's score
    weak = tmp_path / "weak"
    shutil.copytree(scene["package"], weak)
    update_manifest(str(weak), {"validation": {"mAP": 0.45, "source": "scoring"}})
    line = "door:0.5,0,0.5,1"
    for package, out in ((scene["package"], tmp_path / "good.jsonl"), (weak, tmp_path / "weak.jsonl")):
        assert main(["detect", str(scene["video"]), "--model", str(package), "--line", line, "--out", str(out)]) == 0
        summary = json.loads(capsys.readouterr().out)
        health = [json.loads(r)["message"] for r in out.read_text().splitlines() if "/health" in r]
        totals = health[-1]["counts"]["lines"]["door"]
        assert summary["counts"]["door"] == totals and sum(totals["in"].values()) >= 1
        if package == weak:
            assert "validation mAP 0.45 is under 0.60" in summary["warnings"][0]
            assert all("validation mAP 0.45" in h["model_warning"] for h in health)
        else:
            assert "warnings" not in summary and all("model_warning" not in h for h in health)
