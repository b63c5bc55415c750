"""Labeling commands: look at labels, label generated frames from their known boxes."""

from __future__ import annotations

import argparse
from typing import Any

from odctl.cli_types import positive_int

from .common import IMAGES_HELP, command


def _cmd_show_labels(args: argparse.Namespace) -> Any:
    from odctl.previews import show_labels

    return show_labels(args.manifest, args.out, args.label_attribute, args.limit, args.skip_invalid, images=args.images)


def _cmd_label_local(args: argparse.Namespace) -> Any:
    from odctl.local_labeling import label_from_known_boxes
    from odctl.synth_video import parse_classes

    count = label_from_known_boxes(
        args.manifest, args.boxes_dir, args.out, list(parse_classes(args.classes)), args.label_attribute, args.job_name
    )
    return {"out": args.out, "lines": count}


def _add_show_labels(sub: Any) -> None:
    p = command(
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


def _add_label_local(sub: Any) -> None:
    p = command(
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


# the group's subcommands, in the order of `odctl --help`
COMMANDS = (_add_show_labels, _add_label_local)
