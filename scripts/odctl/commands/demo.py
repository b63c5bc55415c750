"""The whole chain offline on generated data."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from odctl.cli_types import non_negative_int, positive_float

from .common import Command


def _cmd_demo(args: argparse.Namespace) -> Any:
    from odctl.demo import run_demo

    summary = run_demo(args.workdir, fresh=args.fresh, s3=args.s3, minutes=args.minutes, seed=args.seed)
    figures = summary["figures"]
    sys.stderr.write(
        f"mAP@0.5 on the held-out video: {figures['heldout_mAP@0.5']:.3f}; inference loop: "
        f"{figures['loop_fps']:.1f} FPS; report: {summary['workdir']}/report/report.html\n"
    )
    return {"figures": figures, "report": f"{summary['workdir']}/report/report.html", "seconds": summary["seconds"]}


def _demo_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workdir", default="demo-work")
    p.add_argument("--fresh", action="store_true", help="start over instead of reusing finished steps")
    p.add_argument("--s3", action="store_true", help="run the storage steps against a local moto server")
    p.add_argument(
        "--minutes",
        type=positive_float(),
        default=20.0,
        help="under 5: every step with a few training iterations (a wiring check); otherwise the full run",
    )
    p.add_argument(
        "--seed", type=non_negative_int(), default=0, help="training's seed (the same seed, the same figures)"
    )


# the group's subcommands, in the order of `odctl --help`
COMMANDS = (
    Command(
        "demo",
        "Run the whole chain offline on generated data.",
        "odctl demo --workdir demo-work",
        _cmd_demo,
        _demo_options,
    ),
)
