"""Where the stack can exist: the accepted regions against botocore's endpoints and cfn-lint's resource
specifications; synthesis (as the CDK CLI runs it, with a concrete account and region) in every accepted region, each
template cfn-lint clean; one clear line in the others."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from cfnlint.api import ManualArgs, lint
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from infra.regions import ACCEPTED_REGIONS, GREENGRASS_V2_REGIONS, OBJECT_DETECTION_ACCOUNTS, missing_services
from tests.infra.conftest import synth

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
COMPONENT = "AWS::GreengrassV2::ComponentVersion"


def test_accepted_regions_follow_botocore_and_cfn_lint():
    endpoints = set(boto3.Session().get_available_regions("greengrassv2"))
    for region in OBJECT_DETECTION_ACCOUNTS:
        available = region in endpoints and COMPONENT in PROVIDER_SCHEMA_MANAGER.get_resource_types(region)
        assert (region in ACCEPTED_REGIONS) == available, region
    assert GREENGRASS_V2_REGIONS <= endpoints
    assert len(ACCEPTED_REGIONS) == 13


@pytest.mark.slow
def test_every_accepted_region_synthesizes_cleanly(tmp_path, monkeypatch):
    monkeypatch.setenv("CDK_DEFAULT_ACCOUNT", "123456789012")
    ignored = ["W3005"]  # .cfnlintrc: CDK's own explicit DependsOn next to a GetAtt
    for region in ACCEPTED_REGIONS:
        monkeypatch.setenv("CDK_DEFAULT_REGION", region)
        stack, template = synth(tmp_path / region)  # cdk-nag runs: an unacknowledged finding raises
        assert stack.region == region
        matches = lint(json.dumps(template), config=ManualArgs(regions=[region], ignore_checks=ignored))
        assert not matches, (region, [str(m) for m in matches])


@pytest.mark.parametrize("region", ["sa-east-1", "me-south-1", "ap-southeast-5", "cn-north-1"])
def test_app_refuses_a_region_that_cannot_run_the_stack_in_one_line(region):
    env = {**os.environ, "CDK_DEFAULT_REGION": region, "CDK_DEFAULT_ACCOUNT": "123456789012"}
    done = subprocess.run([sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert region in lines[0] and "deploy to one of us-east-1" not in lines[0]
    for service in missing_services(region):
        assert service.split(" (")[0] in lines[0]


@pytest.mark.slow
def test_cdk_cli_synthesizes_from_a_shell_without_the_project_environment(moto_endpoint, tmp_path):
    """`make synth` as a user runs it: no venv on PATH; the CLI resolves the account through STS (moto
    answers) and passes it with the region; cdk.json's app finds the project's environment itself."""
    cdk = REPO / ".tools" / "node_modules" / ".bin" / "cdk"
    assert cdk.exists(), "the CDK CLI is installed by `make setup` (npm install --prefix .tools aws-cdk@2)"
    env = {
        "HOME": str(tmp_path),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "eu-west-2",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "CDK_DISABLE_VERSION_CHECK": "1",
        "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")),
    }
    out = tmp_path / "cdk.out"
    # as the README gives it: `make synth` runs the CLI in .tools/ from the root (cdk is not on PATH)
    done = subprocess.run(
        ["make", "-C", str(REPO), "synth", f"CDK_ARGS=--quiet -o {out}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "deprecated" not in done.stdout + done.stderr, "the synth warns of a deprecated CDK API"
    template = json.loads((out / "EdgeObjectDetector.template.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    environment = manifest["artifacts"]["EdgeObjectDetector"]["environment"]
    assert environment == "aws://123456789012/eu-west-2"
    assert "eu-west-2" in json.dumps(template)


def test_ground_truth_regions_within_the_accepted_ones():
    from infra.regions import ground_truth_available

    assert not ground_truth_available("eu-south-2") and ground_truth_available("eu-west-1")
    assert "eu-south-2" in ACCEPTED_REGIONS
