"""Publish step: the converted package becomes a Greengrass model component version."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from odshared.components import publish_model_component
from odshared.log import configure

configure()
TEMPLATE = Path(__file__).with_name("model.yaml")  # edge_component/recipes/model.yaml, copied in at bundling


def handler(event: dict[str, Any], context: Any = None, greengrass: Any = None) -> dict[str, Any]:
    import boto3

    partition, _, region, account = (
        context.invoked_function_arn.split(":")[1:5]
        if context
        else ("aws", "", os.environ["AWS_REGION"], os.environ["ACCOUNT_ID"])
    )
    return publish_model_component(
        event["package"],
        os.environ["ARTIFACTS_BUCKET"],
        os.environ["NAME_PREFIX"],
        event["classes"],
        TEMPLATE.read_text(),
        greengrass or boto3.client("greengrassv2"),
        account,
        region,
        partition,
    )
