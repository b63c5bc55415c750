"""The top-level requirements.txt, where a CDK user looks for the environment, installs what `make setup` installs
into .venv: the same lock, and this project."""

from __future__ import annotations

import re
import tomllib
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


def test_every_package_and_data_file_is_in_what_a_wheel_of_this_project_holds():
    """An editable install finds any folder; a wheel holds only the packages listed: a package or a query file
    left out works in .venv and fails where odctl is installed from a wheel."""
    tools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(tools["packages"])
    found, data = set(), set()
    for root, folder in tools["package-dir"].items():
        base = REPO / folder
        found |= {".".join((root, *i.parent.relative_to(base).parts)) for i in base.rglob("__init__.py")}
        patterns = tools.get("package-data", {}).get(root, [])
        packaged = {f for pattern in patterns for f in base.glob(pattern)}
        unpacked = {f for f in base.rglob("*") if f.is_file() and f.suffix not in (".py", ".pyc")}
        data |= {str(f.relative_to(REPO)) for f in unpacked - packaged}
    assert found == listed, f"pyproject.toml packages: add {sorted(found - listed)}, remove {sorted(listed - found)}"
    assert not data, f"pyproject.toml package-data leaves out {sorted(data)}"
