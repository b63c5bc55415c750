#!/usr/bin/env python3
"""CDK entry point: reads cdk.json context, builds the stack, runs cdk-nag's AwsSolutions checks, synthesizes.

Works offline: no AWS call at synth time.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# jsii prints a banner at import on Node versions past their end of life (Node 20 since 2026-10-30); the app
# works the same. The variable lists the major versions to stay quiet about.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")

import aws_cdk as cdk  # noqa: E402 - after the environment the jsii runtime reads at import

from infra.config import ConfigError, cdk_json_context, load_config  # noqa: E402
from infra.nag import add_nag_checks  # noqa: E402
from infra.regions import RegionError  # noqa: E402
from infra.stack import ObjectDetectionStack  # noqa: E402


def build_app(app: cdk.App | None = None) -> tuple[cdk.App, ObjectDetectionStack]:
    if app is None:
        # under the CDK CLI the context is already there; plain `python app.py` takes it from cdk.json
        # under the CLI, CDK_OUTDIR names the cloud assembly's folder; alone, write where the CLI would (not /tmp)
        cli = "CDK_CONTEXT_JSON" in os.environ
        app = cdk.App(
            context=None if cli else cdk_json_context(),
            outdir=None if "CDK_OUTDIR" in os.environ else str(Path(__file__).with_name("cdk.out")),
        )
    config = load_config(app)
    env = cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION"))
    stack = ObjectDetectionStack(
        app,
        config.stack_name,
        config=config,
        env=env,
        description="Camera feed to a custom object detector on Greengrass v2 devices",
    )
    add_nag_checks(app, stack)
    return app, stack


def main() -> int:
    try:
        built, _ = build_app()
    except (ConfigError, RegionError) as exc:  # a user's setting: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    built.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
