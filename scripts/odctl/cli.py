"""The ``odctl`` command line: one subcommand per step of the operator's journey."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from odedge.model import ModelError
from odshared.core.errors import OdError
from odshared.core.log import configure, log_event

from .commands import GROUPS
from .commands.common import HelpFormatter

logger = logging.getLogger("odctl")

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

    for group in GROUPS:
        for add in group.COMMANDS:
            add(sub)
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
    except KeyboardInterrupt:  # what was written completely is kept: the commands resume where they stopped
        log_event(logger, "command.interrupted", level=logging.WARNING, command=args.command)
        sys.stderr.write(f"odctl {args.command}: interrupted; run it again to go on from where it stopped\n")
        return 130
    if result is not None:
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
