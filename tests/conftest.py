"""Shared fixtures: a moto server on a free loopback port, the seed artifacts, generated videos."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SEED = REPO.parent / "shared" / "fixtures" / "seed"

os.environ.setdefault("ODCTL_PROGRESS", "0")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def seed_dir() -> Path:
    if not SEED.is_dir():
        raise RuntimeError(f"the seed fixtures are missing: expected {SEED} (shared/ beside the checkout)")
    return SEED


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real moto server (HTTP on 127.0.0.1) for the whole session."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point boto3 at the moto server with throwaway credentials; state is reset afterwards."""
    import requests

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield moto_endpoint
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10)


@pytest.fixture
def bucket(aws: str) -> str:
    import boto3

    name = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


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
    from odshared.model.calibration import build_calibration
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
    manifests = [str(root / "prepared/validation.manifest"), str(root / "prepared/train.manifest")]
    convert(  # with the INT8 model, calibrated as the workflow and the demo calibrate
        str(root / "model.tar.gz"),
        str(root / "package-int8"),
        list(CLASSES),
        calibration=lambda size: build_calibration(manifests, size),
    )
    return {
        "root": root,
        "video": video,
        "boxes": boxes,
        "package": root / "package",
        "package_int8": root / "package-int8",
    }
