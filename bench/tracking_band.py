"""Counting and tracking on the twelve held-out crossings videos: the figures the README's tracking table quotes.

The videos (seeds 301-312, never used while tuning the tracker; 300 frames; the demo's counting line down the
middle) are made once under bench/out/tracking-band/; the model is `make demo`'s unless ``--model`` names another
package. Each video runs through `odctl evaluate-tracking`'s function at FP32 and at INT8 (where the package has
it). To compare trackers, run it with each commit's code first on ``PYTHONPATH`` (the edge package is found there
before the installed one). ``python -m bench.tracking_band [--model PKG] [--precisions fp32 int8]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
from typing import Any

from bench.inputs import OUT
from bench.measure import REPO

SEEDS = range(301, 313)
DEMO_MODEL = REPO / "demo-work" / "data" / "models" / "demo-job"  # where `make demo` converts its model


def _videos() -> list[str]:
    from odctl.demo import CLASSES
    from odctl.synth_video import SynthSpec, write_video

    folder = OUT / "tracking-band" / "videos"
    paths = []
    for seed in SEEDS:
        spec = SynthSpec(f"crossings_{seed}", CLASSES, frames=300, seed=seed, scenario="crossings")
        if not (folder / f"{spec.name}.boxes.jsonl").exists():
            write_video(spec, folder)
        paths.append(str(folder / f"{spec.name}.mp4"))
    return paths


def summarise(reports: list[dict[str, Any]]) -> dict[str, Any]:
    pairs = [c for r in reports for line in r["counts"].values() for way in line.values() for c in way.values()]
    idf1 = [r["idf1"] for r in reports]
    mota = [r["mota"] for r in reports]
    return {
        "runtime": reports[0]["runtime"],
        "counts_exact": f"{sum(c['counted'] == c['true'] for c in pairs)}/{len(pairs)}",
        "idf1_mean": round(statistics.mean(idf1), 3),
        "idf1_range": [min(idf1), max(idf1)],
        "mota_range": [min(mota), max(mota)],
        "id_switches_range": [min(r["id_switches"] for r in reports), max(r["id_switches"] for r in reports)],
    }


def main(argv: list[str]) -> int:
    from odctl.demo import COUNTING_LINE
    from odctl.tracking_eval import evaluate_tracking
    from odedge.runtimes import PRECISIONS

    parser = argparse.ArgumentParser(prog="python -m bench.tracking_band")
    parser.add_argument("--model", default=str(DEMO_MODEL))
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    videos = _videos()
    result = {}
    for precision in args.precisions:
        reports = [evaluate_tracking(video, args.model, [COUNTING_LINE], precision=precision) for video in videos]
        result[precision] = summarise(reports)
        print(json.dumps({"precision": precision, **result[precision]}), flush=True)
    (OUT / "tracking-band" / "band.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
