"""make's interpreter lookup (scripts/find-python): the machine's Pythons are found before uv is asked to download
one, a pyenv version that is installed but not active included, and a missing one is one line saying what to do."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIND = REPO / "scripts" / "find-python"


def _find(version: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key != "PYENV_VERSION"}
    return subprocess.run([str(FIND), version], capture_output=True, text=True, timeout=120, env={**environment, **env})


def test_the_running_python_is_found_by_its_version():
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    done = _find(version)
    assert done.returncode == 0, done.stderr
    found = subprocess.run([done.stdout.strip(), "-c", "import sys; print(sys.version_info[:2])"], capture_output=True)
    assert found.stdout.decode().strip() == str((sys.version_info.major, sys.version_info.minor))


@pytest.mark.skipif(shutil.which("pyenv") is None, reason="this machine has no pyenv")
def test_an_installed_pyenv_version_that_is_not_active_is_found():
    root = Path(subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip())
    active = subprocess.run(["pyenv", "version-name"], capture_output=True, text=True).stdout.strip()
    others = sorted(p.name for p in (root / "versions").glob("3.*") if not active.startswith(p.name))
    assert others, "pyenv has no second version installed"
    minor = ".".join(others[-1].split(".")[:2])
    done = _find(minor)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(root / "versions"))


def test_a_missing_version_is_one_line_naming_the_install():
    done = _find("3.99", UV_PYTHON_DOWNLOADS="never")
    assert done.returncode == 1 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Python 3.99 is not on this machine" in done.stderr and "pyenv install 3.99" in done.stderr
