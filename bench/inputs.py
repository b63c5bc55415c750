"""What the benchmarks measure on: the seed's full-size artifact and camera-sized frames, made once under bench/out."""

from __future__ import annotations

from pathlib import Path

import cv2

from bench.measure import REPO

SEED = REPO.parent / "shared" / "fixtures" / "seed"
OUT = Path(__file__).resolve().parent / "out"


def build_artifact(path: Path) -> Path:
    """SageMaker's layout: the seed's ResNet-50 512 graph with training heads and seeded random weights."""
    if path.exists():
        return path
    from odctl import mxnet_env

    mxnet_env.call("reference-model", {"kind": "resnet50-seed", "out": str(path), "seed_dir": str(SEED)})
    return path


def camera_frames(folder: Path, count: int) -> list[Path]:
    """The two real seed frames, then generated 1920x1080 frames, as JPEG files."""
    from odctl.synth_video import SynthSpec, render

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    seeds = [cv2.imread(str(SEED / "blue_box_1_000133.jpg")), cv2.imread(str(SEED / "yellow_box_1_000086.jpg"))]
    generated = render(SynthSpec("b", ("blue box", "yellow box"), frames=count, width=1920, height=1080, seed=3))
    for index in range(count):
        image = seeds[index] if index < 2 else next(generated)[0]
        path = folder / f"frame_{index:04d}.jpg"
        cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(path)
    return paths
