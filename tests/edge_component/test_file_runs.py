"""``odctl detect`` over recorded footage, as a newcomer's first hour runs it: the output folders are made, a file
cut short is said and still stands, every message carries the file's own clock (so ``odctl counts --by hour``
means hours of the footage) while a stream keeps the wall clock, and each zone's story over the run is in the
summary. The real loop, the scene's real model, real video files; each step fed what the step before produced."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections import Counter as Tally
from datetime import datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import cv2
import pytest

from odctl.cli import main
from odedge.counting import Counter, Zone
from odedge.messages import iso
from odedge.telemetry import ZoneVisits
from tests.edge_component.test_counting import SIZE, _box
from tests.edge_component.test_detect_cli import _avi

START = "2026-03-01T07:59:54Z"  # the scene's 12 s then straddle 08:00: counts by hour split at the footage's hour
FPS = 10.0  # the scene's frame rate (odctl.synth_video)
LEFT_HALF = "left:0,0,0.5,0,0.5,1,0,1"


def _detect(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict | None, str]:
    code = main(["detect", *argv])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def _messages(path, kind: str) -> list[dict]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [line["message"] for line in lines if line["topic"].endswith("/" + kind)]


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _events(err: str, name: str) -> list[dict]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{") and f'"{name}"' in line]


@pytest.mark.integration
def test_out_snapshots_and_counts_file_in_folders_not_made_yet(scene, tmp_path, capsys):
    out, shots = tmp_path / "out" / "run-1" / "door.jsonl", tmp_path / "shots" / "door"
    counts = tmp_path / "state" / "door" / "counts.json"
    argv = ["--out", str(out), "--snapshots", str(shots), "--counts-file", str(counts), "--line", "middle:0.5,0,0.5,1"]
    code, summary, err = _detect(
        capsys, str(scene["video"]), "--model", str(scene["package"]), "--max-frames", "20", *argv
    )
    assert code == 0 and "Traceback" not in err, err
    assert summary is not None and summary["frames"] == 20
    detections = _messages(out, "detections")
    assert len(detections) == sum(1 for m in detections if m["detections"]) and detections  # frames with boxes
    assert len(list(shots.glob("*.jpg"))) == len(detections)  # one annotated frame for each (interval 0)
    assert counts.parent.is_dir()


@pytest.mark.integration
def test_a_file_cut_short_is_said_and_the_run_still_stands(scene, tmp_path, capsys):
    """An AVI whose header says 60 frames, cut to half its bytes: exit 0, the summary says how much was read (a
    warning event too); the whole file says nothing."""
    whole, cut = tmp_path / "whole.avi", tmp_path / "cut.avi"
    _avi(scene["video"], whole, 60)
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    declared = int(cv2.VideoCapture(str(cut)).get(cv2.CAP_PROP_FRAME_COUNT))
    assert declared == 60  # the header still promises the whole
    code, summary, err = _detect(capsys, str(cut), "--model", str(scene["package"]), "--out", str(tmp_path / "m.jsonl"))
    assert code == 0, err
    assert summary is not None and 0 < summary["frames"] < 40 and summary["stopped_by"] == "end of source"
    said = f"{cut}: read {summary['frames']} of 60 frames: the file is cut short or damaged"
    assert [w for w in summary["warnings"] if "cut short" in w] == [said]
    (event,) = _events(err, "source.incomplete")
    assert event["level"] == "WARNING" and (event["read"], event["declared"]) == (summary["frames"], 60)
    code, summary, err = _detect(
        capsys, str(whole), "--model", str(scene["package"]), "--out", str(tmp_path / "w.jsonl")
    )
    assert code == 0 and summary is not None and summary["frames"] == 60, err
    assert not [w for w in summary.get("warnings", []) if "cut short" in w] and not _events(err, "source.incomplete")


@pytest.mark.integration
def test_every_message_carries_the_videos_own_clock_and_counts_by_hour_read_it(scene, tmp_path, capsys):
    """Frame n of a video started at START is stamped START + n/10 s: detections, crossings, health. The counts
    the run wrote, read back by hour, fall in the footage's hours (07:00 and 08:00), not the run's."""
    out = tmp_path / "run" / "door.jsonl"
    argv = ["--line", "middle:0.5,0,0.5,1", "--publish-empty", "--start-time", START, "--out", str(out)]
    code, summary, err = _detect(capsys, str(scene["video"]), "--model", str(scene["package"]), *argv)
    assert code == 0 and summary is not None, err
    assert summary["clock"] == {"start": "2026-03-01T07:59:54.000Z", "from": "start_time"}
    detections = _messages(out, "detections")
    assert [m["frame"] for m in detections] == list(range(120))
    assert all(m["timestamp"] == iso(_epoch(START) + m["frame"] / FPS) for m in detections)
    frame_at = {m["timestamp"]: m["frame"] for m in detections}
    crossings = _messages(out, "counts")
    assert crossings and all(c["timestamp"] in frame_at for c in crossings)  # stamped with their frame's time
    assert _messages(out, "health")[-1]["timestamp"] == detections[-1]["timestamp"]  # the last frame's time
    window = ["--since", "2026-03-01T00:00:00Z", "--until", "2026-03-02T00:00:00Z", "--format", "json"]
    assert main(["counts", "--from", str(out.parent), "--by", "hour", *window]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_hour: Tally[str] = Tally()
    for row in rows:
        by_hour[str(row["period"])[11:13]] += int(row["crossings"])
    assert by_hour == Tally(c["timestamp"][11:13] for c in crossings)
    assert set(by_hour) <= {"07", "08"}


@pytest.mark.integration
def test_without_start_time_a_file_starts_at_its_modification_time_less_its_length(scene, tmp_path, capsys):
    """A recording is last written when it ends: the default puts the scene's 12 s just before its mtime, and a
    second run over the same file gets the same times. A time without its zone is one line naming the option."""
    video = tmp_path / "door.mp4"
    shutil.copy(scene["video"], video)
    ended = _epoch("2026-02-01T12:00:12Z")
    os.utime(video, (ended, ended))
    out = tmp_path / "door.jsonl"
    stamps = []
    for _ in range(2):
        argv = ["--max-frames", "3", "--publish-empty", "--out", str(out)]
        code, summary, err = _detect(capsys, str(video), "--model", str(scene["package"]), *argv)
        assert code == 0 and summary is not None, err
        origin = "the file's modification time less its 12.0 s"
        assert summary["clock"] == {"start": "2026-02-01T12:00:00.000Z", "from": origin}
        stamps.append([m["timestamp"] for m in _messages(out, "detections")])
    assert (
        stamps[0] == stamps[1] == ["2026-02-01T12:00:00.000Z", "2026-02-01T12:00:00.100Z", "2026-02-01T12:00:00.200Z"]
    )
    code, summary, err = _detect(
        capsys, str(video), "--model", str(scene["package"]), "--start-time", "2026-03-01T08:00"
    )
    assert code == 2 and summary is None
    (line,) = [x for x in err.splitlines() if not x.startswith("{")]
    assert "--start-time: ISO 8601 with a zone, such as 2026-03-01T08:00:00Z (got '2026-03-01T08:00')" in line


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.integration
def test_a_stream_keeps_the_wall_clock(scene, tmp_path, capsys):
    """An http MJPEG stream stands in for a camera: its messages are stamped when read, and no clock is said."""
    capture = cv2.VideoCapture(str(scene["video"]))
    with open(tmp_path / "camera.mjpeg", "wb") as stream:
        for _ in range(20):
            stream.write(cv2.imencode(".jpg", capture.read()[1])[1].tobytes())
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out = tmp_path / "camera.jsonl"
    try:
        before = time.time()
        url = f"http://127.0.0.1:{server.server_port}/camera.mjpeg"
        argv = ["--max-frames", "5", "--publish-empty", "--start-time", START, "--out", str(out)]
        code, summary, err = _detect(capsys, url, "--model", str(scene["package"]), *argv)
        after = time.time()
    finally:
        server.shutdown()
    assert code == 0 and summary is not None and "clock" not in summary, err
    stamps = [_epoch(m["timestamp"]) for m in _messages(out, "detections") + _messages(out, "health")]
    assert stamps and all(before - 0.001 <= s <= after + 0.001 for s in stamps)


@pytest.mark.integration
def test_zones_visits_and_dwell_over_a_real_run(scene, tmp_path, capsys):
    """The left half of the scene as a zone: the summary's final and peak occupancy and visits are what the
    published tracks say; its longest dwell, in the video's seconds, lies between the longest unbroken stay a
    published track made and the widest span a track was seen inside; the visits are the true objects' that
    entered, give or take the tracker's one identity switch."""
    from odctl.synth_video import read_boxes

    out = tmp_path / "zones.jsonl"
    argv = ["--zone", LEFT_HALF, "--publish-empty", "--start-time", START, "--out", str(out)]
    code, summary, err = _detect(capsys, str(scene["video"]), "--model", str(scene["package"]), *argv)
    assert code == 0 and summary is not None, err
    zone = summary["zones"]["left"]
    inside = []  # per frame: the track ids whose box centre is in the left half, as the device saw them
    for message in _messages(out, "detections"):
        tracked = [d for d in message["detections"] if "track_id" in d]
        inside.append({d["track_id"] for d in tracked if (d["box"][0] + d["box"][2]) / 2 < message["width"] / 2})
    assert zone["occupancy"] == len(inside[-1]) and zone["peak_occupancy"] == max(map(len, inside))
    assert zone["visits"] == len(set().union(*inside)) >= 2
    seen_inside: dict[int, list[int]] = {}  # track: the frames it was inside
    for frame, ids in enumerate(inside):
        for track in ids:
            seen_inside.setdefault(track, []).append(frame)
    unbroken = max(_longest_run(frames) for frames in seen_inside.values()) / FPS
    widest = max(frames[-1] - frames[0] for frames in seen_inside.values()) / FPS
    assert unbroken - 0.05 <= zone["max_dwell_s"] <= widest + 0.05 and unbroken >= 1.0
    assert 0 < zone["mean_dwell_s"] <= zone["max_dwell_s"]
    truth = read_boxes(scene["boxes"])
    entered = {b["track_id"] for r in truth.values() for b in r["boxes"] if b["left"] + b["width"] / 2 < r["width"] / 2}
    assert abs(zone["visits"] - len(entered)) <= 1


def _longest_run(frames: list[int]) -> int:
    """Frames between the first and last of the longest run of consecutive frames."""
    best = run = 0
    for a, b in zip(frames, frames[1:], strict=False):
        run = run + 1 if b == a + 1 else 0
        best = max(best, run)
    return best


def test_zone_visits_follow_a_track_through_occlusion_out_and_back():
    """The counter's tracks inside, frame by frame (as the loop passes them): a track hidden where it was last
    seen inside keeps its dwell; one seen outside stops it and comes back as the same visit; an ended track's
    visit stays in the totals."""
    counter = Counter([], [Zone("left", ((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)))])
    visits = ZoneVisits(zone.name for zone in counter.zones)
    frames = {  # t: {track: centre x in pixels (inside: under 320)}
        0: {1: 100, 2: 100},
        1: {1: 110, 2: 500},
        2: {1: 120, 2: 500},
        3: {2: 100},  # 1 hidden
        4: {2: 100, 3: 200},  # 1 hidden, 3 enters
        5: {1: 130, 2: 100, 3: 200},
    }
    for t, tracks in frames.items():
        tracked = [_box(x, track=track) for track, x in tracks.items()]
        counter.observe(tracked, SIZE, float(t))
        visits.observe(list(counter.entered), [d.track_id for d in tracked if d.track_id is not None], float(t))
    visits.forget([3])
    # dwell: 1 for 5 s (0 to 5, hidden from 3 to 4), 2 for 2 s (0, then 3 to 5), 3 for 1 s (4 to 5)
    summary = visits.summary()["left"]
    assert summary == {"occupancy": 3, "peak_occupancy": 3, "visits": 3, "mean_dwell_s": 2.7, "max_dwell_s": 5.0}


def test_the_devices_start_time_takes_a_zone_and_names_its_key_without_one(tmp_path, capsys):
    """The component's StartTime as the recipe would pass it: any zone, read as that zone; none is refused at
    start (read in the device's own zone it would shift every hour), one line naming start_time, exit 2."""
    from odedge.__main__ import main as odedge_main
    from odedge.config import ConfigError, EdgeConfig

    paris = EdgeConfig.from_mapping({"model_dir": str(tmp_path), "start_time": "2026-03-01T09:00:00+01:00"})
    assert paris.start_epoch == _epoch("2026-03-01T08:00:00Z")
    assert EdgeConfig.from_mapping({"model_dir": str(tmp_path)}).start_epoch is None  # the file's default
    with pytest.raises(ConfigError, match="configuration start_time: ISO 8601 with a zone"):
        EdgeConfig.from_mapping({"model_dir": str(tmp_path), "start_time": "2026-03-01 08:00"})
    assert odedge_main(["--model-dir", str(tmp_path), "--start-time", "yesterday"]) == 2
    said = capsys.readouterr().err.strip().splitlines()[-1]
    assert said == "odedge: error: configuration start_time: ISO 8601 with a zone, such as 2026-03-01T08:00:00Z " + (
        "(got 'yesterday')"
    )
