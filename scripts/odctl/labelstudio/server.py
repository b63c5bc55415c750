"""A local Label Studio for one operator: its own virtual environment (Django 5 and its pins stay out of the
operator's), one data folder holding the database and the credentials, and a server on the loopback interface.

The environment is built on first use from ``requirements/label-studio.lock`` (``make setup`` builds it too), with
uv where the operator's environment has it. The first start creates the first user with a generated password and
a legacy API token (``--enable-legacy-api-token``), kept in ``odctl-credentials.json`` (mode 600) beside the
database so later starts reuse them, with the local files root until a start names another. Each start records its
URL, token and files root in ``odctl-serving.json``: push and pull find the server there, and push checks the frames
against that root before it creates anything.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from odshared.core.errors import OdError
from odshared.core.log import log_event

logger = logging.getLogger(__name__)
PROJECT_ROOT = Path(__file__).resolve().parents[3]
LOCK = PROJECT_ROOT / "requirements" / "label-studio.lock"
ENV_SETTING = "ODCTL_LABEL_STUDIO_ENV"
DEFAULT_ENV = PROJECT_ROOT / ".venv-labelstudio"
DEFAULT_DATA_DIR = Path.home() / ".local" / "share" / "odctl" / "label-studio"
CREDENTIALS = "odctl-credentials.json"
SERVING = "odctl-serving.json"  # the running server's URL, for push and pull without --url/--token
START_TIMEOUT_S = 180.0  # the first start migrates the database


class LabelStudioError(OdError):
    """Label Studio cannot be installed, started or reached, or refused what was sent."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    token: str
    files_root: str  # LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT: local frames must lie under it


def environment() -> Path:
    """Label Studio's virtual environment: ODCTL_LABEL_STUDIO_ENV, else the project's .venv-labelstudio."""
    configured = os.environ.get(ENV_SETTING)
    return Path(configured) if configured else DEFAULT_ENV


def ensure_environment(env: Path) -> Path:
    """The ``label-studio`` executable of ``env``, installing the environment from the lock when it is missing."""
    executable = env / "bin" / "label-studio"
    if executable.exists():
        return executable
    log_event(logger, "label_studio.installing", env=str(env), lock=str(LOCK))
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    try:
        if uv:
            subprocess.run(
                [uv, "venv", "--quiet", "--allow-existing", "--python", sys.executable, str(env)], check=True
            )
            subprocess.run(
                [uv, "pip", "install", "--quiet", "--python", str(env / "bin" / "python"), "-r", str(LOCK)], check=True
            )
        else:
            subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
            subprocess.run(
                [str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", "-r", str(LOCK)], check=True
            )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise LabelStudioError(f"cannot install Label Studio into {env} ({exc}); run `make setup`") from exc
    return executable


def credentials(data_dir: Path, files_root: Path | None = None) -> Credentials:
    """The saved credentials of this data folder, or new ones (a first start creates the user with them). A
    ``files_root`` given replaces the saved one, so a restart with another --files-root serves that folder; none
    keeps the saved one (the current folder for a first start). Kept absolute and resolved: Label Studio compares
    it with the resolved folders push sends, from its own working folder."""
    path = data_dir / CREDENTIALS
    root = str(files_root.resolve()) if files_root is not None else None
    if path.exists():
        found = Credentials(**json.loads(path.read_text()))
        if root is not None and root != found.files_root:
            found = replace(found, files_root=root)
            path.write_text(json.dumps(asdict(found), indent=2))
        path.chmod(0o600)  # the password and token stay the operator's alone
        return found
    data_dir.mkdir(parents=True, exist_ok=True)
    made = Credentials(
        "operator@localhost.local", secrets.token_urlsafe(16), secrets.token_hex(20), root or str(Path.cwd().resolve())
    )
    path.write_text(json.dumps(asdict(made), indent=2))
    path.chmod(0o600)
    return made


@dataclass
class Server:
    url: str
    credentials: Credentials
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(
    data_dir: Path,
    port: int,
    files_root: Path | None = None,
    env: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> Server:
    """Start Label Studio on 127.0.0.1:``port`` and wait until it answers; its output goes to ``label-studio.log``.
    The files root it serves is recorded beside the URL, so push checks the frames against it before sending any."""
    executable = ensure_environment(env or environment())
    found = credentials(data_dir, files_root)
    settings = {
        **os.environ,
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": found.files_root,
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "COLLECT_ANALYTICS": "false",
        **(extra_env or {}),
    }
    log = data_dir / "label-studio.log"
    command = [
        str(executable), "start", "--no-browser", "--data-dir", str(data_dir), "--internal-host", "127.0.0.1",
        "--port", str(port), "--host", f"http://127.0.0.1:{port}", f"--username={found.username}",
        # "=" forms: a generated password may begin with "-", which argparse would take for an option
        f"--password={found.password}", f"--user-token={found.token}", "--enable-legacy-api-token",
    ]  # fmt: skip
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=settings, stdout=out, stderr=subprocess.STDOUT, cwd=data_dir)
    server = Server(f"http://127.0.0.1:{port}", found, process, log)
    # its first start migrates a database for about a minute: said now, not after the wait
    log_event(logger, "label_studio.starting", url=server.url, log=str(log), detail="waiting until it answers")
    _wait_healthy(server)
    serving = data_dir / SERVING
    serving.write_text(json.dumps({"url": server.url, "token": found.token, "files_root": found.files_root}))
    serving.chmod(0o600)
    log_event(logger, "label_studio.started", url=server.url, data_dir=str(data_dir), files_root=found.files_root)
    return server


def serving(data_dir: Path = DEFAULT_DATA_DIR) -> dict[str, str]:
    """What the last ``odctl label-studio serve`` of this data folder recorded (empty when it never ran)."""
    path = data_dir / SERVING
    return json.loads(path.read_text()) if path.exists() else {}


def _wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise LabelStudioError(f"Label Studio exited with code {server.process.returncode}; see {server.log}")
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1.0)
    server.stop()
    raise LabelStudioError(
        f"Label Studio did not answer on {server.url} within {START_TIMEOUT_S:.0f} s; see {server.log}"
    )
