"""The real loop on a generated video with a real converted model, and its faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from odctl.synth_video import read_boxes
from odedge.app import run
from odedge.config import ConfigError, EdgeConfig
from odedge.messages import detection_message
from odedge.model import ModelError, ModelPackage
from odedge.postprocess import Detection, detections
from odedge.preprocess import preprocess
from odedge.runtimes import OnnxRuntime, create_runtime
from odedge.sources import VideoSource
from odedge.telemetry import Counters
from odshared.model.evaluation import iou
from tests.conftest import REPO

pytestmark = pytest.mark.integration


def _messages(path):
    return [json.loads(line) for line in open(path)]


def _config(scene, tmp_path, **values):
    base = {
        "model_dir": str(scene["package"]),
        "source": str(scene["video"]),
        "publisher": "jsonl",
        "jsonl": str(tmp_path / "out.jsonl"),
        "score_threshold": "0.5",
        "health_interval": "3600",
    }
    return EdgeConfig.from_mapping({**base, **values})


@pytest.mark.slow
def test_detections_match_the_videos_known_boxes(scene, tmp_path):
    result = run(_config(scene, tmp_path, score_threshold="0.3"), install_signals=False)
    known = read_boxes(scene["boxes"])
    assert result.frames == len(known) and result.counters.get("frames_dropped", 0) == 0  # a file drops nothing
    messages = [m["message"] for m in _messages(tmp_path / "out.jsonl") if m["topic"] == "od/local/detections"]
    by_frame = {m["frame"]: m for m in messages}
    found = total = 0
    for index, record in known.items():
        for box in record["boxes"]:
            total += 1
            truth = np.array([box["left"], box["top"], box["left"] + box["width"], box["top"] + box["height"]], float)
            dets = [d for d in by_frame.get(index, {}).get("detections", []) if d["label"] == box["class"]]
            if dets and iou(truth, np.array([d["box"] for d in dets], float)).max() >= 0.5:
                found += 1
    reported = sum(len(m["detections"]) for m in messages)
    # a tiny model trained for 8 epochs (not deterministic across machines: MKL-DNN's threads) finds most
    # boxes where the video put them; the exact check of the loop's arithmetic is the one below
    assert total > 100 and found / total >= 0.65, (found, total)
    assert found / reported >= 0.65, (found, reported)
    # the loop publishes exactly what the runtime computes for each frame, in the frame's pixels
    package = ModelPackage.load(scene["package"])
    runtime = create_runtime(EdgeConfig.backend, package, precision=EdgeConfig.precision)  # the loop's, by default
    capture = cv2.VideoCapture(str(scene["video"]))
    for index in range(len(known)):
        image = capture.read()[1]
        if index % 10:
            continue
        blob, meta = preprocess(image, package.input_size)
        expected = [d.to_dict() for d in detections(runtime.predict(blob), meta, package.classes, 0.3)]
        assert by_frame.get(index, {}).get("detections", []) == expected, index
    sample = messages[len(messages) // 2]
    assert set(sample) == {
        "thing",
        "source",
        "frame",
        "timestamp",
        "model",
        "width",
        "height",
        "detections",
        "latency_ms",
    }
    assert (sample["width"], sample["height"]) == (image.shape[1], image.shape[0])
    assert sample["model"] == ModelPackage.load(scene["package"]).version
    assert set(sample["latency_ms"]) == {"queue", "preprocess", "inference", "postprocess", "total"}
    health = [m["message"] for m in _messages(tmp_path / "out.jsonl") if m["topic"] == "od/local/health"][-1]
    assert health["frames_in"] == len(known) and health["frames_processed"] == len(known) and health["fps"] > 0


def test_published_messages_follow_the_documented_schemas(scene, tmp_path):
    """edge_component/schemas (shown in the README) against what the loop really publishes; the summary's
    'published' counter equals the lines written."""
    import jsonschema

    result = run(_config(scene, tmp_path, max_frames="20", publish_empty="true"), install_signals=False)
    lines = _messages(tmp_path / "out.jsonl")
    schemas = {
        name: json.loads((REPO / "edge_component" / "schemas" / f"{name}.schema.json").read_text())
        for name in ("detection", "health")
    }
    checker = jsonschema.FormatChecker()
    for line in lines:
        kind = "health" if line["topic"].endswith("/health") else "detection"
        jsonschema.validate(line["message"], schemas[kind], format_checker=checker)
    assert sum(line["topic"].endswith("/detections") for line in lines) == 20
    assert result.counters["published"] == len(lines)


def test_class_filter_and_threshold(scene, tmp_path):
    run(_config(scene, tmp_path, classes="yellow box", score_threshold="0.6"), install_signals=False)
    detections = [
        d
        for m in _messages(tmp_path / "out.jsonl")
        if m["topic"].endswith("detections")
        for d in m["message"]["detections"]
    ]
    assert detections and all(d["label"] == "yellow box" and d["score"] >= 0.6 for d in detections)


def test_corrupt_frames_are_skipped_and_counted(scene, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    capture = cv2.VideoCapture(str(scene["video"]))
    for index in range(6):
        ok, frame = capture.read()
        cv2.imwrite(str(folder / f"f_{index:03d}.jpg"), frame)
    (folder / "f_002.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    result = run(_config(scene, tmp_path, source=str(folder)), install_signals=False)
    assert result.frames == 5 and result.counters["corrupt_frames"] == 1


def test_missing_or_mismatched_model_fails_at_start(scene, tmp_path):
    with pytest.raises(ModelError, match="no model.json here"):
        run(_config(scene, tmp_path, model_dir=str(tmp_path)), install_signals=False)
    with pytest.raises(ModelError, match="takes 300x300 input but the configuration says InputSize=512"):
        run(_config(scene, tmp_path, input_size="512"), install_signals=False)
    with pytest.raises(ModelError, match=r"classes \['cat'\] are not in the model's classes"):
        run(_config(scene, tmp_path, classes="cat"), install_signals=False)
    broken = tmp_path / "broken"
    broken.mkdir()
    for item in scene["package"].iterdir():
        (broken / item.name).write_bytes(item.read_bytes())
    (broken / "model.onnx").write_bytes((broken / "model.onnx").read_bytes()[:1000])
    with pytest.raises(ModelError, match="model.onnx: checksum mismatch"):
        ModelPackage.load(broken)
    with pytest.raises(ConfigError, match="score_threshold"):
        EdgeConfig.from_mapping({"model_dir": "x", "score_threshold": "1.5"})


def test_messages_stay_under_the_iot_core_limit():
    many = [Detection("blue box", 0, 1.0 - i * 1e-5, (i, i, i + 10, i + 10)) for i in range(5000)]
    payload = detection_message("t", "s", 1, time.time(), "v", many, {"total": 1.0})
    message = json.loads(payload)
    assert len(payload) <= 128 * 1024 and message["truncated"] > 0
    assert len(message["detections"]) + message["truncated"] == 5000
    assert message["detections"][0]["score"] == 1.0  # the best are kept


def test_sigterm_finishes_the_frame_flushes_and_exits_zero(scene, tmp_path):
    out = tmp_path / "sig.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO / "edge_component")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "odedge",
            "--model-dir",
            str(scene["package"]),
            "--source",
            str(scene["video"]),
            "--loop",
            "true",
            "--publisher",
            "jsonl",
            "--jsonl",
            str(out),
            "--health-interval",
            "3600",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 20_000):
        time.sleep(0.1)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=10)
    elapsed = time.monotonic() - sent
    err = process.stderr.read()
    assert code == 0 and elapsed < 5.0, err[-2000:]
    lines = out.read_text().splitlines()
    assert all(json.loads(line) for line in lines)  # nothing half-written
    assert json.loads(lines[-1])["topic"] == "od/local/health"  # the final health message was flushed
    assert '"signal.received"' in err and '"SIGTERM"' in err


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_stream_that_ends_is_reconnected(scene, tmp_path):
    """An http MJPEG stream stands in for a camera: when it ends the source backs off and reconnects, no crash."""
    capture = cv2.VideoCapture(str(scene["video"]))
    with open(tmp_path / "camera.mjpeg", "wb") as stream:
        for _ in range(40):
            stream.write(cv2.imencode(".jpg", capture.read()[1])[1].tobytes())
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    counters = Counters()
    try:
        source = VideoSource(f"http://127.0.0.1:{server.server_port}/camera.mjpeg", counters)
        assert source.live
        frames = 0
        deadline = time.monotonic() + 60
        while counters.get("reconnects") < 1 or frames < 60:
            if time.monotonic() > deadline:
                raise AssertionError(f"no reconnect: {counters.snapshot()}, {frames} frames")
            if source.read() is not None:
                frames += 1
        source.close()
    finally:
        server.shutdown()
    assert counters.get("reconnects") >= 1 and frames >= 60


def test_unreachable_camera_backs_off_without_crashing():
    counters = Counters()
    source = VideoSource("http://127.0.0.1:9/none.mjpg", counters, backoff_max=0.2)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert source.read() is None
    assert counters.get("reconnects") >= 2 and counters.get("source_connected") == 0


def test_a_failing_stage_is_counted_and_the_others_still_run(scene, tmp_path):
    """Optional stages run each in its own guard: one that raises on every frame stops neither the loop nor the
    snapshots stage after it."""
    from odedge.app import build_sinks
    from odedge.loop import InferenceLoop
    from odedge.stages import Snapshots

    class Broken:
        name = "broken"

        def observe(self, result):
            raise RuntimeError("disk full")

        def close(self):
            pass

    config = _config(scene, tmp_path, max_frames="12", score_threshold="0.3")
    counters = Counters()
    package = ModelPackage.load(config.model_dir)
    source = VideoSource(config.source, counters)
    sinks = build_sinks(config, counters)
    snapshots = Snapshots(str(tmp_path / "snaps"), 0.0, 10)
    loop = InferenceLoop(config, package, OnnxRuntime(package), source, sinks, counters, stages=[Broken(), snapshots])
    try:
        result = loop.run()
    finally:
        source.close()
        for sink in sinks:
            sink.close(timeout=1.0)
    assert result.frames == 12
    assert counters.get("stage_errors") == 12
    assert len(list((tmp_path / "snaps").iterdir())) > 0
