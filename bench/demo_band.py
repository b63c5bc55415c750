"""`make demo`'s figures over several training seeds: the band the README quotes (issue 25).

Each seed is a fresh full demo (its own work folder under bench/out/demo-band/); the figures are the held-out
mAP@0.5 (FP32 and INT8), each class's AP, the counting video's counts against the truth and IDF1, and the run's
seconds. The same seed gives the same figures on a machine of the same size (the videos are fixed, training is
seeded and runs its 14 epochs whatever the machine's speed). ``python -m bench.demo_band [--seeds 0 1 2]``.
"""

from __future__ import annotations

import argparse
import json
import logging

from bench.inputs import OUT


def figures(summary: dict) -> dict:
    found = summary["figures"]
    counting = found["counting"]
    return {
        "mAP": found["heldout_mAP@0.5"],
        "mAP_int8": found["heldout_mAP@0.5_int8"],
        "AP": {k: round(v, 3) for k, v in found["heldout_AP_per_class"].items()},
        "counts_exact": counting["count_pairs_exact"],
        "count_max_error": counting["count_max_error"],
        "idf1": counting["idf1"],
        "seconds": summary["seconds"],
        "train_seconds": summary["steps"]["train-local"]["seconds"],
    }


def main(argv: list[str]) -> int:
    from odctl.demo import run_demo

    parser = argparse.ArgumentParser(prog="python -m bench.demo_band")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rows = {}
    for seed in args.seeds:
        summary = run_demo(str(OUT / "demo-band" / f"seed-{seed}"), fresh=True, seed=seed)
        rows[seed] = figures(summary)
        print(json.dumps({"seed": seed, **rows[seed]}), flush=True)
    maps = [row["mAP"] for row in rows.values()]
    idf1 = [row["idf1"] for row in rows.values()]
    band = {
        "seeds": args.seeds,
        "mAP": [min(maps), max(maps)],
        "idf1": [min(idf1), max(idf1)],
        "counts_exact_runs": sum(row["counts_exact"] == 1.0 for row in rows.values()),
        "count_max_error": max(row["count_max_error"] for row in rows.values()),
    }
    print(json.dumps({"band": band}), flush=True)
    (OUT / "demo-band" / "band.json").write_text(json.dumps({"runs": rows, "band": band}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
