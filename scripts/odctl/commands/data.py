"""Data commands: record and generate video, extract frames, build and preview manifests, prepare training data."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from odctl.cli_types import Number, fraction, non_negative_int, positive_float, positive_int
from odctl.synth_video import CROSSING_DIRECTIONS
from odshared.core.errors import OdError

from .common import IMAGES_HELP, Command, add_label_attribute, add_skip_invalid


def _cmd_record(args: argparse.Namespace) -> Any:
    from odctl.record import record

    return record(args.camera, args.name, args.out, args.seconds, args.fps, args.overwrite).to_dict()


def _cmd_synth_video(args: argparse.Namespace) -> Any:
    from odctl.synth_video import SynthSpec, parse_classes, write_video

    spec = SynthSpec(
        args.name,
        parse_classes(args.classes),
        args.frames,
        args.width,
        args.height,
        args.fps,
        args.seed,
        args.scenario,
        args.direction or "left-right",
    )
    if args.direction and args.scenario != "crossings":
        raise OdError(f"--direction {args.direction}: applies to --scenario crossings (add it)")
    video, boxes = write_video(spec, args.out)
    result: dict[str, Any] = {"video": str(video), "boxes": str(boxes), "frames": spec.frames}
    if spec.scenario == "crossings":
        result.update(_crossings_truth(spec.direction, boxes))
    return result


def _crossings_truth(direction: str, boxes: Path) -> dict[str, Any]:
    """The line that a crossings video crosses and what a counter on it should report (the true tracks through
    the device's own counting rule), so a user can run detect or evaluate-tracking with that line and compare."""
    import json

    from odctl.cli_types import shape_option
    from odctl.counting_truth import true_totals
    from odctl.synth_video import crossing_line
    from odedge.counting import parse_lines

    line = crossing_line(direction)
    lines = parse_lines(json.dumps([shape_option(line, "--line")]), notify=False)
    return {"line": line, "true_counts": true_totals(boxes, lines)}


def _cmd_extract_frames(args: argparse.Namespace) -> Any:
    from odctl.progress import bar
    from odshared.data.frames import extract_frames

    with bar(None, f"extract {Path(args.video).stem}", "frame") as pb:
        summary = extract_frames(
            args.video, args.out, args.every, args.fps, args.preview, workers=args.workers, on_frame=pb.update
        )
    return summary.to_dict()


def _cmd_make_manifest(args: argparse.Namespace) -> Any:
    from odctl.progress import bar
    from odshared.data.input_manifest import build_input_manifest

    with bar(None, "list", "object") as pb:
        summary = build_input_manifest(
            args.frames, args.out, args.every, args.metadata_from_name, args.skip_invalid, on_item=pb.update
        )
    return summary.to_dict()


def _cmd_preview_manifest(args: argparse.Namespace) -> Any:
    from odctl.previews import preview_manifest

    return preview_manifest(args.manifest, args.out, args.count, images=args.images)


def _read_ids(uri: str | None) -> frozenset[str]:
    if not uri:
        return frozenset()
    from odshared.core import storage

    return frozenset(line.strip() for line in storage.iter_lines(uri) if line.strip() and not line.startswith("#"))


def _cmd_prepare_training(args: argparse.Namespace) -> Any:
    from odctl.synth_video import parse_classes
    from odshared.data.dataprep import ClassRule, PrepareOptions, prepare_training

    options = PrepareOptions(
        label_attribute=args.label_attribute,
        discard=_read_ids(args.discard),
        min_confidence=args.min_confidence,
        class_rules=tuple(ClassRule.parse(rule) for rule in args.class_from or ()),
        classes=parse_classes(args.classes) if args.classes else None,
        validation_fraction=args.validation_fraction,
        seed=args.seed,
        flip=args.flip,
        keep_empty=args.keep_empty,
        skip_invalid=args.skip_invalid,
        flip_to=args.flip_to,
        images=args.images,
    )
    if args.flip_to and not args.flip:
        raise OdError("--flip-to applies to --flip (where the mirrored images are written)")
    return prepare_training(args.manifests, args.out, options).to_dict()


def _record_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--camera", required=True, help="camera index (0), a video file, or an rtsp/http URL")
    p.add_argument("--name", required=True, help="video name; it carries the class, e.g. blue_box_1")
    p.add_argument(
        "--seconds", type=positive_float(), help="stop after this many seconds of video (else q+Enter, Ctrl-C or end)"
    )
    p.add_argument("--fps", type=positive_float(240), help="frame rate written to the mp4 (default: the source's)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing recording of the same name")
    p.add_argument("--out", default=".", help="output folder (default: .)")


def _synth_video_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="folder for NAME.mp4 and NAME.boxes.jsonl")
    p.add_argument("--name", required=True, help="video name (its words may carry metadata: blue_box_1)")
    p.add_argument("--classes", required=True, help="comma-separated class names; colour words pick colours")
    p.add_argument("--frames", type=positive_int(100_000), default=300, help="number of frames")
    p.add_argument("--seed", type=non_negative_int(), default=0, help="random seed (same seed, same video)")
    p.add_argument("--width", type=Number(int, 64, 3840), default=640, help="frame width in pixels")
    p.add_argument("--height", type=Number(int, 64, 2160), default=360, help="frame height in pixels")
    p.add_argument("--fps", type=positive_float(240), default=10.0, help="frame rate")
    p.add_argument(
        "--scenario",
        choices=["random", "crossings"],
        default="random",
        help="random: boxes bounce around; crossings: boxes cross the middle of the frame, pass each other, stop "
        "on the line and turn back (for counting lines; the result names the line and its true counts)",
    )
    p.add_argument(
        "--direction",
        choices=list(CROSSING_DIRECTIONS),
        help="with --scenario crossings, which way the boxes move: left-right (the default: both ways across the "
        "vertical middle line), top-bottom (both ways across the horizontal middle line), or one way only: "
        "left-to-right, right-to-left, top-to-bottom, bottom-to-top",
    )


def _extract_frames_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", help="video file or s3:// URI")
    p.add_argument("--out", required=True, help="folder or s3://bucket/prefix")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--every", type=positive_int(), help="keep one frame in N")
    group.add_argument("--fps", type=positive_float(), help="keep about F frames per second of video")
    p.add_argument("--preview", help="write a contact sheet with timestamps here (PNG)")
    p.add_argument("--workers", type=positive_int(64), default=8, help="parallel uploads")


def _make_manifest_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("frames", nargs="+", help="frames folders or s3:// prefixes (merged in the order given)")
    p.add_argument("--out", required=True, help="manifest path or s3:// URI")
    p.add_argument("--every", type=positive_int(), default=1, help="keep one frame in N of each video")
    p.add_argument(
        "--metadata-from-name",
        help="pattern over the video name, e.g. '{color}_{object}_{n}'; "
        "{n}, {frame} and {_x} fields are matched but not written",
    )
    add_skip_invalid(p)


def _preview_manifest_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("manifest")
    p.add_argument("--out", required=True)
    p.add_argument("--count", type=positive_int(1000), default=48, help="images to show")
    p.add_argument("--images", help=IMAGES_HELP)


def _prepare_training_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("manifests", nargs="+", help="output manifests of one or more labeling jobs")
    p.add_argument("--out", required=True, help="folder or s3:// prefix")
    add_label_attribute(p)
    p.add_argument("--discard", help="file listing images to drop (source-ref, file name or stem per line)")
    p.add_argument("--min-confidence", type=fraction(), default=0.0, help="drop boxes below this worker confidence")
    p.add_argument(
        "--class-from",
        action="append",
        metavar="KEY=VALUE:CLASS",
        help="class of every box on lines whose KEY is VALUE (repeatable)",
    )
    p.add_argument("--classes", help="comma-separated class names fixing the class ids (default: derived)")
    p.add_argument("--validation-fraction", type=fraction(high_open=True), default=0.1, help="share of images held out")
    p.add_argument("--seed", type=non_negative_int(), default=42, help="seed of the split")
    p.add_argument("--flip", action="store_true", help="add mirrored copies of the training images")
    p.add_argument(
        "--flip-to",
        help="folder or s3:// prefix for the mirrored images (default: beside the originals, which must be writable)",
    )
    p.add_argument("--images", help=IMAGES_HELP)
    p.add_argument("--keep-empty", action="store_true", help="keep images without boxes (dropped by default)")
    add_skip_invalid(p)


# the group's subcommands, in the order of `odctl --help`
COMMANDS = (
    Command(
        "record",
        "Record a camera (index, file or rtsp/http URL) into <out>/<name>.mp4.",
        "odctl record --camera 0 --name blue_box_1 --seconds 60 --out videos/",
        _cmd_record,
        _record_options,
    ),
    Command(
        "synth-video",
        "Generate a video of coloured boxes and its exact per-frame boxes (JSONL).",
        'odctl synth-video --out videos/ --name blue_box_1 --classes "blue box,yellow box" --frames 300 --seed 1',
        _cmd_synth_video,
        _synth_video_options,
    ),
    Command(
        "extract-frames",
        "Extract <video-stem>_<frame:06d>.jpg frames to a folder or s3:// prefix.",
        "odctl extract-frames videos/blue_box_1.mp4 --out s3://my-bucket/frames/blue_box_1 --every 5 "
        "--preview blue_box_1.png",
        _cmd_extract_frames,
        _extract_frames_options,
    ),
    Command(
        "make-manifest",
        "Write a Ground Truth input manifest from frames folders or s3:// prefixes.",
        "odctl make-manifest s3://bucket/frames/blue_box_1 s3://bucket/frames/yellow_box_1 "
        "--out s3://bucket/manifests/boxes.manifest --every 3 --metadata-from-name '{color}_{object}_{n}'",
        _cmd_make_manifest,
        _make_manifest_options,
    ),
    Command(
        "preview-manifest",
        "A contact sheet of the images a manifest lists.",
        "odctl preview-manifest boxes.manifest --out boxes.png",
        _cmd_preview_manifest,
        _preview_manifest_options,
    ),
    Command(
        "prepare-training",
        "Ground Truth output manifests -> train/validation manifests, classes.json and stats.",
        "odctl prepare-training blue.output.manifest yellow.output.manifest --out prepared/ "
        "--class-from 'color=blue:blue box' --class-from 'color=yellow:yellow box' --flip",
        _cmd_prepare_training,
        _prepare_training_options,
    ),
)
