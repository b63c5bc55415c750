"""Making a model: train locally, convert SageMaker's artifact, evaluate on labeled frames (``odctl train-local``,
``convert``, ``evaluate``, ``evaluate-tracking``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from odctl.cli_types import fraction, non_negative_int, positive_int, shape_option
from odctl.train_local import PRESETS
from odedge.runtimes import BACKEND_CHOICES
from odshared.core.errors import OdError
from odshared.model.calibration import DEFAULT_CALIBRATION_IMAGES

from ..common import Command, add_label_attribute, add_precision


def _cmd_train_local(args: argparse.Namespace) -> Any:
    from odctl.synth_video import parse_classes
    from odctl.train_local import default_output, load_hyperparameters, train_local

    hyperparameters = load_hyperparameters(args.hyperparameters, args.preset)
    if args.epochs is not None:
        hyperparameters["epochs"] = args.epochs
    result = train_local(
        args.train,
        args.validation,
        default_output(args.out),
        hyperparameters,
        args.base_network,
        args.images,
        args.label_attribute,
        list(parse_classes(args.classes)) if args.classes else None,
        args.seed,
    )
    return result.to_dict()


def _cmd_convert(args: argparse.Namespace) -> Any:
    from odctl.synth_video import parse_classes
    from odshared.model.convert import convert, read_class_order

    overrides = {"nms_threshold": args.nms_threshold, "nms_topk": args.nms_topk, "threshold": args.threshold}
    if args.force_suppress is not None:
        overrides["force_suppress"] = args.force_suppress == "true"
    if args.classes and args.classes_from:
        raise OdError("--classes and --classes-from: give one of the two")
    classes = list(parse_classes(args.classes)) if args.classes else None
    if args.classes_from:
        classes = read_class_order(args.classes_from)
    calibration = None
    if args.int8:
        from odshared.model.calibration import build_calibration

        if not args.calibration:
            raise OdError(
                "--int8: needs frames to calibrate on: --calibration MANIFEST, FRAMES_FOLDER or s3://PREFIX "
                "(the training or validation manifest is a good choice)"
            )
        source, count = args.calibration, args.calibration_images
        calibration = lambda size: build_calibration([source], size, count)  # noqa: E731 - once the size is known
    elif args.calibration:
        raise OdError("--calibration: only used with --int8 (add --int8 to write model.int8.onnx)")
    return convert(args.model, args.out, classes, calibration=calibration, classes_from=args.classes_from, **overrides)


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    pairs = {}
    for value in values or ():
        left, sep, right = value.partition("=")
        if not sep or not left.strip() or not right.strip():
            raise OdError(f"{option} {value!r}: expected NAME=NAME")
        pairs[left.strip()] = right.strip()
    return pairs


def _cmd_evaluate(args: argparse.Namespace) -> Any:
    from odctl.evaluate import evaluate
    from odctl.synth_video import parse_classes

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
        args.report,
        not args.no_record,
    )
    report.pop("curves")
    return report


def _train_local_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train", required=True, help="training augmented manifest (path or s3://)")
    p.add_argument("--validation", required=True, help="validation augmented manifest")
    p.add_argument("--out", required=True, help="model.tar.gz path or s3:// URI (or a folder)")
    p.add_argument("--images", help="folder or s3:// prefix holding the images, when source-refs point elsewhere")
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="start from settings sized for this machine (cpu: the demo's tiny SSD at 300 pixels, 14 epochs; "
        "docs/own-data-cpu.md); --hyperparameters and the options below change them",
    )
    p.add_argument("--hyperparameters", help="JSON file of SageMaker hyperparameters (names and rules as SageMaker)")
    p.add_argument(
        "--base-network",
        choices=["resnet-50", "vgg-16", "tiny"],
        help="overrides the hyperparameters (default: theirs, else SageMaker's vgg-16)",
    )
    p.add_argument("--epochs", type=positive_int(), help="overrides the hyperparameters' epochs (SageMaker's: 30)")
    p.add_argument("--classes", help="class names in id order (default: from the manifests' class-maps)")
    add_label_attribute(p)
    p.add_argument("--seed", type=non_negative_int(), default=0, help="random seed of initialisation and batches")


def _cmd_evaluate_tracking(args: argparse.Namespace) -> Any:
    from odctl.tracking_eval import evaluate_tracking

    lines = [shape_option(text, "--line") for text in args.line]
    report = evaluate_tracking(args.video, args.model, lines, args.boxes, args.threshold, precision=args.precision)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _evaluate_tracking_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", help="a video from `odctl synth-video` (its .boxes.jsonl beside it holds the truth)")
    p.add_argument("--model", required=True, help="a converted model folder")
    p.add_argument(
        "--line",
        action="append",
        required=True,
        help="NAME:x1,y1,x2,y2[:left-to-right|right-to-left|top-to-bottom|bottom-to-top] (a move on the image)",
    )
    p.add_argument("--boxes", help="the true boxes (default: VIDEO's .boxes.jsonl)")
    p.add_argument("--threshold", type=fraction(), default=0.5, help="score threshold")
    add_precision(p)
    p.add_argument("--out", help="also write the report here (JSON)")


def _convert_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model.tar.gz path or s3:// URI")
    p.add_argument("--out", required=True, help="folder or s3:// prefix for the package")
    p.add_argument(
        "--classes",
        help="comma-separated class names, in class id order (default: those the training recorded; SageMaker's "
        "artifacts record none)",
    )
    p.add_argument(
        "--classes-from",
        help="the training's class order, instead of --classes: prepare-training's classes.json or output folder, the "
        "train manifest (its class-map), or the JSON of `aws sagemaker describe-training-job` (path or s3://)",
    )
    p.add_argument(
        "--nms-threshold", type=fraction(low_open=True), help="override the training graph's NMS IoU threshold"
    )
    p.add_argument("--nms-topk", type=positive_int(), help="override how many candidates NMS considers")
    p.add_argument("--threshold", type=fraction(), help="minimum score of a detection (default 0.01, as MXNet)")
    p.add_argument("--force-suppress", choices=["true", "false"], help="class-agnostic NMS (default: as trained)")
    p.add_argument("--int8", action="store_true", help="also write model.int8.onnx (static INT8, calibrated)")
    p.add_argument("--calibration", help="frames to calibrate INT8 on: a manifest, a folder or an s3:// prefix")
    p.add_argument(
        "--calibration-images",
        type=positive_int(),
        default=DEFAULT_CALIBRATION_IMAGES,
        help=f"frames taken evenly from the calibration data (default {DEFAULT_CALIBRATION_IMAGES})",
    )


def _evaluate_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", required=True, help="model.tar.gz (SageMaker or train-local) or a converted package folder"
    )
    p.add_argument("manifest", help="Ground Truth output / augmented manifest with the true boxes")
    p.add_argument("--out", help="folder or s3:// prefix for evaluation.json and precision_recall.png")
    p.add_argument("--iou", type=fraction(low_open=True), default=0.5, help="IoU a detection needs to count")
    add_label_attribute(p)
    p.add_argument("--images", help="folder or s3:// prefix holding the images")
    p.add_argument(
        "--backend", choices=list(BACKEND_CHOICES), default="auto", help="as the device: auto, onnx, openvino, mxnet"
    )
    p.add_argument("--classes", help="class names of a model.tar.gz, in class-id order (it holds none)")
    p.add_argument(
        "--class-map",
        action="append",
        metavar="MANIFEST=MODEL",
        help="score the manifest's class MANIFEST as the model's class MODEL (repeatable)",
    )
    p.add_argument("--report", metavar="DIR", help="also write report.html (the page odctl demo writes) in this folder")
    p.add_argument(
        "--no-record",
        action="store_true",
        help="keep the package's model.json as it is (by default a package records this mAP as its held-out figure, "
        "which the device's weak-model check reads first): for a manifest the model was trained on",
    )


# the group's subcommands, in the order of `odctl --help`
COMMANDS = (
    Command(
        "train-local",
        "Train SageMaker's built-in SSD locally on the CPU; writes model.tar.gz as SageMaker does.",
        "odctl train-local --train prepared/train.manifest --validation prepared/validation.manifest "
        "--out model.tar.gz --preset cpu",
        _cmd_train_local,
        _train_local_options,
    ),
    Command(
        "convert",
        "Convert a SageMaker Object Detection model.tar.gz into the MXNet deploy graph, ONNX and model.json.",
        "odctl convert --model s3://bucket/training/job-1/output/model.tar.gz --out models/job-1 --classes "
        '"blue box,yellow box"',
        _cmd_convert,
        _convert_options,
    ),
    Command(
        "evaluate",
        "mAP per class (VOC 2010+ all-point AP) of a model on a labeled manifest; a package keeps it (held-out mAP).",
        "odctl evaluate --model models/job-1 heldout.output.manifest --out report/ --report report/",
        _cmd_evaluate,
        _evaluate_options,
    ),
    Command(
        "evaluate-tracking",
        "MOTA, IDF1, identity switches and count errors per line and class of the device loop on a generated video.",
        "odctl evaluate-tracking videos/mixed_boxes_9.mp4 --model models/job-1 --line middle:0.5,0,0.5,1",
        _cmd_evaluate_tracking,
        _evaluate_tracking_options,
    ),
)
