"""Tracking and counting on the device: the rule that counts one object once, totals that survive restarts, the
configuration's bad lines and zones, and the loop on a generated video against its true crossings."""

from __future__ import annotations

import json

import pytest

from odedge.__main__ import main as odedge_main
from odedge.app import run
from odedge.config import ConfigError, EdgeConfig
from odedge.counting import Counter, Line, Zone, parse_lines, parse_zones
from odedge.postprocess import Detection
from odedge.tracking import Tracker
from tests.conftest import REPO

DOOR = Line("door", (0.5, 0.0), (0.5, 1.0), "left-to-right")
SIZE = (640, 360)


def _box(x: float, label: str = "blue box", track: int | None = 1, score: float = 0.9, y: float = 180) -> Detection:
    """A 60x60 box whose centre is at x (pixels)."""
    return Detection(
        label, 0 if label == "blue box" else 1, score, (int(x - 30), int(y - 30), int(x + 30), int(y + 30)), track
    )


def _walk(counter: Counter, xs, **kw) -> list[dict]:
    events = []
    for t, x in enumerate(xs):
        events += counter.observe([_box(x, **kw)], SIZE, float(t))
    return events


def test_every_crossing_counts_so_in_minus_out_is_what_is_inside():
    counter = Counter([DOOR], [])
    # jitter on the line (within the band) is no crossing
    assert _walk(counter, [300, 318, 322, 318, 322, 318]) == []
    # left to right: one "in", however long it lingers and however often it touches the band again
    events = _walk(counter, [280, 310, 330, 360, 322, 340, 380])
    assert [(e["direction"], e["track_id"]) for e in events] == [("in", 1)]
    # a round trip by the same track: out, then in again; each crossing counts
    assert [e["direction"] for e in _walk(counter, [330, 300, 260])] == ["out"]
    assert [e["direction"] for e in _walk(counter, [300, 340, 380])] == ["in"]
    lines = counter.summary()["lines"]["door"]
    assert lines == {"in": {"blue box": 2}, "out": {"blue box": 1}}  # in - out = 1: the box is inside
    # passing beside the line's end points is no crossing
    short = Counter([Line("half", (0.5, 0.0), (0.5, 0.4))], [])
    assert _walk(short, [280, 360], y=300) == []


def test_a_box_that_stops_on_the_line_or_hovers_past_it_and_goes_back_nets_nothing():
    on_line = Counter([DOOR], [])
    assert _walk(on_line, [260, 300, 315, 325, 318, 300, 260]) == []  # never left the band on the far side
    past = Counter([DOOR], [])
    events = _walk(past, [260, 300, 350, 352, 349, 300, 260])  # past the band, then back the way it came
    assert [e["direction"] for e in events] == ["in", "out"]
    assert past.summary()["lines"]["door"] == {"in": {"blue box": 1}, "out": {"blue box": 1}}


def test_each_crossing_has_the_next_seq_and_an_id_of_its_own_across_restarts(tmp_path):
    path = str(tmp_path / "counts.json")
    first = Counter([DOOR], [], path)
    events = _walk(first, [280, 380, 280, 380])
    again = Counter([DOOR], [], path)  # a restart: track ids start over, the sequence does not
    events += _walk(again, [280, 380, 280], track=1)
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    assert len({e["event_id"] for e in events}) == 5
    assert again.summary()["seq"] == 5 and again.summary()["stream"] == first.stream
    wiped = Counter([DOOR], [], str(tmp_path / "elsewhere.json"))  # state lost: a new stream, never an old id
    assert {e["event_id"] for e in _walk(wiped, [280, 380])}.isdisjoint({e["event_id"] for e in events})


def test_an_ended_track_leaves_no_state_behind():
    tracker, counter = Tracker(high=0.5, low=0.1, max_lost=3), Counter([DOOR], [])
    for step in range(12):
        tracked = tracker.update([_box(280 + 10 * step, track=None)])
        counter.observe(tracked, SIZE, float(step))
        counter.forget(tracker.ended)
    assert counter.sides
    for step in range(5):  # the box is gone: its track ends after max_lost frames
        counter.observe(tracker.update([]), SIZE, 12.0 + step)
        counter.forget(tracker.ended)
    assert tracker.tracks == [] and counter.sides == {}


def test_tracks_survive_occlusion_and_boxes_passing_each_other():
    tracker = Tracker(high=0.5, low=0.1, max_lost=10)
    ids = []
    for step in range(30):
        a = _box(100 + 15 * step, "blue box", None)  # left to right
        b = _box(540 - 15 * step, "yellow box", None, y=190)  # right to left, passing the first
        visible = [a, b] if not 12 <= step < 17 else [b]  # the blue box is hidden for five frames
        if step == 20:
            visible = [_box(100 + 15 * step, "blue box", None, score=0.2), b]  # a weak box keeps the track
        ids.append({d.label: d.track_id for d in tracker.update(visible)})
    blue = {i["blue box"] for i in ids[2:] if i.get("blue box")}
    yellow = {i["yellow box"] for i in ids[2:] if i.get("yellow box")}
    assert len(blue) == 1 and len(yellow) == 1 and blue != yellow
    assert ids[20]["blue box"] in blue


def test_a_lost_track_takes_back_its_object_where_boxes_overlap_its_prediction_too_little():
    """The object slowed down while unseen: its prediction ran ahead (IoU 0.2 with where it came back), but the
    box is within reach of it and of its class: the same track, not a new one (an identity switch, and a second
    count at a line). A box of another class there starts its own track."""
    tracker = Tracker(high=0.5, low=0.1, max_lost=10)
    seen = [tracker.update([_box(100 + 10 * step, track=None)]) for step in range(6)]
    for _ in range(4):
        tracker.update([])
    back = tracker.update([_box(160, track=None)])  # 40 px behind the prediction
    assert back[0].track_id == seen[-1][0].track_id
    other = Tracker(high=0.5, low=0.1, max_lost=10)
    first = [other.update([_box(100 + 10 * step, track=None)]) for step in range(6)][-1][0].track_id
    for _ in range(4):
        other.update([])
    assert other.update([_box(160, "yellow box", track=None)])[0].track_id != first


def test_totals_survive_a_restart_and_a_changed_line_starts_from_zero(tmp_path):
    path = str(tmp_path / "counts.json")
    first = Counter([DOOR, Line("aisle", (0.0, 0.5), (1.0, 0.5))], [], path)
    _walk(first, [280, 380])
    again = Counter([DOOR, Line("aisle", (0.0, 0.5), (1.0, 0.5))], [], path)
    _walk(again, [280, 380], track=7)
    assert again.summary()["lines"]["door"]["in"] == {"blue box": 2}
    moved = Counter([Line("door", (0.6, 0.0), (0.6, 1.0)), Line("aisle", (0.0, 0.5), (1.0, 0.5))], [], path)
    summary = moved.summary()
    assert summary["lines"]["door"] == {"in": {}, "out": {}} and summary["reset"] == ["door"]


def test_zones_report_occupancy_and_dwell():
    shelf = Zone("shelf", ((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)))
    counter = Counter([], [shelf])
    for t in range(5):
        counter.observe([_box(100, track=1), _box(500, "yellow box", track=2)], SIZE, float(t))
    zone = counter.summary()["zones"]["shelf"]
    assert zone == {"occupancy": {"blue box": 1}, "max_dwell_s": 4.0}
    counter.observe([], SIZE, 5.0)
    assert counter.summary()["zones"]["shelf"] == {"occupancy": {}, "max_dwell_s": 0.0}


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("lines", '[{"name": "door", "points": [[0.5, 0.1]]}]', "lines[0].points: needs at least 2 points"),
        ("lines", '[{"name": "door", "points": [[0.5, 0], [1.2, 1]]}]', "lines[0].points[1]"),
        ("lines", '[{"name": "door", "points": [[0, 0], [1, 1]], "in": "up"}]', "lines[0].in"),
        (
            "zones",
            '[{"name": "z", "points": [[0, 0], [1, 1], [1, 0], [0, 1]]}]',
            "zones[0].points: the polygon crosses",
        ),
        ("zones", '[{"name": "z", "points": [[0, 0], [1, 0]]}]', "zones[0].points: needs at least 3 points"),
        ("lines", "[{]", "lines: not valid JSON"),
    ],
)
def test_bad_lines_and_zones_stop_the_start_naming_the_key(key, value, named, capsys, tmp_path):
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        EdgeConfig.from_mapping({"model_dir": str(tmp_path), key: value})
    assert odedge_main(["--model-dir", str(tmp_path), f"--{key}", value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("odedge: error: configuration ") and named.split(":")[0] in err[-1]
    assert parse_lines("") == () and parse_zones(" ") == ()


def _counting_config(scene, tmp_path, **values):
    from tests.edge_component.test_loop import _config

    lines = json.dumps([{"name": "middle", "points": [[0.5, 0.0], [0.5, 1.0]], "in": "left-to-right"}])
    return _config(scene, tmp_path, lines=lines, counts_file=str(tmp_path / "counts.json"), **values)


@pytest.mark.integration
def test_the_loop_counts_the_videos_true_crossings(scene, tmp_path):
    """The scene's generated video, a line down the middle: the device's totals against the crossings its true
    tracks make; every message against its schema."""
    import jsonschema

    from odctl.counting_truth import true_totals

    config = _counting_config(scene, tmp_path, score_threshold="0.4")
    run(config, install_signals=False)
    messages = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    truth = true_totals(scene["boxes"], parse_lines(config.lines))["middle"]
    health = [m["message"] for m in messages if m["topic"].endswith("/health")][-1]
    got = health["counts"]["lines"]["middle"]
    crossings = sum(truth[way].get(c, 0) for way in ("in", "out") for c in ("blue box", "yellow box"))
    assert crossings >= 2  # the video does cross the line
    for way in ("in", "out"):
        for label in ("blue box", "yellow box"):
            assert abs(got[way].get(label, 0) - truth[way].get(label, 0)) <= 1, (way, label, got, truth)
    schemas = {
        n: json.loads((REPO / "edge_component/schemas" / f"{n}.schema.json").read_text())
        for n in ("counts", "health", "detection")
    }
    checker = jsonschema.FormatChecker()
    for line in messages:
        kind = line["topic"].rsplit("/", 1)[1].replace("detections", "detection").replace("counts", "counts")
        jsonschema.validate(line["message"], schemas[kind], format_checker=checker)
    events = [m["message"] for m in messages if m["topic"].endswith("/counts")]
    assert len(events) == sum(got[w].get(c, 0) for w in ("in", "out") for c in got[w])
    tracked = [d for m in messages if m["topic"].endswith("/detections") for d in m["message"]["detections"]]
    assert tracked and sum("track_id" in d for d in tracked) >= 0.8 * len(tracked)


@pytest.mark.integration
def test_a_restart_in_the_middle_of_the_video_keeps_the_totals(scene, tmp_path):
    first = run(_counting_config(scene, tmp_path, max_frames="60"), install_signals=False)
    assert first.frames == 60
    saved = (
        json.loads((tmp_path / "counts.json").read_text())["lines"]["middle"]
        if (tmp_path / "counts.json").exists()
        else {"in": {}, "out": {}}
    )
    (tmp_path / "out.jsonl").unlink()
    run(_counting_config(scene, tmp_path), install_signals=False)
    messages = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    events = [m["message"] for m in messages if m["topic"].endswith("/counts")]
    final = [m["message"] for m in messages if m["topic"].endswith("/health")][-1]["counts"]["lines"]["middle"]
    for way in ("in", "out"):
        for label in ("blue box", "yellow box"):
            after = sum(1 for e in events if e["direction"] == way and e["class"] == label)
            assert final[way].get(label, 0) == saved[way].get(label, 0) + after


@pytest.mark.parametrize("seed", [31, 32, 33])
def test_on_true_boxes_the_tracker_keeps_identities_and_the_counts_are_exact(seed, tmp_path):
    """The tracker and counter alone, fed a held-out crossings video's true boxes with the detector's usual faults
    (missed frames, jittered edges, weaker scores): identities and counts match the truth."""
    import motmetrics as mm
    import numpy as np

    from odctl.counting_truth import true_totals
    from odctl.synth_video import SynthSpec, read_boxes, write_video
    from odedge.tracking import iou_matrix

    _, boxes = write_video(
        SynthSpec("mixed_boxes_1", ("blue box", "yellow box"), frames=200, seed=seed, scenario="crossings"), tmp_path
    )
    lines = (DOOR,)
    rng = np.random.default_rng(seed)
    tracker, counter = Tracker(high=0.5, low=0.1), Counter(lines, ())
    accumulator = mm.MOTAccumulator(auto_id=False)
    for frame, record in sorted(read_boxes(boxes).items()):
        seen = []
        for b in record["boxes"]:
            if rng.random() < 0.08:
                continue  # the detector missed it
            edges = rng.normal(0, 2.0, 4)
            corners = (b["left"], b["top"], b["left"] + b["width"], b["top"] + b["height"]) + edges
            score = 0.3 if rng.random() < 0.1 else 0.85  # now and then only a weak box
            seen.append(Detection(b["class"], b["class_id"], score, tuple(int(v) for v in corners)))
        tracked = [d for d in tracker.update(seen) if d.track_id is not None]
        counter.observe(tracked, (record["width"], record["height"]), float(frame))
        true = np.array(
            [[b["left"], b["top"], b["left"] + b["width"], b["top"] + b["height"]] for b in record["boxes"]], float
        )
        distance = 1 - iou_matrix(true.reshape(-1, 4), np.array([d.box for d in tracked], float).reshape(-1, 4))
        distance[distance > 0.5] = np.nan
        accumulator.update(
            [b["track_id"] for b in record["boxes"]], [d.track_id for d in tracked], distance, frameid=frame
        )
    summary = mm.metrics.create().compute(accumulator, metrics=["idf1", "num_switches"], name="s")
    assert float(summary["idf1"].iloc[0]) >= 0.9 and int(summary["num_switches"].iloc[0]) <= 1
    assert counter.summary()["lines"]["door"] == true_totals(boxes, lines)["door"]


@pytest.mark.integration
def test_a_crossing_while_the_broker_is_away_is_published_after(scene, broker_factory, tmp_path):
    import threading

    from tests.edge_component.test_publishers import _subscriber, _wait

    server = broker_factory()  # not started: the device is offline
    config = _counting_config(
        scene,
        tmp_path,
        publisher="mqtt",
        mqtt_port=str(server.port),
        thing_name="dev-9",
        loop="true",  # the camera keeps running
        publish_interval="3600",  # detections throttled: the buffer holds the crossings
        score_threshold="0.4",
    )
    stop = threading.Event()
    worker = threading.Thread(target=run, args=(config, stop), kwargs={"install_signals": False})
    worker.start()
    try:
        assert _wait(lambda: (tmp_path / "counts.json").exists(), 60)  # a crossing happened while offline
        counted = json.loads((tmp_path / "counts.json").read_text())["lines"]["middle"]
        server.start()
        client, got = _subscriber(server.port, "od/dev-9/counts")
        assert _wait(lambda: len(got) >= sum(sum(way.values()) for way in (counted["in"], counted["out"])), 60)
        client.loop_stop()
    finally:
        stop.set()
        worker.join(timeout=30)
    first = got[0][1]
    assert first["type"] == "crossing" and first["line"] == "middle" and first["direction"] in ("in", "out")


@pytest.mark.integration
def test_detect_and_evaluate_tracking_from_the_cli(scene, tmp_path, capsys):
    from odctl.cli import main
    from odctl.synth_video import SynthSpec, write_video

    video, _ = write_video(
        SynthSpec("mixed_boxes_4", ("blue box", "yellow box"), frames=80, seed=4, scenario="crossings"), tmp_path
    )
    package = str(scene["package"])
    assert main(["detect", str(video), "--model", package, "--line", "door:0.5,x"]) == 2
    assert "--line 'door:0.5,x': expected NAME:x1,y1,x2,y2" in capsys.readouterr().err
    assert main(["detect", str(video), "--model", package, "--line", "door:0.5,0,1.5,1"]) == 2
    said = "--line 'door:0.5,0,1.5,1': points are fractions of the frame (0 to 1; 0.5 is the middle), not pixels: 1.5"
    assert said in capsys.readouterr().err
    out = tmp_path / "report.json"
    line = ["--line", "middle:0.5,0,0.5,1"]
    assert main(["evaluate-tracking", str(video), "--model", package, *line, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["frames"] == 80 and report["mota"] <= 1 and 0 <= report["idf1"] <= 1
    assert report["runtime"]["precision"] == "fp32" and "fallback" in report["runtime"]  # a package without INT8
    asked = ["--precision", "fp32", "--out", str(out)]
    assert main(["evaluate-tracking", str(video), "--model", package, *line, *asked]) == 0
    assert "fallback" not in json.loads(out.read_text())["runtime"]  # FP32 asked for, not fallen back to
    true = {way: {c: v["true"] for c, v in per.items()} for way, per in report["counts"]["middle"].items()}
    assert true["in"]["blue box"] >= 1  # the scenario's first box crosses left to right
    assert main(["evaluate-tracking", str(tmp_path / "other.mp4"), "--model", package, *line]) == 2
    assert "no true boxes" in capsys.readouterr().err
