"""prepare_training and storage over a real moto server: manifests, images and outputs in S3."""

from __future__ import annotations

import io
import json

import boto3
import numpy as np
import pytest
from PIL import Image

from odshared.core import storage
from odshared.core.errors import StorageError
from odshared.data.dataprep import ClassRule, PrepareOptions, prepare_training
from tests.helpers import gt_line, put_keys_in_moto

pytestmark = pytest.mark.integration


def test_prepare_from_s3_to_s3_with_flip(bucket, seed_dir):
    s3 = boto3.client("s3")
    frame = (seed_dir / "yellow_box_1_000086.jpg").read_bytes()
    s3.put_object(Bucket=bucket, Key="frames/yellow_box_1_000086.jpg", Body=frame)
    ref = f"s3://{bucket}/frames/yellow_box_1_000086.jpg"
    line = gt_line(
        ref,
        [{"class_id": 0, "left": 100, "top": 50, "width": 300, "height": 200}],
        {"0": "storage box"},
        width=1920,
        height=1080,
        color="yellow",
    )
    s3.put_object(Bucket=bucket, Key="labels/job/output.manifest", Body=line + "\n")
    result = prepare_training(
        [f"s3://{bucket}/labels/job/output.manifest"],
        f"s3://{bucket}/prepared",
        PrepareOptions(class_rules=(ClassRule.parse("color=yellow:yellow box"),), flip=True, validation_fraction=0),
    )
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert {
        "prepared/train.manifest",
        "prepared/validation.manifest",
        "prepared/classes.json",
        "prepared/stats.json",
        "prepared/stats.png",
        "frames/yellow_box_1_000086_flip.jpg",
    } <= keys
    train = [json.loads(x) for x in storage.read_text(result.train_manifest).splitlines()]
    assert train[1]["source-ref"] == f"s3://{bucket}/frames/yellow_box_1_000086_flip.jpg"
    assert train[1]["bb"]["annotations"][0]["left"] == 1920 - 400
    flipped = Image.open(
        io.BytesIO(s3.get_object(Bucket=bucket, Key="frames/yellow_box_1_000086_flip.jpg")["Body"].read())
    )
    original = np.asarray(Image.open(seed_dir / "yellow_box_1_000086.jpg").convert("RGB")).astype(int)
    assert np.abs(np.asarray(flipped).astype(int)[:, ::-1] - original).mean() < 3


def test_missing_bucket_is_named(aws, tmp_path):
    with pytest.raises(StorageError, match="bucket 'no-such-bucket-x' does not exist"):
        prepare_training([str(tmp_path / "x")], "s3://no-such-bucket-x/out")
    with pytest.raises(StorageError, match="s3://no-such-bucket-x/m.manifest"):
        list(storage.iter_lines("s3://no-such-bucket-x/m.manifest"))


def test_missing_object_is_named(bucket):
    with pytest.raises(StorageError, match=f"s3://{bucket}/nope.manifest: no such object"):
        storage.read_bytes(f"s3://{bucket}/nope.manifest")


def test_listing_pages_through_more_than_10000_keys(bucket):
    keys = [f"frames/v/v_{i:06d}.jpg" for i in range(10_123)]
    put_keys_in_moto(bucket, keys + ["frames/v/readme.txt", "other/x.jpg"])
    listed = list(storage.list_files(f"s3://{bucket}/frames/v", (".jpg",)))
    assert len(listed) == 10_123
    assert listed == sorted(listed) and listed[0] == f"s3://{bucket}/frames/v/v_000000.jpg"


@pytest.fixture
def locked_bucket(monkeypatch, tmp_path):
    """A moto server that enforces IAM: a user without any policy is refused by S3 (AccessDenied)."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    from tests.conftest import free_port

    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-p", str(port)],
        env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    admin = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "admin",
        "aws_secret_access_key": "admin",
    }
    import socket

    for _ in range(200):  # wait for the port without spending one of the three unauthenticated actions
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    boto3.client("s3", **admin).create_bucket(Bucket="locked-bucket")
    iam = boto3.client("iam", **admin)
    iam.create_user(UserName="nobody")
    key = iam.create_access_key(UserName="nobody")["AccessKey"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield "locked-bucket"
    server.terminate()
    server.wait(10)


def test_access_denied_is_named(locked_bucket, tmp_path):
    with pytest.raises(StorageError, match="s3://locked-bucket/m.manifest: access denied"):
        storage.read_bytes(f"s3://{locked_bucket}/m.manifest")
    manifest = tmp_path / "m.manifest"
    manifest.write_text(
        gt_line("s3://b/1.jpg", [{"class_id": 0, "left": 1, "top": 1, "width": 5, "height": 5}], {"0": "a"}) + "\n"
    )
    with pytest.raises(StorageError, match="s3://locked-bucket/out: access denied"):
        prepare_training([str(manifest)], f"s3://{locked_bucket}/out")
