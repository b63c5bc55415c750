"""The offline main job with a small budget (every step's wiring), locally and over moto's S3; the report is
checked in headless Chromium."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

from odctl.demo import run_demo
from tests.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SCREENSHOT = REPO / "test-output" / "demo-report.png"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return root, run_demo(str(root), minutes=1)


def test_every_step_runs_and_the_report_is_written(demo):
    root, summary = demo
    expected = {
        "make-manifest",
        "preview-manifest",
        "label (Ground Truth stand-in)",
        "show-labels",
        "prepare-training",
        "train-local",
        "convert",
        "evaluate on the held-out video",
        "package-component",
        "run the inference component",
        "count on the crossings video",
    }
    assert expected <= set(summary["steps"])
    report = root / "report"
    for name in (
        "report.html",
        "summary.json",
        "evaluation.json",
        "precision_recall.png",
        "training_curve.png",
        "heldout_strip.png",
        "manifest.png",
        "labels/grid.png",
        "detections.jsonl",
        "counting_strip.png",
        "counting.json",
        "crossings_per_minute.png",
    ):
        assert (report / name).exists(), name
    saved = json.loads((report / "summary.json").read_text())
    assert saved["figures"]["loop_frames"] > 0 and 0.0 <= saved["figures"]["heldout_mAP@0.5"] <= 1.0
    # FP32 and INT8 side by side: the package has both, the held-out video is scored with each
    assert 0.0 <= saved["figures"]["heldout_mAP@0.5_int8"] <= 1.0
    assert set(json.loads((report / "evaluation.json").read_text())["precisions"]) == {"fp32", "int8"}
    page = (report / "report.html").read_text()
    assert "AP INT8" in page
    assert '<th>heldout_AP_per_class</th><td><table class="nested">' in page and "{&quot;" not in page  # no JSON cells
    counting = saved["figures"]["counting"]["counts"]["middle"]
    assert counting["in"]["blue box"]["true"] >= 1  # counts stand beside the truth in the report
    for way in counting.values():  # and the ledger's (odctl counts' query over what the device published)
        for pair in way.values():
            assert pair.get("ledger", 0) == pair["counted"]
    recipes = sorted(p.name for p in (root / "greengrass-components" / "recipes").iterdir())
    assert recipes == [
        "com.example.demo.ObjectDetection-1.0.0.yaml",
        "com.example.demo.ObjectDetection.Model-1.0.0.yaml",
    ]


def test_a_rerun_reuses_finished_steps(demo):
    root, _ = demo
    again = run_demo(str(root), minutes=1)
    assert again["steps"] and all(step.get("reused") for step in again["steps"].values())


def test_the_same_steps_run_against_s3(tmp_path):
    summary = run_demo(str(tmp_path / "s3demo"), s3=True, minutes=1)
    assert summary["storage"] == "s3://odctl-demo"
    assert summary["figures"]["loop_frames"] > 0
    assert not (tmp_path / "s3demo" / "data").exists()  # nothing went to local storage


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_report_loads_in_headless_chromium_without_errors(demo):
    from websockets.sync.client import connect

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, (
        "Chromium is needed for this test: make test installs it as root, else sudo apt-get install chromium"
    )
    root, _ = demo
    port = _free_port()
    profile = root / "chromium-profile"
    process = subprocess.Popen(
        [
            browser,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={profile}",
            f"--remote-debugging-port={port}",
            "--window-size=1400,2400",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=2).read())
                page = next(t for t in targets if t["type"] == "page")
                break
            except (OSError, StopIteration):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with connect(page["webSocketDebuggerUrl"], max_size=50_000_000) as ws:
            counter = iter(range(1, 10_000))
            events: list[dict] = []

            def call(method: str, **params) -> dict:
                ident = next(counter)
                ws.send(json.dumps({"id": ident, "method": method, "params": params}))
                while True:
                    message = json.loads(ws.recv(timeout=30))
                    if message.get("id") == ident:
                        return message.get("result", {})
                    events.append(message)

            call("Runtime.enable")
            call("Log.enable")
            call("Page.enable")
            call("Page.navigate", url=(root / "report" / "report.html").as_uri())
            loaded = False
            wait_until = time.monotonic() + 30
            while not loaded and time.monotonic() < wait_until:
                message = json.loads(ws.recv(timeout=30))
                events.append(message)
                loaded = message.get("method") == "Page.loadEventFired"
            assert loaded
            images = call(
                "Runtime.evaluate",
                returnByValue=True,
                expression=(
                    "Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])"
                ),
            )
            shot = call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    finally:
        process.terminate()
        process.wait(timeout=10)
    pairs = images["result"]["value"]
    assert len(pairs) >= 8 and all(ok for _, ok in pairs), pairs
    errors = [e for e in events if e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error"]
    errors += [e for e in events if e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"]
    errors += [e for e in events if e.get("method") == "Runtime.exceptionThrown"]
    assert not errors, errors
    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.write_bytes(base64.b64decode(shot["data"]))
    print(f"report screenshot: {SCREENSHOT}")  # noqa: T201 - the test's output names its artifact
