"""Publish step: the converted package becomes a Greengrass model component version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from odshared.core.lambda_env import FunctionScope, setting
from odshared.core.log import configure
from odshared.greengrass.components import publish_model_component

configure()
TEMPLATE = Path(__file__).with_name("model.yaml")  # edge_component/recipes/model.yaml, copied in at bundling


def handler(event: dict[str, Any], context: Any = None, greengrass: Any = None) -> dict[str, Any]:
    import boto3

    scope = FunctionScope.of(context)
    return publish_model_component(
        event["package"],
        setting("ARTIFACTS_BUCKET"),
        setting("NAME_PREFIX"),
        event["classes"],
        TEMPLATE.read_text(),
        greengrass or boto3.client("greengrassv2"),
        scope.account,
        scope.region,
        scope.partition,
    )
