"""``odctl detect`` as a new user runs it: every mistake is one line and exit 2, nothing runs forever; a file is
not a live source; a live source retries with backoff up to --max-retries."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.integration


def _odctl(*argv: str, timeout: float = 60) -> tuple[int, str, str, float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "odctl.cli", *argv], capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout, done.stderr, time.monotonic() - started


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("{")]


@pytest.mark.parametrize(
    "source, model, message",
    [
        ("{tmp}/missing.mp4", "{package}", "missing.mp4: no such file"),
        ("{tmp}/corrupt.mp4", "{package}", "corrupt.mp4: OpenCV cannot open it"),
        ("{video}", "{tmp}", "no model.json here"),
        ("{video}", "{tmp}/nothing", "nothing: no such model folder"),
        ("{video}", "{tarball}", "a training artifact, not a converted model; convert it first"),
    ],
)
def test_bad_source_or_model_is_one_line(scene, tmp_path, source, model, message):
    (tmp_path / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    values = {"tmp": tmp_path, "package": scene["package"], "video": scene["video"]}
    values["tarball"] = scene["root"] / "model.tar.gz"
    code, _, err, _ = _odctl("detect", source.format(**values), "--model", model.format(**values))
    assert code == 2 and "Traceback" not in err, err
    (line,) = _error_lines(err)
    assert message in line


@pytest.mark.parametrize("source", ["9", "http://127.0.0.1:{port}/stream.mjpg"])
def test_a_live_source_that_never_answers_is_retried_then_named(scene, source):
    code, _, err, seconds = _odctl(
        "detect", source.format(port=free_port()), "--model", str(scene["package"]), "--max-retries", "2"
    )
    assert code == 2, err
    (line,) = _error_lines(err)
    assert "unavailable after 2 retries" in line
    outages = [json.loads(x) for x in err.splitlines() if x.startswith("{") and '"source.unavailable"' in x]
    assert len([o for o in outages if o["level"] == "WARNING"]) == 1  # reported once, not per retry
    assert seconds < 30


def test_messages_alone_on_stdout_and_out_replaced(scene, tmp_path):
    code, out, err, _ = _odctl("detect", str(scene["video"]), "--model", str(scene["package"]), "--max-frames", "5")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]  # every stdout line is one message
    assert lines and all({"topic", "message"} <= set(line) for line in lines)
    assert any('"detect.done"' in line for line in err.splitlines())
    target = tmp_path / "messages.jsonl"
    target.write_text("old line\n")
    code, out, err, _ = _odctl(
        "detect", str(scene["video"]), "--model", str(scene["package"]), "--max-frames", "5", "--out", str(target)
    )
    assert code == 0, err
    written = target.read_text().splitlines()
    assert "old line" not in written and json.loads(out)["frames"] == 5


def test_watch_prints_what_detect_publishes_on_a_broker(scene, broker, tmp_path):
    """odctl watch (a real MQTT broker) sees the messages odctl detect publishes, each one JSON line."""
    watcher = subprocess.Popen(
        [sys.executable, "-m", "odctl.cli", "watch", "--mqtt-host", "127.0.0.1", "--mqtt-port", str(broker.port)]
        + ["--count", "3", "--seconds", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)  # subscribed before the first message
    code, _, err, _ = _odctl(
        "detect",
        str(scene["video"]),
        "--model",
        str(scene["package"]),
        "--mqtt-host",
        "127.0.0.1",
        "--mqtt-port",
        str(broker.port),
        "--max-frames",
        "10",
        "--publish-empty",
    )
    assert code == 0, err
    out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 3 and all(line["topic"] == "od/local/detections" for line in lines)
    assert [line["message"]["frame"] for line in lines] == [0, 1, 2]


def test_watch_with_nothing_published_says_so(broker):
    code, _, err, _ = _odctl("watch", "--mqtt-host", "127.0.0.1", "--mqtt-port", str(broker.port), "--seconds", "1")
    assert code == 2 and "nothing was published on ['od/+/detections', 'od/+/health', 'od/+/counts'] within 1 s" in err
    code, _, err, _ = _odctl("watch", "--mqtt-host", "127.0.0.1", "--mqtt-port", str(free_port()), "--seconds", "1")
    assert code == 2 and "MQTT broker 127.0.0.1:" in err and "Traceback" not in err


def test_out_in_a_folder_that_does_not_exist_yet_is_made(scene, tmp_path):
    target = tmp_path / "out" / "run-1" / "messages.jsonl"
    counts = tmp_path / "state" / "counts.json"
    code, out, err, _ = _odctl(
        "detect",
        str(scene["video"]),
        "--model",
        str(scene["package"]),
        "--max-frames",
        "5",
        "--out",
        str(target),
        "--counts-file",
        str(counts),
        "--line",
        "middle:0.5,0,0.5,1",
    )
    assert code == 0 and "Traceback" not in err, err
    assert target.read_text().splitlines() and json.loads(out)["frames"] == 5


def _avi(source, target, frames: int) -> None:
    """An MJPG AVI of the scene's first frames: its header records how many frames it holds."""
    import cv2

    capture = cv2.VideoCapture(str(source))
    writer = None
    for _ in range(frames):
        ok, image = capture.read()
        assert ok
        if writer is None:
            size = (image.shape[1], image.shape[0])
            writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
        writer.write(image)
    capture.release()
    writer.release()


def test_a_video_cut_short_is_said_and_its_frames_carry_the_videos_own_clock(scene, tmp_path):
    """An AVI whose header says 60 frames, cut to about half its bytes: the run stands for what was read and
    says how much that was; each message is stamped --start-time + its position (10 frames a second)."""
    whole = tmp_path / "whole.avi"
    _avi(scene["video"], whole, 60)
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    out = tmp_path / "messages.jsonl"
    argv = ["detect", str(cut), "--model", str(scene["package"]), "--out", str(out), "--publish-empty"]
    code, stdout, err, _ = _odctl(*argv, "--start-time", "2026-03-01T08:00:00Z")
    assert code == 0, err
    summary = json.loads(stdout)
    (warning,) = [w for w in summary["warnings"] if "cut short" in w]
    assert f"read {summary['frames']} of 60 frames" in warning and summary["frames"] < 40
    stamps = [json.loads(line)["message"]["timestamp"] for line in out.read_text().splitlines()]
    detections = [s for s in stamps if s.startswith("2026-03-01T08:00:0")]
    assert detections[:2] == ["2026-03-01T08:00:00.000Z", "2026-03-01T08:00:00.100Z"]
    code, _, err, _ = _odctl("detect", str(whole), "--model", str(scene["package"]), "--start-time", "8am")
    assert code == 2 and "--start-time: ISO 8601 with a zone" in _error_lines(err)[0]
