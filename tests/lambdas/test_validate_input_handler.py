"""The validation Lambda over moto's S3: a labeling run gets its label categories and worker UI written."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import pytest

from infra.lambda_bundle import build_bundle
from odshared.data.pipeline import PipelineInputError
from tests.conftest import REPO
from tests.helpers import load_handler_module

pytestmark = pytest.mark.integration


def _handler():
    return load_handler_module("validate_input").handler


def test_labeling_run_writes_categories_and_template(bucket, monkeypatch):
    monkeypatch.setenv(
        "PIPELINE_DEFAULTS",
        json.dumps(
            {
                "classes": ["blue box", "yellow box"],
                "dataBucket": bucket,
                "hyperparameters": {},
                "thingGroup": "",
                "workteamArn": "arn:aws:sagemaker:us-east-1:1:workteam/x",
            }
        ),
    )
    config = _handler()({"input": {"runName": "run-7", "labelingManifest": f"s3://{bucket}/manifests/in.manifest"}})
    assert config["labelingRequested"] and config["labelingJobName"] == "run-7-labels"
    s3 = boto3.client("s3")
    categories = json.loads(s3.get_object(Bucket=bucket, Key="pipeline/run-7/label-categories.json")["Body"].read())
    assert [c["label"] for c in categories["labels"]] == ["blue box", "yellow box"]
    template = s3.get_object(Bucket=bucket, Key="pipeline/run-7/bounding-box.liquid.html")["Body"].read().decode()
    assert "crowd-bounding-box" in template and "grant_read_access" in template
    with pytest.raises(PipelineInputError, match="either labelingManifest"):
        _handler()({"input": {"runName": "run-8"}})


def test_bundle_holds_the_handler_and_the_shared_library(tmp_path):
    bundle = build_bundle(REPO / "lambdas" / "validate_input", tmp_path / "bundle")
    assert (bundle / "handler.py").exists() and (bundle / "odshared" / "data" / "pipeline.py").exists()
    assert not (bundle / "requirements.txt").exists() and not list(bundle.rglob("__pycache__"))
    # only the groups its imports reach: no model conversion or Greengrass code rides along
    assert sorted(p.name for p in (bundle / "odshared").iterdir() if p.is_dir()) == ["core", "data"]
    # and what is there imports on its own, as Lambda loads it
    probe = subprocess.run(
        [sys.executable, "-c", "import handler"], cwd=bundle, env={"PATH": os.environ["PATH"]}, capture_output=True
    )
    assert probe.returncode == 0, probe.stderr.decode()[-2000:]
