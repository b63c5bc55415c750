"""The top-level requirements.txt, where a CDK user looks for the environment, installs what `make setup` installs
into .venv: the same lock, and this project."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _entries() -> list[str]:
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_requirements_txt_points_at_the_lock_make_setup_installs():
    entries = _entries()
    included = [entry.split(None, 1)[1] for entry in entries if entry.startswith("-r ")]
    assert included, "requirements.txt includes no lock file"
    for name in included:
        assert (REPO / name).is_file(), f"requirements.txt: {name} does not exist"
        assert name.endswith(".lock"), f"requirements.txt: {name} is not a lock file"
    makefile = (REPO / "Makefile").read_text()
    installed = set(re.findall(r"--python \$\(BIN\)/python -r (\S+)", makefile))
    assert installed == set(included)  # .venv's own lock: the tests run in what requirements.txt describes
    assert "-e ." in entries  # odctl itself, as `make setup` installs it
    assert entries == [*(f"-r {name}" for name in included), "-e ."]  # nothing pinned by hand beside the lock
