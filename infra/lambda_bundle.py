"""Lambda bundles without Docker: the handler folder, the shared library and pip wheels for Lambda's platform.

CDK's local bundling calls :func:`build_bundle`; the benchmark calls it too, to measure the zipped size.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / "lambdas" / "shared" / "odshared"
EDGE = REPO / "edge_component" / "odedge"
LAMBDA_PYTHON = "3.13"
# Lambda's Python 3.13 runtime is Amazon Linux 2023 (glibc 2.34): manylinux2014 wheels and the newer
# manylinux_2_28 ones (onnxruntime publishes only those)
LAMBDA_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "tests")


def _imports(path: Path, package: str = "odshared") -> set[str]:
    """The modules of ``package`` a file imports (``odshared.core.log``, ...), at any depth (lazy imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == package:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)  # from odshared.core import storage
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == package)
    return found


def _reached_files(function_dir: Path) -> list[Path]:
    """The handler and every odshared module its imports reach, transitively."""
    todo = [function_dir / "handler.py"]
    seen: list[Path] = []
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.append(path)
        todo.extend(source for module in _imports(path) if (source := _module_file(module)) is not None)
    return seen


def _module_file(module: str) -> Path | None:
    base = SHARED.joinpath(*module.split(".")[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def shared_groups(function_dir: Path) -> list[str]:
    """The odshared groups (core, data, model, greengrass) the handler needs, following imports transitively."""
    groups = {
        parts[1]
        for path in _reached_files(function_dir)
        for parts in (module.split(".") for module in _imports(path))
        if len(parts) > 1 and (SHARED / parts[1]).is_dir()
    }
    return sorted(groups)


def needs_device_package(function_dir: Path) -> bool:
    """Whether the handler reaches odedge (the conversion calibrates INT8 through the device's preprocessing)."""
    return any(_imports(path, "odedge") for path in _reached_files(function_dir))


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
    shared = out_dir / "odshared"
    shared.mkdir(exist_ok=True)
    shutil.copy2(SHARED / "__init__.py", shared / "__init__.py")
    for group in shared_groups(function_dir):  # only what the function imports: no CLI-only or model code in it
        shutil.copytree(SHARED / group, shared / group, dirs_exist_ok=True, ignore=SKIP)
    if needs_device_package(function_dir):
        shutil.copytree(EDGE, out_dir / "odedge", dirs_exist_ok=True, ignore=SKIP)
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
                *(option for platform in LAMBDA_PLATFORMS for option in ("--platform", platform)),
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
