"""Camera health's cost per frame as a share of the loop's frame time, both measured in this one run (issue 36).

The loop: odedge reading 1920x1080 camera frames from a folder (bench.inputs: the two real seed frames, then generated
ones), camera health on as the device runs it, with `make demo`'s model (the tiny SSD at 300: the fastest loop, so
the largest share), ``--model seed`` (the seed's ResNet-50 SSD 512, as edge_bench builds it) or a package's folder;
its per-frame time is the steady-state frame rate's inverse. The same run once more with camera health off gives a
second, noisier figure (the loop's time on / off). Camera health alone: ``CameraHealth.watch`` over the same decoded
frames, cycled, on a clock that advances by the loop's frame time (a live camera's frames are stamped as the loop
takes them), so its background checks every 2 s fall on as many frames as they would on the device.
``python -m bench.camera_health_bench [--model demo|seed|PKG] [--frames 60] [--seconds 120]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.common import run_loop
from bench.inputs import camera_frames
from bench.measure import REPO

DEMO_MODEL = REPO / "demo-work" / "data" / "models" / "demo-job"  # where `make demo` converts its model
EPOCH = 1_767_225_600.0


def model_folder(name: str) -> str:
    """demo: `make demo`'s package; seed: the seed's ResNet-50 512 graph (random weights), made once under bench/out."""
    if name == "demo":
        return str(DEMO_MODEL)
    if name != "seed":
        return name
    from bench.inputs import OUT, build_artifact
    from odshared.model.convert import convert

    package = OUT / "resnet50-512" / "package"
    if not (package / "model.json").exists():
        convert(str(build_artifact(OUT / "resnet50-512" / "model.tar.gz")), str(package), ["blue box", "yellow box"])
    return str(package)


def loop_ms(model: str, folder: Path, camera: bool) -> float:
    """The loop's steady-state time per frame over the folder (the first, slow, run excluded as the loop does)."""
    from unittest import mock

    from odedge import camera_health

    off = mock.patch.object(camera_health, "from_config", return_value=None)
    with nullcontext() if camera else off:
        result, _ = run_loop(model, folder, publish_empty="true")
    return 1000.0 / result.fps


def camera_ms(images: list[np.ndarray], frame_s: float, seconds: float) -> dict[str, Any]:
    """``watch`` over the images, cycled for ``seconds`` of a clock advancing ``frame_s`` a frame: the mean per
    frame, the mean of the frames that carried a background check (the ORB comparison), and the largest."""
    from odedge.camera_health import CameraHealth

    health = CameraHealth()
    checks: list[float] = []
    others: list[float] = []
    count = int(seconds / frame_s)
    for index in range(count):
        due = health.next_check
        started = time.perf_counter()
        health.watch(images[index % len(images)], EPOCH + index * frame_s)
        spent = (time.perf_counter() - started) * 1000
        (checks if health.next_check != due else others).append(spent)
    return {
        "frames": count,
        "mean_ms": statistics.mean(checks + others),
        "without_checks_ms": statistics.mean(others),
        "check_frames": len(checks),
        "check_mean_ms": statistics.mean(checks) if checks else 0.0,
        "max_ms": max(checks + others),
        "states": health.flag or "ok",
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.camera_health_bench")
    parser.add_argument("--model", default="demo", help="demo (make demo's), seed (ResNet-50 512) or a package folder")
    parser.add_argument("--frames", type=int, default=60, help="1920x1080 frames the loop reads")
    parser.add_argument("--seconds", type=float, default=120.0, help="the camera clock's seconds camera health sees")
    args = parser.parse_args(argv)
    model = model_folder(args.model)
    if not (Path(model) / "model.json").exists():
        raise SystemExit(f"{model}: no converted model there (run `make demo`, or pass --model seed or a package)")
    logging.disable(logging.WARNING)  # the states the cycled frames may enter are not what is measured here
    with tempfile.TemporaryDirectory() as tmp:
        paths = camera_frames(Path(tmp) / "frames", args.frames)
        images = [image for image in (cv2.imread(str(path)) for path in paths) if image is not None]
        loop_on = loop_ms(model, Path(tmp) / "frames", camera=True)
        loop_off = loop_ms(model, Path(tmp) / "frames", camera=False)
    camera = camera_ms(images, loop_on / 1000, args.seconds)
    report = {
        "frames": "1920x1080 (bench.inputs.camera_frames)",
        "model": model,
        "loop_ms_per_frame": round(loop_on, 2),
        "camera_health_ms_per_frame": round(camera["mean_ms"], 3),
        "share_of_loop": round(camera["mean_ms"] / loop_on, 4),
        "camera_health_detail": {k: round(v, 3) if isinstance(v, float) else v for k, v in camera.items()},
        "loop_ms_per_frame_camera_health_off": round(loop_off, 2),
        "loop_on_vs_off": round(loop_on / loop_off, 3),
    }
    print(json.dumps(report, indent=2))  # noqa: T201 - a benchmark's output is its report
    return report


if __name__ == "__main__":
    main()
