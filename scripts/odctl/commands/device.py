"""Device commands: package the Greengrass components, run the device loop here, watch what devices publish."""

from __future__ import annotations

import argparse
import json
import logging
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from odctl.cli_types import PORT, fraction, non_negative_int, positive_int, shape_option
from odedge.runtimes import BACKEND_CHOICES
from odshared.core.errors import OdError
from odshared.core.log import log_event

from .common import Command, add_precision

logger = logging.getLogger("odctl")


def _cmd_package_component(args: argparse.Namespace) -> Any:
    from odctl.packaging import package_components

    return package_components(
        args.model, args.out, args.name_prefix, args.version, args.model_version, args.artifact_uri, args.upload_bucket
    )


def _cmd_detect(args: argparse.Namespace) -> Any:
    from odedge.app import run
    from odedge.config import EdgeConfig, instant

    try:  # checked here so that the line names the option (the device's own check names its key, start_time)
        instant(args.start_time or "")
    except ValueError as exc:
        raise ValueError(f"--start-time: {exc}") from None
    for path in (args.out, args.counts_file, args.snapshots and str(Path(args.snapshots) / "x")):
        if path:  # a folder named for the output is made, as a user expects of --out
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    if args.out:
        Path(args.out).unlink(missing_ok=True)  # --out holds this run's messages only
    config = EdgeConfig.from_mapping(
        {
            "model_dir": args.model,
            "source": args.source,
            "backend": args.backend,
            "precision": args.precision,
            "threads": args.threads,
            "score_threshold": args.threshold,
            "publisher": "mqtt" if args.mqtt_host else "jsonl",
            "mqtt_host": args.mqtt_host or "localhost",
            "mqtt_port": args.mqtt_port,
            "jsonl": args.out or "-",
            "realtime": args.realtime,
            "loop": False,
            # OpenCV here is headless (no windows): --show writes the annotated frames to a folder instead
            "snapshot_dir": args.snapshots or ("detect-snapshots" if args.show else ""),
            "snapshot_interval": 0,
            "max_frames": args.max_frames,
            "max_retries": args.max_retries,
            "start_time": args.start_time or "",
            "publish_empty": args.publish_empty,
            "lines": json.dumps([shape_option(text, "--line") for text in args.line]) if args.line else "",
            "zones": json.dumps([shape_option(text, "--zone") for text in args.zone]) if args.zone else "",
            "counts_file": args.counts_file or "",
            "buffer_size": args.detections_buffer,
            "track": args.track,
        }
    )
    result = run(config)
    summary: dict[str, Any] = {
        "frames": result.frames,
        "fps": result.fps,
        "latency_ms": result.latency_ms,
        "counters": result.counters,
        "stopped_by": result.stopped_by,
        **({"counts": result.counts["lines"]} if result.counts is not None and result.counts["lines"] else {}),
        **({"zones": result.zones} if result.zones else {}),
        **({"clock": result.clock} if result.clock else {}),
        **({"warnings": list(result.warnings)} if result.warnings else {}),
    }
    if result.frames == 0:
        raise OdError(f"{args.source}: no frame could be read and inferred")
    if not args.out and not args.mqtt_host:  # stdout holds the messages: the summary is a log line
        log_event(logger, "detect.done", **summary)
        return None
    return summary


def _cmd_watch(args: argparse.Namespace) -> Any:
    from odctl.aws_errors import aws_errors
    from odctl.watch import DEFAULT_TOPICS, watch

    topics = tuple(args.topic or DEFAULT_TOPICS)
    with aws_errors("watch"), open(args.out, "w") if args.out else nullcontext(None) as out:
        summary = watch(topics, args.mqtt_host, args.mqtt_port, args.region, args.count, args.seconds, out)
    if summary["received"] == 0 and args.seconds:
        raise OdError(f"nothing was published on {list(topics)} within {args.seconds:g} s: is the component running?")
    if not args.out:  # stdout holds the messages: the summary is a log line
        log_event(logger, "watch.done", **summary)
        return None
    return summary


def _package_component_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="a converted model package folder (odctl convert)")
    p.add_argument("--out", required=True)
    p.add_argument("--name-prefix", default="com.example", help="component names: PREFIX.ObjectDetection[.Model]")
    p.add_argument("--version", default="1.0.0", help="inference component version (semver)")
    p.add_argument("--model-version", default="1.0.0", help="model component version (semver)")
    p.add_argument(
        "--artifact-uri",
        default="s3://local-artifacts/components",
        help="s3:// prefix the recipes point at (where the zips are uploaded)",
    )
    p.add_argument("--upload-bucket", default="", help="bucket for active-learning captures (default: none)")


def _detect_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="video file, image folder, camera index or rtsp/http URL")
    p.add_argument("--model", required=True, help="a converted model package folder")
    p.add_argument(
        "--out", help="JSON Lines file for the messages, replaced (default: stdout, the summary then on stderr)"
    )
    p.add_argument("--threshold", type=fraction(), default=0.5, help="minimum score of a published detection")
    p.add_argument(
        "--backend", choices=list(BACKEND_CHOICES), default="auto", help="as the device: openvino on x86-64, else onnx"
    )
    add_precision(p)
    p.add_argument("--threads", type=non_negative_int(), default=0, help="the runtime's threads (0: one per core)")
    p.add_argument("--mqtt-host", help="publish to this MQTT broker instead of JSON Lines")
    p.add_argument("--mqtt-port", type=PORT, default=1883)
    p.add_argument("--realtime", action="store_true", help="play a file at its frame rate, dropping late frames")
    p.add_argument("--snapshots", help="write annotated frames to this folder")
    p.add_argument("--max-frames", type=non_negative_int(), default=0, help="stop after N frames (0: no limit)")
    p.add_argument(
        "--max-retries",
        type=non_negative_int(),
        default=5,
        help="a camera or stream that fails is retried with backoff this many times (0: forever)",
    )
    p.add_argument("--publish-empty", action="store_true", help="also publish frames without detections")
    p.add_argument(
        "--start-time",
        help="a video file's first frame's time, ISO 8601 with its zone (2026-03-01T08:00:00Z): messages are "
        "stamped start + position in the video (default: the file's modification time less its duration; the "
        "summary's clock says which); cameras keep the wall clock",
    )
    p.add_argument(
        "--line",
        action="append",
        help="count crossings: NAME:x1,y1,x2,y2[:DIRECTION] (fractions of the frame, 0,0 top-left); DIRECTION is "
        "the way in, as a move on the image: left-to-right or right-to-left for a line down the picture, "
        "top-to-bottom or bottom-to-top for a line across it (door:0,0.55,1,0.55:top-to-bottom counts a move down "
        "as in), either pair for a diagonal; a word that runs along the line is refused with the words that fit; "
        "without one, as before: a move right across a line drawn downwards, up across one drawn left to right "
        "(odctl preview-lines draws the arrow); repeatable",
    )
    _add_detect_outputs(p)


def _add_detect_outputs(p: argparse.ArgumentParser) -> None:
    """detect's zones and what it keeps and shows besides its messages (apart, so each part reads on one screen)."""
    p.add_argument(
        "--zone",
        action="append",
        help="report occupancy: NAME:x1,y1,x2,y2,x3,y3,... (fractions); the summary gives each zone's final and "
        "peak occupancy, visits and dwell",
    )
    p.add_argument(
        "--counts-file",
        help="keep the totals and the sequence here across runs, and the crossings not yet delivered in an outbox "
        "folder beside it (sent at the next run)",
    )
    p.add_argument(
        "--detections-buffer",
        type=positive_int(),
        default=1000,
        help="detection and health messages kept while the broker is away (the oldest dropped past it; crossings "
        "never are)",
    )
    p.add_argument("--track", action="store_true", help="give detections track ids (on with --line or --zone)")
    p.add_argument(
        "--show", action="store_true", help="write annotated frames to ./detect-snapshots (OpenCV is headless here)"
    )


def _watch_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--topic",
        action="append",
        help="MQTT topic filter, repeatable (default: od/+/detections, od/+/health, od/+/counts)",
    )
    p.add_argument("--mqtt-host", help="a local MQTT broker instead of AWS IoT Core")
    p.add_argument("--mqtt-port", type=PORT, default=1883)
    p.add_argument("--region", help="AWS IoT Core's region (default: the profile's)")
    p.add_argument("--count", type=non_negative_int(), default=0, help="stop after N messages (0: no limit)")
    p.add_argument("--seconds", type=non_negative_int(), default=0, help="stop after S seconds (0: no limit)")
    p.add_argument("--out", help="JSON Lines file for the messages, replaced (default: stdout)")


def _cmd_preview_lines(args: argparse.Namespace) -> Any:
    from odctl.line_preview import preview_lines

    lines = [shape_option(text, "--line") for text in args.line or []]
    zones = [shape_option(text, "--zone") for text in args.zone or []]
    return preview_lines(args.source, lines, zones, args.out, args.frame)


def _preview_lines_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="a video file, an image, or a folder of images")
    p.add_argument("--line", action="append", help="as odctl detect's --line; repeatable")
    p.add_argument("--zone", action="append", help="as odctl detect's --zone; repeatable")
    p.add_argument("--out", required=True, help="the picture to write (.png or .jpg)")
    p.add_argument("--frame", type=non_negative_int(), default=0, help="which frame (0: the first)")


# the group's subcommands, in the order of `odctl --help`
COMMANDS = (
    Command(
        "package-component",
        "Write the inference and model Greengrass components (recipes/ and artifacts/) for greengrass-cli or upload.",
        "odctl package-component --model models/job-1 --out gg/ --name-prefix com.example --version 1.0.0",
        _cmd_package_component,
        _package_component_options,
    ),
    Command(
        "detect",
        "Run the device's inference loop on a workstation (video, folder, camera or URL).",
        "odctl detect videos/mixed_boxes_2.mp4 --model models/job-1 --out detections.jsonl",
        _cmd_detect,
        _detect_options,
    ),
    Command(
        "preview-lines",
        "Draw counting lines (with the way in) and zones on one frame of a video, image or folder, to check them.",
        "odctl preview-lines videos/door.mp4 --line door:0,0.55,1,0.55:top-to-bottom --out line.png",
        _cmd_preview_lines,
        _preview_lines_options,
    ),
    Command(
        "watch",
        "Print what the devices publish (AWS IoT Core with your AWS credentials, or a local MQTT broker).",
        "odctl watch --topic 'od/camera-01/detections' --count 10",
        _cmd_watch,
        _watch_options,
    ),
)
