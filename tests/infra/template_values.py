"""CloudFormation intrinsics of a synthesized template resolved to the values one deployment would give them.

One resolver for every test that reads a deployed value (the state machine definition, Lambda environments, IAM
policies): each resource's Ref/GetAtt is derived from its type and a physical name, as CloudFormation would.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PARTITION = "aws"


@dataclass
class Deployment:
    template: dict
    region: str = "us-east-1"
    account: str = "123456789012"
    names: dict[str, str] = field(default_factory=dict)  # logical id -> physical name (default: derived)

    def name(self, logical: str) -> str:
        return self.names.get(logical) or logical.lower()[:60]

    def ref(self, logical: str) -> str:
        pseudo = {
            "AWS::Partition": PARTITION,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "EdgeObjectDetector",
        }
        if logical in pseudo:
            return pseudo[logical]
        kind = self.template["Resources"][logical]["Type"]
        if kind in ("AWS::SNS::Topic", "AWS::StepFunctions::StateMachine", "AWS::IAM::ManagedPolicy"):
            return self.arn(logical)
        if kind == "AWS::SQS::Queue":  # a queue's Ref is its URL
            return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{self.name(logical)}"
        return self.name(logical)

    def arn(self, logical: str) -> str:
        kind = self.template["Resources"][logical]["Type"]
        name, scope = self.name(logical), f"{self.region}:{self.account}"
        return {
            "AWS::S3::Bucket": f"arn:{PARTITION}:s3:::{name}",
            "AWS::IAM::Role": f"arn:{PARTITION}:iam::{self.account}:role/{name}",
            "AWS::IAM::ManagedPolicy": f"arn:{PARTITION}:iam::{self.account}:policy/{name}",
            "AWS::Lambda::Function": f"arn:{PARTITION}:lambda:{scope}:function:{name}",
            "AWS::Logs::LogGroup": f"arn:{PARTITION}:logs:{scope}:log-group:{name}:*",
            "AWS::SNS::Topic": f"arn:{PARTITION}:sns:{scope}:{name}",
            "AWS::StepFunctions::StateMachine": f"arn:{PARTITION}:states:{scope}:stateMachine:{name}",
            "AWS::Events::Rule": f"arn:{PARTITION}:events:{scope}:rule/{name}",
            "AWS::SQS::Queue": f"arn:{PARTITION}:sqs:{scope}:{name}",
            "AWS::GreengrassV2::ComponentVersion": f"arn:{PARTITION}:greengrass:{scope}:components:{name}",
            "AWS::KinesisFirehose::DeliveryStream": f"arn:{PARTITION}:firehose:{scope}:deliverystream/{name}",
        }[kind]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, Mapping):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.arn(logical) if attribute == "Arn" else self.name(logical)
            if key == "Fn::Join":
                return arg[0].join(str(self.resolve(part)) for part in arg[1])
            if key == "Fn::FindInMap":
                mapping, top, second = (self.resolve(a) for a in arg)
                return self.template["Mappings"][mapping][top][second]
            if key == "Fn::Select":
                return self.resolve(arg[1])[int(arg[0])]
            if key == "Fn::Split":
                return self.resolve(arg[1]).split(arg[0])
            if key == "Fn::Sub":
                return self._sub(*(arg if isinstance(arg, list) else [arg, {}]))
            if key.startswith("Fn::"):
                raise NotImplementedError(key)
        return {k: self.resolve(v) for k, v in value.items()}

    def _sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def value(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name:
                logical, attribute = name.split(".", 1)
                return self.arn(logical) if attribute == "Arn" else self.name(logical)
            return self.ref(name)

        return re.sub(r"\$\{([^}]+)\}", value, text)

    def resources(self, kind: str) -> dict[str, dict]:
        return {k: r for k, r in self.template["Resources"].items() if r["Type"] == kind}

    def state_machine_definition(self, construct: str = "Pipeline") -> dict:
        """The definition of the state machine under the construct ``Pipeline`` (training) or ``Ingestion``."""
        (machine,) = [
            r for k, r in self.resources("AWS::StepFunctions::StateMachine").items() if k.startswith(construct)
        ]
        return json.loads(self.resolve(machine["Properties"]["DefinitionString"]))
