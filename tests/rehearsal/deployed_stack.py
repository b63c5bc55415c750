"""The stack as `cdk deploy` leaves it, as far as odctl reads it: a CloudFormation stack (moto server) with the
outputs a command needs, and the state machine's, by which odctl knows the stack is this project's."""

from __future__ import annotations

import json
from collections.abc import Mapping

from odctl.pipeline_cli import DEFAULT_STACK

STATE_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:x"


def deployed_stack(outputs: Mapping[str, str], name: str = DEFAULT_STACK) -> None:
    import boto3

    values = {"StateMachineArn": STATE_MACHINE, **outputs}
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in values.items()},
    }
    boto3.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))
