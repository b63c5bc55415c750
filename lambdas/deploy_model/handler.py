"""Deploy step: merge the new model (and the inference component) into the thing group's deployment."""

from __future__ import annotations

import json
import os
from typing import Any

from odshared.deployments import merge_and_deploy
from odshared.log import configure

configure()


def handler(event: dict[str, Any], context: Any = None, greengrass: Any = None) -> dict[str, Any]:
    import boto3

    partition, _, region, account = (
        context.invoked_function_arn.split(":")[1:5]
        if context
        else ("aws", "", os.environ["AWS_REGION"], os.environ["ACCOUNT_ID"])
    )
    target = f"arn:{partition}:iot:{region}:{account}:thinggroup/{event['thing_group']}"
    component = event["component"]
    limits = json.loads(os.environ.get("SYSTEM_RESOURCE_LIMITS", "{}"))
    ours = {
        os.environ["INFERENCE_COMPONENT"]: {
            "componentVersion": os.environ["INFERENCE_VERSION"],
            **({"runWith": {"systemResourceLimits": limits}} if limits else {}),
        },
        component["componentName"]: {"componentVersion": component["componentVersion"]},
    }
    return merge_and_deploy(
        greengrass or boto3.client("greengrassv2"),
        target,
        ours,
        f"{os.environ['NAME_PREFIX']}-object-detection",
        int(os.environ.get("ROLLOUT_MAX_PER_MINUTE", "10")),
        float(os.environ.get("ROLLOUT_FAILURE_PERCENT", "10")),
    )
