"""The ``odctl`` command line: one subcommand per step of the operator's journey."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from odedge.model import ModelError
from odshared.core.errors import OdError
from odshared.core.log import configure, log_event

from .cli_types import PORT, Number, fraction, non_negative_int, positive_float, positive_int

logger = logging.getLogger("odctl")

Handler = Callable[[argparse.Namespace], Any]


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Examples kept as written; every option that has a default shows it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = action.default is not None and action.default is not False and action.default != argparse.SUPPRESS
        if shown and "default" not in text and action.option_strings:
            text += " (default: %(default)s)"
        return text


def _common_options() -> argparse.ArgumentParser:
    """Options every subcommand also takes after its name (``odctl detect … --log-level DEBUG``)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", default=argparse.SUPPRESS, help="DEBUG, INFO (default), WARNING or ERROR")
    return common


def _command(sub: Any, name: str, summary: str, example: str, handler: Handler) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=f"example:\n  {example}",
        formatter_class=HelpFormatter,
        parents=[_common_options()],
    )
    parser.set_defaults(handler=handler)
    return parser


def _cmd_record(args: argparse.Namespace) -> Any:
    from .record import record

    return record(args.camera, args.name, args.out, args.seconds, args.fps, args.overwrite).to_dict()


def _cmd_synth_video(args: argparse.Namespace) -> Any:
    from .synth_video import SynthSpec, parse_classes, write_video

    spec = SynthSpec(args.name, parse_classes(args.classes), args.frames, args.width, args.height, args.fps, args.seed)
    video, boxes = write_video(spec, args.out)
    return {"video": str(video), "boxes": str(boxes), "frames": spec.frames}


def _cmd_extract_frames(args: argparse.Namespace) -> Any:
    from odshared.data.frames import extract_frames

    from .progress import bar

    with bar(None, f"extract {Path(args.video).stem}", "frame") as pb:
        summary = extract_frames(
            args.video, args.out, args.every, args.fps, args.preview, workers=args.workers, on_frame=pb.update
        )
    return summary.to_dict()


def _cmd_make_manifest(args: argparse.Namespace) -> Any:
    from odshared.data.input_manifest import build_input_manifest

    from .progress import bar

    with bar(None, "list", "object") as pb:
        summary = build_input_manifest(
            args.frames, args.out, args.every, args.metadata_from_name, args.skip_invalid, on_item=pb.update
        )
    return summary.to_dict()


def _cmd_preview_manifest(args: argparse.Namespace) -> Any:
    from .previews import preview_manifest

    return preview_manifest(args.manifest, args.out, args.count, images=args.images)


def _cmd_show_labels(args: argparse.Namespace) -> Any:
    from .previews import show_labels

    return show_labels(args.manifest, args.out, args.label_attribute, args.limit, args.skip_invalid, images=args.images)


def _read_ids(uri: str | None) -> frozenset[str]:
    if not uri:
        return frozenset()
    from odshared.core import storage

    return frozenset(line.strip() for line in storage.iter_lines(uri) if line.strip() and not line.startswith("#"))


def _cmd_prepare_training(args: argparse.Namespace) -> Any:
    from odshared.data.dataprep import ClassRule, PrepareOptions, prepare_training

    from .synth_video import parse_classes

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
    if (args.flip_to or args.images) and not args.flip:
        raise OdError("--flip-to and --images apply to --flip (the only step that reads or writes images)")
    return prepare_training(args.manifests, args.out, options).to_dict()


def _cmd_label_local(args: argparse.Namespace) -> Any:
    from .local_labeling import label_from_known_boxes
    from .synth_video import parse_classes

    count = label_from_known_boxes(
        args.manifest, args.boxes_dir, args.out, list(parse_classes(args.classes)), args.label_attribute, args.job_name
    )
    return {"out": args.out, "lines": count}


def _cmd_convert(args: argparse.Namespace) -> Any:
    from odshared.model.convert import convert

    from .synth_video import parse_classes

    overrides = {"nms_threshold": args.nms_threshold, "nms_topk": args.nms_topk, "threshold": args.threshold}
    if args.force_suppress is not None:
        overrides["force_suppress"] = args.force_suppress == "true"
    classes = list(parse_classes(args.classes)) if args.classes else None
    return convert(args.model, args.out, classes, **overrides)


def _cmd_train_local(args: argparse.Namespace) -> Any:
    from .synth_video import parse_classes
    from .train_local import default_output, load_hyperparameters, train_local

    result = train_local(
        args.train,
        args.validation,
        default_output(args.out),
        load_hyperparameters(args.hyperparameters),
        args.base_network,
        args.images,
        args.label_attribute,
        list(parse_classes(args.classes)) if args.classes else None,
        args.seed,
    )
    return result.to_dict()


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    pairs = {}
    for value in values or ():
        left, sep, right = value.partition("=")
        if not sep or not left.strip() or not right.strip():
            raise OdError(f"{option} {value!r}: expected NAME=NAME")
        pairs[left.strip()] = right.strip()
    return pairs


def _cmd_evaluate(args: argparse.Namespace) -> Any:
    from .evaluate import evaluate
    from .synth_video import parse_classes

    report = evaluate(
        args.model,
        args.manifest,
        args.out,
        args.iou,
        args.label_attribute,
        args.images,
        args.backend,
        list(parse_classes(args.classes)) if args.classes else None,
        _pairs(args.class_map, "--class-map"),
    )
    report.pop("curves")
    return report


def _cmd_package_component(args: argparse.Namespace) -> Any:
    from .packaging import package_components

    return package_components(
        args.model, args.out, args.name_prefix, args.version, args.model_version, args.artifact_uri, args.upload_bucket
    )


def _cmd_detect(args: argparse.Namespace) -> Any:
    from odedge.app import run
    from odedge.config import EdgeConfig

    if args.out:
        Path(args.out).unlink(missing_ok=True)  # --out holds this run's messages only
    config = EdgeConfig.from_mapping(
        {
            "model_dir": args.model,
            "source": args.source,
            "backend": args.backend,
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
            "publish_empty": args.publish_empty,
        }
    )
    result = run(config)
    summary = {
        "frames": result.frames,
        "fps": result.fps,
        "latency_ms": result.latency_ms,
        "counters": result.counters,
        "stopped_by": result.stopped_by,
    }
    if result.frames == 0:
        raise OdError(f"{args.source}: no frame could be read and inferred")
    if not args.out and not args.mqtt_host:  # stdout holds the messages: the summary is a log line
        log_event(logger, "detect.done", **summary)
        return None
    return summary


def _cmd_pipeline(args: argparse.Namespace) -> Any:
    from . import pipeline_cli
    from .aws_errors import aws_errors
    from .synth_video import parse_classes
    from .train_local import load_hyperparameters

    if args.action == "start":
        deploy: bool | str = args.deploy if args.deploy not in (None, "") else (args.deploy == "")
        payload = pipeline_cli.execution_input(
            args.manifest,
            args.labeling_manifest,
            list(parse_classes(args.classes)) if args.classes else None,
            load_hyperparameters(args.hyperparameters),
            deploy,
            args.run_name,
        )  # checked before any AWS call
        with aws_errors("pipeline start"):
            return pipeline_cli.start(args.stack, payload)
    if args.action == "ingest":
        if not args.execution:
            raise OdError("pipeline ingest needs the videos' s3:// prefix (odctl pipeline ingest s3://BUCKET/videos/)")
        with aws_errors("pipeline ingest"):
            bucket = pipeline_cli.stack_outputs(args.stack)["DataBucketName"]
            payload = pipeline_cli.ingestion_input(
                args.execution, bucket, args.every, args.fps, args.metadata_from_name, args.run_name
            )
            return pipeline_cli.start_ingestion(args.stack, payload)
    with aws_errors(f"pipeline {args.action}"):
        if args.action == "status":
            return pipeline_cli.status(args.execution, args.stack)
        return pipeline_cli.list_runs(args.stack)


def _cmd_watch(args: argparse.Namespace) -> Any:
    from .aws_errors import aws_errors
    from .watch import DEFAULT_TOPICS, watch

    topics = tuple(args.topic or DEFAULT_TOPICS)
    with aws_errors("watch"), open(args.out, "w") if args.out else nullcontext(None) as out:
        summary = watch(topics, args.mqtt_host, args.mqtt_port, args.region, args.count, args.seconds, out)
    if summary["received"] == 0 and args.seconds:
        raise OdError(f"nothing was published on {list(topics)} within {args.seconds:g} s: is the component running?")
    if not args.out:  # stdout holds the messages: the summary is a log line
        log_event(logger, "watch.done", **summary)
        return None
    return summary


def _cmd_demo(args: argparse.Namespace) -> Any:
    from .demo import run_demo

    summary = run_demo(args.workdir, fresh=args.fresh, s3=args.s3, minutes=args.minutes)
    figures = summary["figures"]
    sys.stderr.write(
        f"mAP@0.5 on the held-out video: {figures['heldout_mAP@0.5']:.3f}; inference loop: "
        f"{figures['loop_fps']:.1f} FPS; report: {summary['workdir']}/report/report.html\n"
    )
    return {"figures": figures, "report": f"{summary['workdir']}/report/report.html", "seconds": summary["seconds"]}


IMAGES_HELP = "folder or s3:// prefix holding the images, when the manifest's source-refs point elsewhere"
EXAMPLES = """examples:
  odctl synth-video --out videos/ --name blue_box_1 --classes "blue box,yellow box"
  odctl extract-frames videos/blue_box_1.mp4 --out frames/blue_box_1 --every 5
  odctl make-manifest frames/ --out boxes.manifest --metadata-from-name '{color}_{object}_{n}'
  odctl prepare-training output.manifest --out prepared/ --class-from 'color=blue:blue box'
  odctl pipeline start --manifest s3://bucket/labels/job/manifests/output/output.manifest --deploy
  odctl demo

Every command prints a JSON result on stdout, logs JSON lines on stderr, and exits 2 with one line naming
the file, line or option at fault. `odctl COMMAND --help` shows a command's options and an example.
"""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("edge-object-detector")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="odctl", description=__doc__, epilog=EXAMPLES, formatter_class=HelpFormatter)
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO (default), WARNING or ERROR")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _command(
        sub,
        "record",
        "Record a camera (index, file or rtsp/http URL) into <out>/<name>.mp4.",
        "odctl record --camera 0 --name blue_box_1 --seconds 60 --out videos/",
        _cmd_record,
    )
    p.add_argument("--camera", required=True, help="camera index (0), a video file, or an rtsp/http URL")
    p.add_argument("--name", required=True, help="video name; it carries the class, e.g. blue_box_1")
    p.add_argument(
        "--seconds", type=positive_float(), help="stop after this many seconds of video (else q+Enter, Ctrl-C or end)"
    )
    p.add_argument("--fps", type=positive_float(240), help="frame rate written to the mp4 (default: the source's)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing recording of the same name")
    p.add_argument("--out", default=".", help="output folder (default: .)")

    p = _command(
        sub,
        "synth-video",
        "Generate a video of coloured boxes and its exact per-frame boxes (JSONL).",
        'odctl synth-video --out videos/ --name blue_box_1 --classes "blue box,yellow box" --frames 300 --seed 1',
        _cmd_synth_video,
    )
    p.add_argument("--out", required=True, help="folder for NAME.mp4 and NAME.boxes.jsonl")
    p.add_argument("--name", required=True, help="video name (its words may carry metadata: blue_box_1)")
    p.add_argument("--classes", required=True, help="comma-separated class names; colour words pick colours")
    p.add_argument("--frames", type=positive_int(100_000), default=300, help="number of frames")
    p.add_argument("--seed", type=non_negative_int(), default=0, help="random seed (same seed, same video)")
    p.add_argument("--width", type=Number(int, 64, 3840), default=640, help="frame width in pixels")
    p.add_argument("--height", type=Number(int, 64, 2160), default=360, help="frame height in pixels")
    p.add_argument("--fps", type=positive_float(240), default=10.0, help="frame rate")

    p = _command(
        sub,
        "extract-frames",
        "Extract <video-stem>_<frame:06d>.jpg frames to a folder or s3:// prefix.",
        "odctl extract-frames videos/blue_box_1.mp4 --out s3://my-bucket/frames/blue_box_1 --every 5 "
        "--preview blue_box_1.png",
        _cmd_extract_frames,
    )
    p.add_argument("video", help="video file or s3:// URI")
    p.add_argument("--out", required=True, help="folder or s3://bucket/prefix")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--every", type=positive_int(), help="keep one frame in N")
    group.add_argument("--fps", type=positive_float(), help="keep about F frames per second of video")
    p.add_argument("--preview", help="write a contact sheet with timestamps here (PNG)")
    p.add_argument("--workers", type=positive_int(64), default=8, help="parallel uploads")

    p = _command(
        sub,
        "make-manifest",
        "Write a Ground Truth input manifest from frames folders or s3:// prefixes.",
        "odctl make-manifest s3://bucket/frames/blue_box_1 s3://bucket/frames/yellow_box_1 "
        "--out s3://bucket/manifests/boxes.manifest --every 3 --metadata-from-name '{color}_{object}_{n}'",
        _cmd_make_manifest,
    )
    p.add_argument("frames", nargs="+", help="frames folders or s3:// prefixes (merged in the order given)")
    p.add_argument("--out", required=True, help="manifest path or s3:// URI")
    p.add_argument("--every", type=positive_int(), default=1, help="keep one frame in N of each video")
    p.add_argument(
        "--metadata-from-name",
        help="pattern over the video name, e.g. '{color}_{object}_{n}'; "
        "{n}, {frame} and {_x} fields are matched but not written",
    )
    p.add_argument("--skip-invalid", action="store_true", help="write the valid lines and rejected.jsonl")

    p = _command(
        sub,
        "preview-manifest",
        "A contact sheet of the images a manifest lists.",
        "odctl preview-manifest boxes.manifest --out boxes.png",
        _cmd_preview_manifest,
    )
    p.add_argument("manifest")
    p.add_argument("--out", required=True)
    p.add_argument("--count", type=positive_int(1000), default=48, help="images to show")
    p.add_argument("--images", help=IMAGES_HELP)

    p = _command(
        sub,
        "show-labels",
        "Draw Ground Truth boxes, classes and confidences on the images.",
        "odctl show-labels output.manifest --out labels/ --label-attribute bb",
        _cmd_show_labels,
    )
    p.add_argument("manifest", help="a Ground Truth output manifest")
    p.add_argument("--out", required=True)
    p.add_argument("--label-attribute", default="bb")
    p.add_argument("--limit", type=positive_int(), help="draw at most this many images")
    p.add_argument("--images", help=IMAGES_HELP)
    p.add_argument("--skip-invalid", action="store_true")

    p = _command(
        sub,
        "prepare-training",
        "Ground Truth output manifests -> train/validation manifests, classes.json and stats.",
        "odctl prepare-training blue.output.manifest yellow.output.manifest --out prepared/ "
        "--class-from 'color=blue:blue box' --class-from 'color=yellow:yellow box' --flip",
        _cmd_prepare_training,
    )
    p.add_argument("manifests", nargs="+", help="output manifests of one or more labeling jobs")
    p.add_argument("--out", required=True, help="folder or s3:// prefix")
    p.add_argument("--label-attribute", default="bb")
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
    p.add_argument("--skip-invalid", action="store_true", help="write the valid lines and rejected.jsonl")

    p = _command(
        sub,
        "label-local",
        "Label a manifest from generated videos' known boxes (a Ground Truth stand-in).",
        'odctl label-local boxes.manifest --boxes-dir videos/ --out output.manifest --classes "blue box,yellow box"',
        _cmd_label_local,
    )
    p.add_argument("manifest")
    p.add_argument("--boxes-dir", required=True, help="folder holding <video>.boxes.jsonl files")
    p.add_argument("--out", required=True)
    p.add_argument("--classes", required=True)
    p.add_argument("--label-attribute", default="bb")
    p.add_argument("--job-name", default="local-labeling-job")

    p = _command(
        sub,
        "convert",
        "Convert a SageMaker Object Detection model.tar.gz into the MXNet deploy graph, ONNX and model.json.",
        "odctl convert --model s3://bucket/training/job-1/output/model.tar.gz --out models/job-1 --classes "
        '"blue box,yellow box"',
        _cmd_convert,
    )
    p.add_argument("--model", required=True, help="model.tar.gz path or s3:// URI")
    p.add_argument("--out", required=True, help="folder or s3:// prefix for the package")
    p.add_argument("--classes", help="comma-separated class names, in class id order")
    p.add_argument(
        "--nms-threshold", type=fraction(low_open=True), help="override the training graph's NMS IoU threshold"
    )
    p.add_argument("--nms-topk", type=positive_int(), help="override how many candidates NMS considers")
    p.add_argument("--threshold", type=fraction(), help="minimum score of a detection (default 0.01, as MXNet)")
    p.add_argument("--force-suppress", choices=["true", "false"], help="class-agnostic NMS (default: as trained)")

    p = _command(
        sub,
        "train-local",
        "Train SageMaker's built-in SSD locally on the CPU; writes model.tar.gz as SageMaker does.",
        "odctl train-local --train prepared/train.manifest --validation prepared/validation.manifest "
        "--out model.tar.gz --base-network tiny --hyperparameters hp.json",
        _cmd_train_local,
    )
    p.add_argument("--train", required=True, help="training augmented manifest (path or s3://)")
    p.add_argument("--validation", required=True, help="validation augmented manifest")
    p.add_argument("--out", required=True, help="model.tar.gz path or s3:// URI (or a folder)")
    p.add_argument("--images", help="folder or s3:// prefix holding the images, when source-refs point elsewhere")
    p.add_argument("--hyperparameters", help="JSON file of SageMaker hyperparameters (names and rules as SageMaker)")
    p.add_argument("--base-network", choices=["resnet-50", "vgg-16", "tiny"], help="overrides the hyperparameters")
    p.add_argument("--classes", help="class names in id order (default: from the manifests' class-maps)")
    p.add_argument("--label-attribute", default="bb")
    p.add_argument("--seed", type=non_negative_int(), default=0, help="random seed of initialisation and batches")

    p = _command(
        sub,
        "evaluate",
        "mAP per class (VOC 2010+ all-point AP) of a model on a labeled manifest.",
        "odctl evaluate --model models/job-1 heldout.output.manifest --out report/ --iou 0.5",
        _cmd_evaluate,
    )
    p.add_argument(
        "--model", required=True, help="model.tar.gz (SageMaker or train-local) or a converted package folder"
    )
    p.add_argument("manifest", help="Ground Truth output / augmented manifest with the true boxes")
    p.add_argument("--out", help="folder or s3:// prefix for evaluation.json and precision_recall.png")
    p.add_argument("--iou", type=fraction(low_open=True), default=0.5, help="IoU a detection needs to count")
    p.add_argument("--label-attribute", default="bb")
    p.add_argument("--images", help="folder or s3:// prefix holding the images")
    p.add_argument("--backend", choices=["onnx", "mxnet"], default="onnx")
    p.add_argument("--classes", help="class names of a model.tar.gz, in class-id order (it holds none)")
    p.add_argument(
        "--class-map",
        action="append",
        metavar="MANIFEST=MODEL",
        help="score the manifest's class MANIFEST as the model's class MODEL (repeatable)",
    )

    p = _command(
        sub,
        "package-component",
        "Write the inference and model Greengrass components (recipes/ and artifacts/) for greengrass-cli or upload.",
        "odctl package-component --model models/job-1 --out gg/ --name-prefix com.example --version 1.0.0",
        _cmd_package_component,
    )
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

    p = _command(
        sub,
        "detect",
        "Run the device's inference loop on a workstation (video, folder, camera or URL).",
        "odctl detect videos/mixed_boxes_2.mp4 --model models/job-1 --out detections.jsonl",
        _cmd_detect,
    )
    p.add_argument("source", help="video file, image folder, camera index or rtsp/http URL")
    p.add_argument("--model", required=True, help="a converted model package folder")
    p.add_argument(
        "--out", help="JSON Lines file for the messages, replaced (default: stdout, the summary then on stderr)"
    )
    p.add_argument("--threshold", type=fraction(), default=0.5, help="minimum score of a published detection")
    p.add_argument("--backend", choices=["onnx", "mxnet"], default="onnx")
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
        "--show", action="store_true", help="write annotated frames to ./detect-snapshots (OpenCV is headless here)"
    )

    p = _command(
        sub,
        "pipeline",
        "Start, follow and list runs of the deployed workflow (Step Functions).",
        "odctl pipeline start --manifest s3://data/labels/job/manifests/output/output.manifest --deploy",
        _cmd_pipeline,
    )
    p.add_argument("action", choices=["start", "ingest", "status", "list"])
    p.add_argument(
        "execution",
        nargs="?",
        help="status: an execution ARN (default: the latest run); ingest: the videos' s3:// prefix",
    )
    p.add_argument("--stack", default="EdgeObjectDetector", help="the CDK stack's name")
    p.add_argument("--manifest", action="append", help="start: a Ground Truth output manifest (repeatable)")
    p.add_argument("--labeling-manifest", help="start: an input manifest to label with Ground Truth first")
    p.add_argument("--classes", help="start: class names (default: the stack's)")
    p.add_argument("--hyperparameters", help="start: JSON file of hyperparameter overrides")
    p.add_argument(
        "--deploy",
        nargs="?",
        const="",
        default=None,
        help="start: deploy to the stack's thing group, or to the group named here",
    )
    p.add_argument("--run-name", help="start/ingest: the run's name (default od-<UTC time>, ingest-<UTC time>)")
    p.add_argument("--every", type=positive_int(), help="ingest: keep one frame in N of each video")
    p.add_argument("--fps", type=positive_float(), help="ingest: keep about F frames per second of video")
    p.add_argument("--metadata-from-name", help="ingest: a name pattern, as make-manifest's")

    p = _command(
        sub,
        "watch",
        "Print what the devices publish (AWS IoT Core with your AWS credentials, or a local MQTT broker).",
        "odctl watch --topic 'od/camera-01/detections' --count 10",
        _cmd_watch,
    )
    p.add_argument(
        "--topic", action="append", help="MQTT topic filter, repeatable (default: od/+/detections, od/+/health)"
    )
    p.add_argument("--mqtt-host", help="a local MQTT broker instead of AWS IoT Core")
    p.add_argument("--mqtt-port", type=PORT, default=1883)
    p.add_argument("--region", help="AWS IoT Core's region (default: the profile's)")
    p.add_argument("--count", type=non_negative_int(), default=0, help="stop after N messages (0: no limit)")
    p.add_argument("--seconds", type=non_negative_int(), default=0, help="stop after S seconds (0: no limit)")
    p.add_argument("--out", help="JSON Lines file for the messages, replaced (default: stdout)")

    p = _command(
        sub, "demo", "Run the whole chain offline on generated data.", "odctl demo --workdir demo-work", _cmd_demo
    )
    p.add_argument("--workdir", default="demo-work")
    p.add_argument("--fresh", action="store_true", help="start over instead of reusing finished steps")
    p.add_argument("--s3", action="store_true", help="run the storage steps against a local moto server")
    p.add_argument(
        "--minutes",
        type=positive_float(),
        default=20.0,
        help="time budget; under 5 runs every step with a few training iterations (a wiring check)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        configure(args.log_level)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        result = args.handler(args)
    except (OdError, ValueError, ModelError) as exc:
        log_event(logger, "command.failed", level=logging.ERROR, command=args.command, error=str(exc))
        sys.stderr.write(f"odctl {args.command}: error: {exc}\n")
        return 2
    if result is not None:
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
