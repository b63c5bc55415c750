"""The canary thing group, created by the stack or verified to exist (issue 33).

A promotion sends an approved model to the canary group first; a group that does not exist would fail the canary
deployment at the first approval, long after `cdk deploy` said all was well. CreateThingGroup returns the group when
one of that name exists with the same (here: no) properties, so the call creates a missing group and verifies an
existing one; on stack deletion the group stays, with its devices (AWS IoT API Reference, CreateThingGroup)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import custom_resources as cr
from constructs import Construct


class CanaryGroup(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, group_name: str) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        arn = stack.format_arn(service="iot", resource="thinggroup", resource_name=group_name)
        call = cr.AwsSdkCall(
            service="Iot",
            action="createThingGroup",
            parameters={"thingGroupName": group_name},
            physical_resource_id=cr.PhysicalResourceId.of(f"canary-group-{group_name}"),
        )
        self.resource = cr.AwsCustomResource(
            self,
            "CreateOrVerify",
            on_create=call,
            on_update=call,
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [iam.PolicyStatement(actions=["iot:CreateThingGroup"], resources=[arn])]
            ),
            install_latest_aws_sdk=False,
        )
        self.group_arn = arn
