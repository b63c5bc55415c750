"""What every command group shares: the help layout, the options every subcommand takes, one way to add one."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

Handler = Callable[[argparse.Namespace], Any]
IMAGES_HELP = "folder or s3:// prefix holding the images, when the manifest's source-refs point elsewhere"


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


def command(sub: Any, name: str, summary: str, example: str, handler: Handler) -> argparse.ArgumentParser:
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
