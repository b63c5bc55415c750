"""Edge fixtures: a trained and converted tiny model, the video it was trained on, and a real MQTT broker."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port

CLASSES = ("blue box", "yellow box")


@pytest.fixture(scope="session")
def scene(tmp_path_factory):
    """A generated video with known boxes, and a tiny SSD trained on its frames and converted for the device."""
    from odctl.local_labeling import label_from_known_boxes
    from odctl.synth_video import SynthSpec, write_video
    from odctl.train_local import train_local
    from odshared.data.dataprep import PrepareOptions, prepare_training
    from odshared.data.frames import extract_frames
    from odshared.data.input_manifest import build_input_manifest
    from odshared.model.convert import convert

    root = tmp_path_factory.mktemp("scene")
    video, boxes = write_video(SynthSpec("mixed_boxes_7", CLASSES, frames=120, seed=21), root)
    extract_frames(str(video), str(root / "frames"))
    build_input_manifest([str(root / "frames")], str(root / "in.manifest"))
    label_from_known_boxes(str(root / "in.manifest"), str(root), str(root / "out.manifest"), list(CLASSES))
    prepare_training(
        [str(root / "out.manifest")],
        str(root / "prepared"),
        PrepareOptions(classes=CLASSES, flip=True, validation_fraction=0.1),
    )
    hp = {
        "base_network": "tiny",
        "image_shape": 300,
        "mini_batch_size": 16,
        "epochs": 8,
        "optimizer": "adam",
        "learning_rate": 0.003,
        "lr_scheduler_step": "6",
        "lr_scheduler_factor": 0.1,
    }
    train_local(
        str(root / "prepared/train.manifest"),
        str(root / "prepared/validation.manifest"),
        str(root / "model.tar.gz"),
        hp,
        classes=list(CLASSES),
    )
    convert(str(root / "model.tar.gz"), str(root / "package"), list(CLASSES))
    return {"root": root, "video": video, "boxes": boxes, "package": root / "package"}


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
