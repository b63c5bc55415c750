"""The MXNet environment: where local training and the MXNet reference run, as a subprocess.

MXNet 1.9.1 needs numpy < 1.24 and Python 3.11, so it cannot share the operator's environment. Each call starts
``python -m odmxnet COMMAND REQUEST RESULT`` in that environment: the request and the result are JSON files, the
child's logs and progress bars go to this process's stderr, and an error the user can fix comes back as an
``MxnetEnvError`` (exit 2 at the CLI), not a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from odshared.core.errors import OdError

PYTHON_SETTING = "ODCTL_MXNET_PYTHON"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PYTHON = PROJECT_ROOT / ".venv-mxnet" / "bin" / "python"


class MxnetEnvError(OdError):
    """The MXNet environment is missing, or the command it ran refused its input."""


def interpreter() -> Path:
    """The MXNet environment's Python: ODCTL_MXNET_PYTHON, else the project's ``.venv-mxnet``."""
    configured = os.environ.get(PYTHON_SETTING)
    python = Path(configured) if configured else DEFAULT_PYTHON
    if not python.exists():
        where = f"{PYTHON_SETTING}={configured}" if configured else str(DEFAULT_PYTHON)
        raise MxnetEnvError(
            f"the MXNet environment is missing ({where} does not exist): run `make setup`, or set "
            f"{PYTHON_SETTING} to a Python 3.11 with requirements/mxnet.lock and this project installed"
        )
    return python


def call(command: str, request: dict[str, Any]) -> Any:
    """Run one odmxnet command on ``request``; returns its result."""
    python = interpreter()
    with tempfile.TemporaryDirectory(prefix="odmxnet-") as folder:
        request_path, result_path = Path(folder) / "request.json", Path(folder) / "result.json"
        request_path.write_text(json.dumps(request))
        # the child logs at this process's level (odctl --log-level)
        env = {**os.environ, "LOG_LEVEL": logging.getLevelName(logging.getLogger().getEffectiveLevel())}
        env.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")  # MXNet's "Subgraph backend MKLDNN is activated" on stderr
        completed = subprocess.run(
            [str(python), "-m", "odmxnet", command, str(request_path), str(result_path)], check=False, env=env
        )
        if not result_path.exists():
            raise RuntimeError(f"odmxnet {command} exited {completed.returncode} without a result (see its stderr)")
        outcome = json.loads(result_path.read_text())
    if "error" in outcome:
        raise MxnetEnvError(outcome["error"])
    return outcome["result"]
