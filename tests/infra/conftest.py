"""One synthesized stack for the infra tests (bundling skipped: the Lambda code is not needed to check the
template), built from cdk.json like `python app.py`."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")


def synth(tmp_path, **overrides):
    import aws_cdk as cdk

    from app import build_app
    from infra.config import cdk_json_context

    context = {**cdk_json_context(), "aws:cdk:bundling-stacks": [], **overrides}
    app = cdk.App(context=context, outdir=str(tmp_path))
    app, stack = build_app(app)
    app.synth()  # runs cdk-nag: raises on any unacknowledged finding
    return stack, json.loads((tmp_path / f"{stack.stack_name}.template.json").read_text())


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory):
    return synth(tmp_path_factory.mktemp("cdk"))


@pytest.fixture(scope="session")
def lambda_bundles(synthesized, tmp_path_factory):
    """Every function's bundle, built once as `cdk synth` builds it (the synthesized fixture skips bundling)."""
    from tests.rehearsal.lambda_runtime import build_bundles

    stack, _ = synthesized
    return build_bundles(stack, tmp_path_factory.mktemp("bundles"))
