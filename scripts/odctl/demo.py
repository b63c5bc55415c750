"""The offline main job: generated videos -> frames -> labeling manifest -> labels -> training data.

Each step checks its outputs and is skipped when they exist, so a re-run resumes; ``fresh`` starts over.
Later steps (training, conversion, packaging, the device loop) join this chain as they land.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from odshared.log import log_event

logger = logging.getLogger(__name__)

CLASSES = ("blue box", "yellow box")
TRAIN_VIDEOS = (
    ("blue_box_1", ("blue box",), 11),
    ("yellow_box_1", ("yellow box",), 12),
    ("mixed_boxes_1", CLASSES, 13),
)
HELD_OUT_VIDEO = ("mixed_boxes_2", CLASSES, 101)


def _step(summary: dict[str, Any], name: str, done: Path, action: Callable[[], Any]) -> Any:
    """Run ``action`` unless ``done`` exists; record timing and result in ``summary``."""
    start = time.monotonic()
    if done.exists():
        log_event(logger, "demo.step_reused", step=name, output=str(done))
        summary["steps"][name] = {"reused": True}
        return None
    log_event(logger, "demo.step_started", step=name)
    result = action()
    summary["steps"][name] = {"seconds": round(time.monotonic() - start, 2), "result": result}
    log_event(logger, "demo.step_done", step=name, seconds=summary["steps"][name]["seconds"])
    return result


def run_demo(workdir: str, fresh: bool = False, s3: bool = False, frames_per_video: int = 160) -> dict[str, Any]:
    from odshared.dataprep import PrepareOptions, prepare_training
    from odshared.input_manifest import build_input_manifest

    from .frames import extract_frames
    from .local_labeling import label_from_known_boxes
    from .previews import preview_manifest, show_labels
    from .synth_video import SynthSpec, write_video

    if s3:
        raise NotImplementedError("--s3 joins the demo with the offline main job issue")
    root = Path(workdir)
    if fresh and root.exists():
        shutil.rmtree(root)
    videos, frames, data, report = root / "videos", root / "frames", root / "data", root / "report"
    for folder in (videos, frames, data, report):
        folder.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"workdir": str(root), "steps": {}}

    for name, classes, seed in (*TRAIN_VIDEOS, HELD_OUT_VIDEO):
        spec = SynthSpec(name, classes, frames=frames_per_video, seed=seed)
        _step(
            summary,
            f"synth-video {name}",
            videos / f"{name}.boxes.jsonl",
            lambda s=spec: str(write_video(s, videos)[0]),
        )
    for name, _, _ in TRAIN_VIDEOS:
        _step(
            summary,
            f"extract-frames {name}",
            report / f"frames_{name}.png",
            lambda n=name: extract_frames(
                str(videos / f"{n}.mp4"), str(frames / n), every=2, preview=str(report / f"frames_{n}.png")
            ).to_dict(),
        )
    manifest = data / "labeling.manifest"
    _step(
        summary,
        "make-manifest",
        manifest,
        lambda: build_input_manifest(
            [str(frames / name) for name, _, _ in TRAIN_VIDEOS], str(manifest), every=1, pattern="{color}_{object}_{n}"
        ).to_dict(),
    )
    _step(
        summary,
        "preview-manifest",
        report / "manifest.png",
        lambda: preview_manifest(str(manifest), str(report / "manifest.png")),
    )
    labeled = data / "labeling.output.manifest"
    _step(
        summary,
        "label-local",
        labeled,
        lambda: label_from_known_boxes(
            str(manifest), str(videos), str(labeled), list(CLASSES), job_name="demo-labeling"
        ),
    )
    _step(
        summary,
        "show-labels",
        report / "labels" / "grid.png",
        lambda: show_labels(str(labeled), str(report / "labels"), limit=96),
    )
    prepared = data / "prepared"
    _step(
        summary,
        "prepare-training",
        prepared / "classes.json",
        lambda: prepare_training([str(labeled)], str(prepared), PrepareOptions(classes=CLASSES, flip=True)).to_dict(),
    )
    (root / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary
