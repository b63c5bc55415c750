"""Edge fixtures: a real MQTT broker (the trained scene is in tests/conftest.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"the MQTT broker did not open port {port}")


class Broker:
    """amqtt (a pip-installable MQTT 3.1.1 broker) in a subprocess on a loopback port."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.config = folder / f"amqtt-{self.port}.yaml"
        self.config.write_text(f"listeners:\n  default:\n    type: tcp\n    bind: 127.0.0.1:{self.port}\n")
        self.process: subprocess.Popen | None = None

    def start(self) -> Broker:
        amqtt = Path(sys.executable).with_name("amqtt")
        self.process = subprocess.Popen(
            [str(amqtt), "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def broker(tmp_path):
    server = Broker(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def broker_factory(tmp_path):
    made = []

    def make(port: int | None = None) -> Broker:
        server = Broker(tmp_path, port)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()
