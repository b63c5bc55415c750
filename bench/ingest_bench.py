"""The ingestion Lambda's work on a 10-minute 1080p video (every 10th frame), and what that means at scale.

The video: a 20-second 1080p clip from ``odctl synth-video`` (moving boxes, noise, lighting drift), re-encoded 30
times back to back into one 10-minute mp4 (synthesizing 18,000 1080p frames would take half an hour here). The
baseline, in the same process on the same file, is the bare decode the extraction cannot avoid: OpenCV grabbing
every frame and retrieving every 10th. Then ``ingest_video`` (what the ExtractVideo Lambda runs): the same decode,
JPEG encoding, writes, the manifest part and the contact sheet. Peak memory is a fresh interpreter's VmHWM.

The scale table assumes 10-minute videos, the stack's default concurrency (cdk.json ``ingestMaxConcurrency``) and
the measured per-video time (this machine has 2 cores; the function gets 2 vCPUs at its 3,538 MB), priced at
Lambda's x86 rate (USD 0.0000166667 per GB-second, 0.20 per million requests) and Step Functions' standard
transitions (USD 0.025 per 1,000; about 5 per video). ``python -m bench.ingest_bench``.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

from bench.measure import REPO, peak_rss_mb

OUT = Path(__file__).resolve().parent / "out" / "ingest"
CLIP_SECONDS, REPEATS, FPS, EVERY = 20, 30, 30, 10
LAMBDA_GB, GB_SECOND_USD, REQUEST_USD, TRANSITION_USD = 3538 / 1024, 0.0000166667, 0.2 / 1e6, 0.025 / 1000


def make_video(folder: Path) -> Path:
    """The 10-minute video, made once and reused."""
    import cv2

    from odctl.synth_video import SynthSpec, write_video

    video = folder / "blue_box_10min.mp4"
    if video.exists():
        return video
    folder.mkdir(parents=True, exist_ok=True)
    spec = SynthSpec("clip", ("blue box", "yellow box"), CLIP_SECONDS * FPS, 1920, 1080, FPS, seed=7)
    clip, _ = write_video(spec, folder)
    capture = cv2.VideoCapture(str(clip))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    writer = cv2.VideoWriter(str(video) + ".part.mp4", cv2.VideoWriter_fourcc(*"mp4v"), FPS, (1920, 1080))
    for _ in range(REPEATS):
        for frame in frames:
            writer.write(frame)
    writer.release()
    Path(str(video) + ".part.mp4").replace(video)
    return video


def bare_decode(video: Path) -> float:
    import cv2

    started = time.perf_counter()
    capture = cv2.VideoCapture(str(video))
    index = 0
    while capture.grab():
        if index % EVERY == 0:
            capture.retrieve()
        index += 1
    return time.perf_counter() - started


def ingest_once(video: Path, work: Path) -> tuple[float, dict]:
    from odshared.data.ingest import IngestVideo, ingest_video

    request = IngestVideo(str(video), str(work / "frames"), str(work / "ingest"), every=EVERY)
    started = time.perf_counter()
    result = ingest_video(request)
    return time.perf_counter() - started, result


def scale_table(seconds_per_video: float, concurrency: int) -> list[dict]:
    rows = []
    for hours in (100, 1_000, 10_000):
        videos = hours * 6
        waves = math.ceil(videos / concurrency)
        wall_min = waves * seconds_per_video / 60
        lambda_usd = videos * (seconds_per_video * LAMBDA_GB * GB_SECOND_USD + REQUEST_USD)
        rows.append(
            {
                "hours_of_video": hours,
                "videos": videos,
                "wall_minutes": round(wall_min, 1),
                "lambda_usd": round(lambda_usd, 2),
                "step_functions_usd": round(videos * 5 * TRANSITION_USD, 2),
                "concurrency_for_30_min": math.ceil(videos / max(1, math.floor(30 * 60 / seconds_per_video))),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    video = make_video(Path(args.out))
    baseline = bare_decode(video)
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        seconds, result = ingest_once(video, Path(tmp))
    peak = peak_rss_mb(
        "import tempfile, pathlib\nfrom bench.ingest_bench import ingest_once\n"
        f"ingest_once(pathlib.Path({str(video)!r}), pathlib.Path(tempfile.mkdtemp()))"
    )
    concurrency = json.loads((REPO / "cdk.json").read_text())["context"]["edge-od:ingestMaxConcurrency"]
    report = {
        "video": {"minutes": CLIP_SECONDS * REPEATS / 60, "size_mb": round(video.stat().st_size / 2**20, 1)},
        "frames_written": result["frames_written"],
        "baseline_decode_s": round(baseline, 1),
        "ingest_s": round(seconds, 1),
        "ingest_over_baseline": round(seconds / baseline, 2),
        "peak_rss_mb": round(peak, 1),
        "concurrency": concurrency,
        "scale": scale_table(seconds, concurrency),
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
