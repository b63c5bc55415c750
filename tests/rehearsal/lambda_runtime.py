"""Each function as Lambda runs it: its bundle, built by the CDK app's own local bundling, on an interpreter of the
runtime's Python whose only packages are the runtime's boto3 and botocore (``make setup`` makes .venv-lambda-sdk
from requirements/lambda-sdk.lock). Nothing of the operator's environment is on its path, so a module the bundle
imports but does not carry fails at init here as on AWS.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.functions import LocalBundling, python_functions
from infra.lambda_bundle import LAMBDA_PYTHON, REPO

SDK_PYTHON = REPO / ".venv-lambda-sdk" / "bin" / "python"
BOOTSTRAP = Path(__file__).with_name("runtime") / "bootstrap.py"
# the operator's environment must not leak into the function's
DROPPED = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "PYTEST_CURRENT_TEST")


def sdk_python() -> Path:
    """The runtime's interpreter; its absence is an error to fix (``make setup``), never a skipped check."""
    if not SDK_PYTHON.exists():
        raise RuntimeError(f"{SDK_PYTHON} is missing: run `make setup` (it makes the Lambda runtime's environment)")
    return SDK_PYTHON


def build_bundles(stack: Any, out: Path) -> dict[str, Path]:
    """Every function's bundle as ``cdk synth`` builds it (the construct's LocalBundling), by construct id."""
    bundles = {}
    for function in python_functions(stack):
        folder = out / function.node.id
        LocalBundling(function.code_dir, function.extra_files).try_bundle(str(folder))
        bundles[function.node.id] = folder
    return bundles


@dataclass
class InitResult:
    error: dict | None
    path: list[str]


class RuntimeFunction:
    """One warm execution environment of a function: started on first use, kept between invocations."""

    def __init__(self, name: str, bundle: Path, variables: dict[str, str], log: Path) -> None:
        self.name, self.bundle, self.variables, self.log = name, bundle, variables, log
        self.process: subprocess.Popen[str] | None = None
        self.init: InitResult | None = None

    def _environment(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if k not in DROPPED}
        return {
            **base,
            **self.variables,
            "_HANDLER": "handler.handler",
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_python{LAMBDA_PYTHON}",
            "LAMBDA_TASK_ROOT": str(self.bundle),
            "PYTHONPATH": str(self.bundle),
            "PYTHONDONTWRITEBYTECODE": "1",  # Lambda's /var/task is read-only
        }

    def start(self) -> InitResult:
        if self.process is None:
            bootstrap = self.log.parent / "runtime-bootstrap" / "bootstrap.py"  # a folder holding nothing else
            bootstrap.parent.mkdir(exist_ok=True)
            shutil.copy2(BOOTSTRAP, bootstrap)
            self.process = subprocess.Popen(
                [str(sdk_python()), "-s", str(bootstrap)],
                cwd=self.bundle,
                env=self._environment(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.log.open("a"),
                text=True,
            )
            first = json.loads(self._read(120.0))
            self.init = InitResult(None if first["init"] == "ok" else first["init"], first["path"])
        assert self.init is not None
        return self.init

    def _read(self, timeout_s: float) -> str:
        assert self.process is not None and self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout_s)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.close()
            tail = self.log.read_text()[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{self.name}: the runtime ended or timed out with no answer\n{tail}")
        return line

    def invoke(self, event: Any, context: dict[str, Any]) -> dict[str, Any]:
        """``{"result": ...}`` or Lambda's error shape (errorType, errorMessage, stackTrace)."""
        self.start()
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(json.dumps({"event": event, "context": context}) + "\n")
        self.process.stdin.flush()
        return json.loads(self._read(float(context["timeout_s"]) + 30))

    def close(self) -> None:
        if self.process is not None:
            if self.process.stdin:
                self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None
