"""Camera health in the device's messages (issue 36): the health message's ``camera`` and ``camera_fault``, and the
flag on every crossing counted while the camera is not OK, against the documented schemas; then the real loop on a
generated crossings video whose camera is knocked part-way."""

from __future__ import annotations

import json

import cv2
import jsonschema
import pytest

from odedge.app import run
from odedge.camera_health import REFERENCE_FILE, CameraHealth, Reference
from odedge.config import EdgeConfig
from odedge.counting import Counter, Line
from odedge.messages import counts_message, health_message
from odedge.postprocess import Detection
from tests.conftest import REPO
from tests.edge_component.camera_scenes import EPOCH, SYNTH_ORIGIN, SYNTH_VIEW, Fault, Scene, _window

SCHEMAS = {
    n: json.loads((REPO / "edge_component/schemas" / f"{n}.schema.json").read_text()) for n in ("counts", "health")
}
DOOR = Line("door", (0.5, 0.0), (0.5, 1.0), "left-to-right")
LINES = json.dumps([{"name": "door", "points": [[0.5, 0.0], [0.5, 1.0]], "in": "left-to-right"}])


def _valid(message: bytes, schema: str) -> dict:
    body = json.loads(message)
    jsonschema.validate(body, SCHEMAS[schema], format_checker=jsonschema.FormatChecker())
    return body


def _walk(counter: Counter, xs: list[int], t0: float) -> list[dict]:
    events = []
    for t, x in enumerate(xs):
        events += counter.observe([Detection("blue box", 0, 0.9, (x - 30, 150, x + 30, 210), 1)], (640, 360), t0 + t)
    return events


def test_a_crossing_counted_while_the_camera_is_not_ok_says_so():
    counter = Counter([DOOR], [])
    first = _walk(counter, [100, 500], 0.0)
    counter.camera = "moved"
    second = _walk(counter, [100], 2.0)
    counter.camera = ""
    third = _walk(counter, [500], 3.0)
    assert [e.get("camera") for e in first + second + third] == [None, "moved", None]
    flagged = _valid(counts_message("dev", second[0]), "counts")
    assert flagged["camera"] == "moved" and "camera" not in _valid(counts_message("dev", third[0]), "counts")


@pytest.mark.parametrize("kind", ["covered", "shifted", None])
def test_the_health_message_carries_the_camera_and_a_metric_to_alarm_on(kind, tmp_path):
    health = CameraHealth(tmp_path / REFERENCE_FILE)
    for image, now in Scene("synth", Fault(kind, 12.0, 60.0), seconds=30, fps=5.0).frames():
        health.watch(image, now)
    body = _valid(health_message("dev", "m", {}, 1.0, {}, 1.0, camera=health.summary()), "health")
    camera = body["camera"]
    state = {"covered": "covered", "shifted": "moved", None: "ok"}[kind]
    assert camera["state"] == state and camera["ok"] is (kind is None)
    assert body["camera_fault"] == (0 if kind is None else 1)
    assert camera["reference"]["by"] == "device" and set(camera["measures"]) >= {"brightness", "uniform", "change"}
    if kind is not None:
        assert camera["since"] == camera["states"][state]["since"] and camera["states"][state]["measure"] > 0
    assert "camera" not in json.loads(health_message("dev", "m", {}, 1.0, {}, 1.0))  # requests: no camera


def _knocked_crossings(tmp_path, knocked_at: float):
    """The crossings scenario (two boxes each way, one stopping on the line) through a window of a larger canvas,
    the window moved 7.5% across at ``knocked_at`` seconds: the camera knocked."""
    from odctl.synth_video import SynthSpec, render

    spec = SynthSpec("knocked", ("blue box", "yellow box"), 600, 768, 432, seed=4, scenario="crossings")
    path = tmp_path / "knocked.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), spec.fps, SYNTH_VIEW)
    for index, (canvas, _) in enumerate(render(spec)):
        knocked = index / spec.fps >= knocked_at
        writer.write(_window(canvas, SYNTH_VIEW, SYNTH_ORIGIN, "shifted" if knocked else None).copy())
    writer.release()
    return path


@pytest.mark.slow
@pytest.mark.integration
def test_the_loop_flags_crossings_counted_after_the_camera_was_knocked(scene, tmp_path):
    """The real loop, model and counting line on a 60 s crossings video knocked at 20 s: the reference is taken at
    start into the work folder, crossings before the knock carry no flag, those counted once moved was said (within
    12 s) carry "camera": "moved", and the last health message says moved with camera_fault 1; every message
    against its schema."""
    video = _knocked_crossings(tmp_path, 20.0)
    work = tmp_path / "work"
    config = EdgeConfig.from_mapping(
        {
            "model_dir": str(scene["package"]),
            "source": str(video),
            "start_time": "2026-01-01T00:00:00Z",
            "publisher": "jsonl",
            "jsonl": str(tmp_path / "out.jsonl"),
            "lines": LINES,
            "counts_file": str(work / "counts.json"),
            "score_threshold": "0.4",
            "health_interval": "3600",
        }
    )
    run(config, install_signals=False)
    messages = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    crossings = [_valid(json.dumps(m["message"]).encode(), "counts") for m in messages if m["topic"].endswith("counts")]
    health = [_valid(json.dumps(m["message"]).encode(), "health") for m in messages if m["topic"].endswith("health")]
    seconds = [(c, _seconds(c["timestamp"])) for c in crossings]
    assert [c for c, t in seconds if t < 20.0 and "camera" in c] == []
    assert [c for c, t in seconds if t >= 32.0 and c.get("camera") != "moved"] == []
    assert len([c for c, t in seconds if t < 20.0]) >= 2 and len([c for c, t in seconds if t >= 32.0]) >= 2
    assert health[-1]["camera"]["state"] == "moved" and health[-1]["camera_fault"] == 1
    assert Reference.from_json((work / REFERENCE_FILE).read_bytes()).by == "device"


def _seconds(timestamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() - EPOCH
