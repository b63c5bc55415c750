"""Every `odctl` command the README and the documentation show parses with the real CLI: a renamed option or a
command that does not exist fails here, not in a newcomer's shell."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from odctl.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(?:sh|bash|console)?\n(.*?)^```", re.M | re.S)


def _commands(page: Path) -> list[str]:
    """The odctl lines of a page's shell blocks, continuation lines joined, comments and `&` dropped."""
    found = []
    for block in FENCE.findall(page.read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip().removesuffix("&").strip()
            if line.startswith("odctl "):
                found.append(line)
    return found


CASES = [(page.name, line) for page in PAGES for line in _commands(page)]


def test_the_readme_shows_the_own_video_path():
    assert len(_commands(REPO / "README.md")) >= 10


@pytest.mark.parametrize(("page", "line"), CASES, ids=[f"{p}:{line[:60]}" for p, line in CASES])
def test_documented_command_parses(page, line):
    try:
        build_parser().parse_args(shlex.split(line)[1:])
    except SystemExit as exc:
        pytest.fail(f"{page}: `{line}` does not parse (exit {exc.code})")


def test_the_cpu_page_gives_the_presets_values():
    """docs/own-data-cpu.md's table is what `train-local --preset cpu` uses (the preset is the one home)."""
    from odctl.train_local import PRESETS

    rows = re.findall(r"^\| (`[^|]+`) \| ([^|]+) \|", (REPO / "docs" / "own-data-cpu.md").read_text(), re.M)
    shown = {}
    for names, values in rows:
        for name, value in zip(re.findall(r"`([^`]+)`", names), values.split(","), strict=True):
            shown[name] = value.strip().strip("`")
    assert shown == {k: str(v) for k, v in PRESETS["cpu"].items()}
