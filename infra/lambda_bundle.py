"""Lambda bundles without Docker: the handler folder, the shared library and pip wheels for Lambda's platform.

CDK's local bundling calls :func:`build_bundle`; the benchmark calls it too, to measure the zipped size.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / "lambdas" / "shared" / "odshared"
LAMBDA_PYTHON = "3.13"
LAMBDA_PLATFORM = "manylinux2014_x86_64"
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "tests")


def build_bundle(function_dir: Path, out_dir: Path, python_version: str = LAMBDA_PYTHON) -> Path:
    """Fill ``out_dir`` with the function's code, odshared and its requirements (wheels for Lambda)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for item in function_dir.iterdir():
        if item.name == "requirements.txt" or item.name == "__pycache__":
            continue
        target = out_dir / item.name
        if item.is_dir():
            shutil.copytree(item, target, dirs_exist_ok=True, ignore=SKIP)
        else:
            shutil.copy2(item, target)
    shutil.copytree(SHARED, out_dir / "odshared", dirs_exist_ok=True, ignore=SKIP)
    requirements = function_dir / "requirements.txt"
    if requirements.exists() and any(
        line.strip() and not line.startswith("#") for line in requirements.read_text().splitlines()
    ):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-compile",
                "--no-warn-conflicts",  # the target is a fresh folder; the operator's venv (MXNet) is not in it
                "--disable-pip-version-check",
                "--target",
                str(out_dir),
                "--platform",
                LAMBDA_PLATFORM,
                "--implementation",
                "cp",
                "--python-version",
                python_version,
                "--only-binary=:all:",
                "--upgrade",
                "-r",
                str(requirements),
            ],
            check=True,
        )
    return out_dir


def zip_bundle(bundle_dir: Path, zip_path: Path) -> Path:
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(bundle_dir.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(bundle_dir))
    return zip_path
