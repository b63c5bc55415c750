"""Evidence per crossing's cost on the loop: the frame rate with evidence on against off, both measured in this one
run (issue 36).

The loop: odedge on a generated crossings video (``odctl.synth_video``'s crossings scenario, boxes crossing a line down
the middle, at ``--width`` x ``--height``), counting on that line, with `make demo`'s model (the tiny SSD at 300: the
fastest loop, so the largest share), ``--model seed`` (the seed's ResNet-50 SSD 512) or a package's folder. The runs
alternate off, on, off, on ... (``--repeat`` pairs) so that a neighbour's load on the machine falls on both alike; the
figures are each side's median steady-state frame rate and their ratio. Evidence on is as the device runs it (the
recipe's defaults once on: 4 frames, a 24-frame ring at 480 px, blur), with a 2 MB budget so that items are also
removed during the run, and, with ``--unreachable-s3``, an upload bucket whose endpoint accepts and never answers.
The video is a worst case for the ratio: the loop runs it far faster than its 10 frames a second, so its crossings
come several a second, and each item's drawing and encoding (the writer thread, niced) competes for the same cores.
So one more run is timed from inside: the loop thread's time in evidence per frame (its share of the loop's frame
time) and the writer's CPU time per item, the figures that scale to a device's own frame and crossing rates.
``python -m bench.evidence_bench [--model demo|seed|PKG] [--frames 300] [--repeat 3] [--unreachable-s3]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.camera_health_bench import model_folder
from bench.common import run_loop

LINES = json.dumps([{"name": "middle", "points": [[0.5, 0.0], [0.5, 1.0]], "in": "left-to-right"}])


def crossings_video(folder: Path, frames: int, width: int, height: int) -> Path:
    """The crossings scenario the tests count on, at the asked size."""
    from odctl.synth_video import SynthSpec, write_video

    spec = SynthSpec("mixed_boxes_5", ("blue box", "yellow box"), frames, width, height, seed=5, scenario="crossings")
    video, _ = write_video(spec, folder)
    return video


class Spent:
    """The loop thread's time in ``EvidenceRecorder.observe`` (wall) and the writer thread's CPU time per item."""

    def __init__(self) -> None:
        self.observe: list[float] = []
        self.write: list[float] = []

    def patches(self) -> Any:
        from contextlib import ExitStack
        from unittest import mock

        from odedge.evidence import EvidenceRecorder, EvidenceWriter

        observe, write = EvidenceRecorder.observe, EvidenceWriter.write

        def timed_observe(recorder: Any, *args: Any) -> None:
            started = time.perf_counter()
            observe(recorder, *args)
            self.observe.append(time.perf_counter() - started)

        def timed_write(writer: Any, item: Any) -> None:
            started = time.thread_time()
            write(writer, item)
            self.write.append(time.thread_time() - started)

        stack = ExitStack()
        stack.enter_context(mock.patch.object(EvidenceRecorder, "observe", timed_observe))
        stack.enter_context(mock.patch.object(EvidenceWriter, "write", timed_write))
        return stack


def loop_run(model: str, video: Path, evidence: bool, bucket: str) -> dict[str, Any]:
    """One run of the real loop over the video: its steady-state frame rate, crossings and evidence figures."""
    result, messages = run_loop(
        model,
        video,
        score_threshold="0.4",
        lines=LINES,
        evidence_max_mb="2" if evidence else "0",
        upload_bucket=bucket,
    )
    health = [m["message"] for m in messages if m["topic"].endswith("/health")][-1]
    crossings = sum(1 for m in messages if m["topic"].endswith("/counts"))
    return {"fps": result.fps, "crossings": crossings, "evidence": health.get("evidence")}


def blackhole() -> socket.socket:
    """A loopback port that accepts and never answers: S3 unreachable mid-request (each try waits out its timeout)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(256)
    os.environ.update(
        AWS_ENDPOINT_URL_S3=f"http://127.0.0.1:{server.getsockname()[1]}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="eu-west-1",
    )
    return server


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.evidence_bench")
    parser.add_argument("--model", default="demo", help="demo (make demo's), seed (ResNet-50 512) or a package folder")
    parser.add_argument("--frames", type=int, default=300, help="frames of the crossings video")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--repeat", type=int, default=3, help="off/on pairs")
    parser.add_argument("--unreachable-s3", action="store_true", help="upload to an endpoint that never answers")
    args = parser.parse_args(argv)
    model = model_folder(args.model)
    if not (Path(model) / "model.json").exists():
        raise SystemExit(f"{model}: no converted model there (run `make demo`, or pass --model seed or a package)")
    logging.disable(logging.WARNING)  # one line per crossing and item is not what is measured here
    hole = blackhole() if args.unreachable_s3 else None
    bucket = "evidence-bench" if hole is not None else ""
    off: list[dict[str, Any]] = []
    on: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        video = crossings_video(Path(tmp), args.frames, args.width, args.height)
        for _ in range(args.repeat):
            off.append(loop_run(model, video, False, bucket))
            on.append(loop_run(model, video, True, bucket))
        spent = Spent()
        with spent.patches():  # once more, timed inside: what the loop thread and the writer spend
            loop_run(model, video, True, bucket)
    fps_off, fps_on = statistics.median(r["fps"] for r in off), statistics.median(r["fps"] for r in on)
    observe_ms = statistics.mean(spent.observe) * 1000
    report = {
        "video": f"{args.width}x{args.height}, {args.frames} frames, crossings scenario",
        "model": model,
        "upload": "unreachable S3 (accepts, never answers)" if hole is not None else "none",
        "fps_evidence_off": fps_off,
        "fps_evidence_on": fps_on,
        "on_vs_off": round(fps_on / fps_off, 3),
        "fps_off_runs": [r["fps"] for r in off],
        "fps_on_runs": [r["fps"] for r in on],
        "crossings_per_run": on[-1]["crossings"],
        "crossings_per_second_of_loop": round(on[-1]["crossings"] * fps_on / args.frames, 2),
        "loop_thread_ms_per_frame": round(observe_ms, 3),
        "loop_thread_share": round(observe_ms / (1000 / fps_off), 4),
        "writer_cpu_ms_per_item": round(statistics.mean(spent.write) * 1000, 2) if spent.write else None,
        "evidence_last_run": on[-1]["evidence"],
    }
    if hole is not None:
        hole.close()
    print(json.dumps(report, indent=2))  # noqa: T201 - a benchmark's output is its report
    return report


if __name__ == "__main__":
    main()
