"""odctl camera: the device's camera health (issue 36). ``reference`` resets the view the device compares with to
say the camera moved, after a deliberate move: from a source (the camera itself, a recording of its new view), or
removed so that the running device takes a new one from its current view."""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import numpy as np

from odctl.cli_types import positive_int
from odshared.core.errors import OdError

from .common import Command


def take_view(source: str, samples: int) -> tuple[np.ndarray, int]:
    """The device's background, the device's way: a frame per second of the source's clock (every frame of a folder
    or an image, which have none), the median of ``samples`` of them; with how many were found."""
    from odedge.camera_health import background, gray_view
    from odedge.sources import EndOfStream, open_source
    from odedge.telemetry import Counters

    frames = open_source(source, Counters(), max_retries=3)  # a camera that cannot be reached: one line, exit 2
    clocked = frames.live or frames.fps() > 0
    views: list[np.ndarray] = []
    next_at = -math.inf
    try:
        while len(views) < samples:
            try:
                frame = frames.read()
            except EndOfStream:
                break
            if frame is None or (clocked and frame.timestamp < next_at):
                continue
            next_at = frame.timestamp + 1.0
            views.append(gray_view(frame.image))
    finally:
        frames.close()
    if not views:
        raise OdError(f"{source}: no frame could be read")
    return background(views), len(views)


def _check_view(source: str, view: np.ndarray) -> dict[str, Any]:
    """Refuses a view the device would call covered, dark or overexposed: moved is judged against it for months."""
    import cv2

    from odedge.camera_health import (
        MIN_KEYPOINTS,
        SMALL_SIZE,
        CameraSettings,
        ViewMatcher,
        frame_measures,
        instant_conditions,
    )

    measures = frame_measures(cv2.resize(view, SMALL_SIZE, interpolation=cv2.INTER_AREA), None)
    bad = [state for state, on in instant_conditions(measures, CameraSettings()).items() if on]
    if bad:
        said = ", ".join(f"{k} {v:.2f}" for k, v in measures.items() if v is not None)
        raise OdError(f"{source}: the view is {' and '.join(bad)} ({said}): aim and uncover the camera, then again")
    keypoints = len(ViewMatcher(view).keypoints)
    checked: dict[str, Any] = {"keypoints": keypoints, "brightness": round(float(measures["brightness"] or 0), 1)}
    if keypoints < MIN_KEYPOINTS:
        checked["warning"] = f"{keypoints} features (under {MIN_KEYPOINTS}): too little texture to tell a move"
    return checked


def _cmd_reference(args: argparse.Namespace) -> Any:
    from odedge.camera_health import Reference, reference_path
    from odedge.durable import write_atomic

    path = reference_path(args.counts_file)
    assert path is not None
    if not path.parent.is_dir():
        raise OdError(f"--counts-file {args.counts_file}: no such folder {path.parent} (the device's work folder)")
    if args.source is None:
        removed = path.exists()
        path.unlink(missing_ok=True)
        return {
            "reference": str(path),
            "removed": removed,
            "next": "the device takes a new reference from its current view after about 10 s of healthy frames",
        }
    view, samples = take_view(args.source, args.samples)
    checked = _check_view(args.source, view)
    write_atomic(path, Reference(view, time.time(), "odctl").to_json())
    return {
        "reference": str(path),
        "source": args.source,
        "samples": samples,
        **checked,
        "next": "the device reads it within 5 s of its frames; moved clears, the sharpness baseline is learnt anew",
    }


def _reference_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "source", nargs="?", help="the camera (index, rtsp/http URL), a recording of its new view, an image or folder"
    )
    p.add_argument(
        "--counts-file",
        required=True,
        help="the device's totals' file (CountsFile: {work:path}/counts.json under Greengrass): camera.json beside it",
    )
    p.add_argument(
        "--samples",
        type=positive_int(60),
        default=9,
        help="frames, one a second of the source's clock, whose median is the view (as the device's background)",
    )


_REFERENCE = Command(
    "reference",
    "Take the camera's reference view from SOURCE (its new view) and put it where the device keeps it; without "
    "SOURCE, remove it: the running device takes a new one from what it sees.",
    "odctl camera reference videos/new_aim.mp4 --counts-file work/counts.json",
    _cmd_reference,
    _reference_options,
)

COMMANDS = (
    Command(
        "camera",
        "The device's camera health: reset the reference view after a deliberate move (odctl camera reference).",
        "odctl camera reference rtsp://camera-01/stream --counts-file /greengrass/v2/work/com.example.ObjectDetection/"
        "counts.json",
        actions=(_REFERENCE,),
    ),
)
