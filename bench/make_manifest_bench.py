"""make-manifest over a million frames in a local folder: throughput and peak memory.

The baseline, measured in the same process on the same folder, is the bare minimum any tool pays:
``os.listdir`` + ``sort`` + writing one ``{"source-ref": ...}`` line per file. Goals (issue 2): over
100k objects/s and peak memory under 200 MB.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.common import report
from bench.measure import peak_rss_mb
from odshared.data.input_manifest import build_input_manifest

DEFAULT_DIR = Path(__file__).resolve().parent / "out" / "frames-1m"


def make_frames(folder: Path, count: int) -> None:
    """Empty files named like extracted frames (names are all a listing reads); made once and reused."""
    marker = folder / f".complete-{count}"
    if marker.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    videos = 100
    per_video = count // videos
    for v in range(videos):
        for i in range(per_video):
            os.close(os.open(folder / f"blue_box_{v}_{i:06d}.jpg", os.O_CREAT | os.O_WRONLY, 0o644))
    marker.touch()


def baseline(folder: Path, out: Path) -> int:
    names = sorted(n for n in os.listdir(folder) if n.endswith(".jpg"))
    with open(out, "w") as handle:
        for name in names:
            handle.write('{"source-ref":"' + str(folder / name) + '"}\n')
    return len(names)


def timed(func, *args):
    start = time.perf_counter()
    result = func(*args)
    return time.perf_counter() - start, result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="bench.make_manifest_bench")
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args(argv)
    folder = args.dir if args.count == 1_000_000 else args.dir.with_name(f"frames-{args.count}")
    start = time.perf_counter()
    make_frames(folder, args.count)
    setup_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "m.manifest"

        def ours(every: int, pattern: str | None) -> int:
            return build_input_manifest([str(folder)], str(out), every=every, pattern=pattern).lines

        base_s, listed = timed(baseline, folder, out)
        plain_s, _ = timed(ours, 1, None)
        meta_s, _ = timed(ours, 1, "{color}_{object}_{n}")
        sampled_s, sampled = timed(ours, 10, "{color}_{object}_{n}")
        setup = f"from pathlib import Path; folder, out = Path({str(folder)!r}), Path({str(out)!r})"
        idle_mb = peak_rss_mb("import odshared.data.input_manifest")
        base_mb = peak_rss_mb(f"{setup}\nfrom bench.make_manifest_bench import baseline; baseline(folder, out)")
        ours_mb = peak_rss_mb(
            f"{setup}\nfrom odshared.data.input_manifest import build_input_manifest\n"
            "build_input_manifest([str(folder)], str(out), pattern='{color}_{object}_{n}')"
        )
    return report(
        "over 100000 objects/s, peak under 200 MB",
        {
            "objects": listed,
            "setup_seconds": round(setup_s, 1),
            "baseline_objects_per_s": round(listed / base_s),
            "make_manifest_objects_per_s": round(listed / plain_s),
            "with_metadata_objects_per_s": round(listed / meta_s),
            "every_10_objects_per_s": round(listed / sampled_s),
            "every_10_lines": sampled,
            "speed_ratio_vs_baseline": round(base_s / meta_s, 3),
            "interpreter_idle_rss_mb": round(idle_mb, 1),
            "baseline_peak_rss_mb": round(base_mb, 1),
            "make_manifest_peak_rss_mb": round(ours_mb, 1),
            "memory_ratio_vs_baseline": round(ours_mb / base_mb, 3),
        },
    )


if __name__ == "__main__":
    main()
