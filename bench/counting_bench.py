"""Tracking and counting's cost per frame with 20 objects in view, as a share of the frame time.

Baseline, measured in the same run: the bare ONNX Runtime forward pass of the ResNet-50 SSD 512 seed graph (the
frame time the device cannot go below). Goal (issue 15): the tracker and counter add <= 2 ms per frame.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from bench.common import report
from bench.inputs import OUT, build_artifact


def _scene(frames: int, objects: int, seed: int = 0) -> list[list]:
    """20 boxes drifting across a 1920x1080 frame (crossing two lines), with score noise and dropouts."""
    from odedge.postprocess import Detection

    rng = np.random.default_rng(seed)
    start = rng.uniform([0, 0], [1800, 1000], size=(objects, 2))
    speed = rng.uniform(-12, 12, size=(objects, 2))
    scenes = []
    for t in range(frames):
        found = []
        for i in range(objects):
            x, y = (start[i] + speed[i] * t) % [1800, 1000]
            if rng.random() < 0.05:
                continue  # missed this frame
            score = float(np.clip(rng.normal(0.7, 0.15), 0.1, 1.0))
            found.append(Detection("box", 0, score, (int(x), int(y), int(x) + 100, int(y) + 80)))
        scenes.append(found)
    return scenes


def per_frame_ms(frames: int = 1000, objects: int = 20) -> float:
    from odedge.counting import Counter, parse_lines, parse_zones
    from odedge.tracking import Tracker

    lines = parse_lines(
        json.dumps([{"name": "a", "points": [[0.5, 0], [0.5, 1]]}, {"name": "b", "points": [[0, 0.5], [1, 0.5]]}])
    )
    zones = parse_zones(json.dumps([{"name": "z", "points": [[0.1, 0.1], [0.4, 0.1], [0.4, 0.6], [0.1, 0.6]]}]))
    scenes = _scene(frames, objects)
    tracker, counter = Tracker(high=0.5, low=0.1), Counter(lines, zones)
    started = time.perf_counter()
    for index, found in enumerate(scenes):
        counter.observe(tracker.update(found), (1920, 1080), float(index))
    return (time.perf_counter() - started) * 1000 / frames


def bare_forward_ms(repeats: int = 10) -> float:
    from odedge.model import ModelPackage
    from odedge.runtimes import OnnxRuntime
    from odshared.model.convert import convert

    artifact = build_artifact(OUT / "resnet50-512" / "model.tar.gz")
    package_dir = OUT / "resnet50-512" / "package"
    convert(str(artifact), str(package_dir), ["blue box", "yellow box"])
    runtime = OnnxRuntime(ModelPackage.load(package_dir))
    blob = np.random.default_rng(0).uniform(0, 255, (1, 3, 512, 512)).astype(np.float32)
    runtime.predict(blob)
    started = time.perf_counter()
    for _ in range(repeats):
        runtime.predict(blob)
    return (time.perf_counter() - started) * 1000 / repeats


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="bench.counting_bench")
    parser.add_argument("--objects", type=int, default=20)
    args = parser.parse_args(argv)
    counting = per_frame_ms(objects=args.objects)
    frame = bare_forward_ms()
    return report(
        "tracker + counter <= 2 ms per frame with 20 objects",
        {
            "objects_in_view": args.objects,
            "tracker_and_counter_ms_per_frame": round(counting, 3),
            "bare_resnet50_512_forward_ms": round(frame, 1),
            "share_of_frame_time": round(counting / frame, 4),
        },
    )


if __name__ == "__main__":
    main()
