"""Labeling commands: Label Studio (serve, push, pull), look at labels, label generated frames from their known
boxes."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any

from odctl.cli_types import PORT, fraction, positive_int

from .common import IMAGES_HELP, Command, add_label_attribute, add_skip_invalid


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


def _cmd_serve(args: argparse.Namespace) -> Any:
    from odctl.labelstudio.server import start

    server = start(Path(args.data_dir), args.port, Path(args.files_root) if args.files_root else None)
    found = server.credentials
    sys.stderr.write(
        f"Label Studio: {server.url} (user {found.username}, password {found.password})\n"
        f"API token: {found.token}\nlocal frames under: {found.files_root}\nCtrl-C stops it.\n"
    )
    stopping = {"now": False}

    def on_signal(signum: int, _frame: Any) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stopping["now"] and server.process.poll() is None:
        time.sleep(0.5)
    server.stop()
    return {"url": server.url, "stopped": True}


def _client(args: argparse.Namespace) -> Any:
    from odctl.labelstudio.client import LabelStudio
    from odctl.labelstudio.server import serving

    local = serving(Path(args.data_dir))
    return LabelStudio(
        args.url or os.environ.get("LABEL_STUDIO_URL") or local.get("url"), args.token or local.get("token")
    )


def _cmd_push(args: argparse.Namespace) -> Any:
    from odctl.labelstudio.projects import SERVE, push
    from odctl.labelstudio.server import DEFAULT_DATA_DIR, serving
    from odctl.synth_video import parse_classes

    # the server's root: as given, as Label Studio's variable says, as serve recorded it in --data-dir, or its default
    files_root = (
        args.files_root
        or os.environ.get("LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT")
        or serving(Path(args.data_dir)).get("files_root")
        or "/"
    )
    serve = SERVE if Path(args.data_dir) == DEFAULT_DATA_DIR else f"{SERVE} --data-dir {shlex.quote(args.data_dir)}"
    classes = list(parse_classes(args.classes)) if args.classes else []
    return push(_client(args), args.manifest, args.project, classes, files_root, args.pre_label, args.min_score, serve)


def _cmd_pull(args: argparse.Namespace) -> Any:
    from odctl.labelstudio.projects import pull

    return pull(
        _client(args), args.project, args.out, args.label_attribute, args.job_name, args.skip_invalid, args.allow_empty
    )


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    """The local server's folder: every label-studio action finds the server (its URL, token, files root) by it."""
    from odctl.labelstudio.server import DEFAULT_DATA_DIR

    p.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help="the local server's data folder")


def _serve_options(p: argparse.ArgumentParser) -> None:
    _add_data_dir(p)
    p.add_argument("--port", type=PORT, default=8080)
    p.add_argument(
        "--files-root",
        help="local frames must lie in folders below this one (default: the one this --data-dir served last, else "
        "the current folder)",
    )


def _add_project(p: argparse.ArgumentParser) -> None:
    """Where push and pull find the project: the server (given, or the local one) and the project's title."""
    _add_data_dir(p)
    p.add_argument("--project", required=True, help="the project's title")
    p.add_argument("--url", help="Label Studio's URL (default: LABEL_STUDIO_URL, else the local server's)")
    p.add_argument("--token", help="its API token (default: LABEL_STUDIO_API_KEY, else the local server's)")


def _push_options(p: argparse.ArgumentParser) -> None:
    _add_project(p)
    p.add_argument("manifest", help="an input manifest (source-ref per line), local or s3://")
    p.add_argument("--classes", help="comma-separated class names in class id order (a new project needs them)")
    p.add_argument("--pre-label", help="a converted model folder: its boxes become predictions")
    p.add_argument("--min-score", type=fraction(), default=0.5, help="pre-labels below this score are left out")
    p.add_argument("--files-root", help="the server's local files root (default: the local server's)")


def _pull_options(p: argparse.ArgumentParser) -> None:
    _add_project(p)
    p.add_argument("--out", required=True, help="output manifest path or s3:// URI (rejected.jsonl beside it)")
    add_label_attribute(p)
    p.add_argument("--job-name", help="bb-metadata job-name (default: the project's title)")
    add_skip_invalid(p, "exit 0 when some tasks were rejected")
    p.add_argument("--allow-empty", action="store_true", help="write an empty manifest when nothing is labeled yet")


def _show_labels_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("manifest", help="a Ground Truth output manifest")
    p.add_argument("--out", required=True)
    add_label_attribute(p)
    p.add_argument("--limit", type=positive_int(), help="draw at most this many images")
    p.add_argument("--images", help=IMAGES_HELP)
    add_skip_invalid(p, None)


def _label_local_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("manifest")
    p.add_argument("--boxes-dir", required=True, help="folder holding <video>.boxes.jsonl files")
    p.add_argument("--out", required=True)
    p.add_argument("--classes", required=True)
    add_label_attribute(p)
    p.add_argument("--job-name", default="local-labeling-job")


# label-studio's own actions: serve, push, pull
_LABEL_STUDIO_ACTIONS = (
    Command(
        "serve",
        "Run Label Studio here (its own environment, installed on first use); prints the URL and the API token.",
        "odctl label-studio serve --port 8080 --files-root ~/frames",
        _cmd_serve,
        _serve_options,
    ),
    Command(
        "push",
        "Create or update a project from a manifest: one task per new image, metadata kept, optional pre-labels.",
        'odctl label-studio push frames.manifest --project boxes --classes "blue box,yellow box" '
        "--pre-label models/job-1",
        _cmd_push,
        _push_options,
    ),
    Command(
        "pull",
        "Write the labeled tasks as a Ground Truth bounding-box output manifest (what prepare-training reads).",
        "odctl label-studio pull --project boxes --out labels/boxes/output.manifest",
        _cmd_pull,
        _pull_options,
    ),
)

# the group's subcommands, in the order of `odctl --help`
COMMANDS = (
    Command(
        "label-studio",
        "Label with Label Studio: serve it locally, push a manifest as tasks, pull the labels as a Ground Truth "
        "output manifest.",
        'odctl label-studio push frames.manifest --project boxes --classes "blue box,yellow box"',
        actions=_LABEL_STUDIO_ACTIONS,
    ),
    Command(
        "show-labels",
        "Draw Ground Truth boxes, classes and confidences on the images.",
        "odctl show-labels output.manifest --out labels/ --label-attribute bb",
        _cmd_show_labels,
        _show_labels_options,
    ),
    Command(
        "label-local",
        "Label a manifest from generated videos' known boxes (a Ground Truth stand-in).",
        'odctl label-local boxes.manifest --boxes-dir videos/ --out output.manifest --classes "blue box,yellow box"',
        _cmd_label_local,
        _label_local_options,
    ),
)
