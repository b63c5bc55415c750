"""What every command group shares: the help layout, the options every subcommand takes, one way to add one, and
the options several commands take alike (same flag, same meaning; a command may word its help its own way)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from odctl.pipeline_cli import DEFAULT_STACK
from odedge.runtimes import PRECISIONS
from odshared.data.groundtruth import DEFAULT_LABEL_ATTRIBUTE

Handler = Callable[[argparse.Namespace], Any]
IMAGES_HELP = "folder or s3:// prefix holding the images, when the manifest's source-refs point elsewhere"
SKIP_INVALID_HELP = "write the valid lines and rejected.jsonl"
STACK_HELP = "the CDK stack's name"


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


@dataclass(frozen=True)
class Command:
    """One subcommand, declared once as data: its name, what ``--help`` says of it, the handler it runs, the
    options it takes and its own subcommands (``odctl counts review``). Calling it adds it to a subparsers action
    (``odctl.cli`` does, over each group's ``COMMANDS``), so every command gets the same help layout and options.
    A command without a handler is only a group of actions, and argparse asks for one of them."""

    name: str
    summary: str
    example: str
    handler: Handler | None = None
    options: Callable[[argparse.ArgumentParser], None] | None = None
    actions: tuple[Command, ...] = ()

    def __post_init__(self) -> None:
        if self.handler is None and not self.actions:
            raise ValueError(f"odctl {self.name}: a command runs a handler or offers actions")

    def __call__(self, sub: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(
            self.name,
            help=self.summary,
            description=self.summary,
            epilog=f"example:\n  {self.example}",
            formatter_class=HelpFormatter,
            parents=[_common_options()],
        )
        parser.set_defaults(handler=self.handler or (lambda args: parser.error(f"choose {self._action_names()}")))
        if self.options:
            self.options(parser)
        if self.actions:
            actions = parser.add_subparsers(dest="action", required=self.handler is None, metavar="ACTION")
            for action in self.actions:
                action(actions)
        return parser

    def _action_names(self) -> str:
        names = [action.name for action in self.actions]
        return " or ".join(filter(None, (", ".join(names[:-1]), names[-1])))


def add_label_attribute(p: argparse.ArgumentParser) -> None:
    """The manifests' label attribute: every command reading or writing Ground Truth boxes names it alike."""
    p.add_argument("--label-attribute", default=DEFAULT_LABEL_ATTRIBUTE)


def add_skip_invalid(p: argparse.ArgumentParser, help_text: str | None = SKIP_INVALID_HELP) -> None:
    """Keep going past invalid lines (listed in rejected.jsonl) rather than failing on the first."""
    p.add_argument("--skip-invalid", action="store_true", help=help_text)


def add_stack(p: argparse.ArgumentParser, help_text: str = STACK_HELP) -> None:
    """The deployed stack the command reads its outputs from."""
    p.add_argument("--stack", default=DEFAULT_STACK, help=help_text)


def add_precision(p: argparse.ArgumentParser) -> None:
    """The device's precision choice, so a workstation run infers as the device would."""
    p.add_argument(
        "--precision", choices=list(PRECISIONS), default="int8", help="int8 where the package has it, else fp32"
    )
