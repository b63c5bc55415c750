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


def state_machine_definition(template: dict, refs: dict[str, str] | None = None) -> dict:
    """The definition with CloudFormation tokens replaced by example values (what asl-validator checks);
    ``refs`` maps logical IDs to the values their Ref/GetAtt should take."""
    refs = refs or {}
    machine = next(r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine")
    body = machine["Properties"]["DefinitionString"]
    if isinstance(body, dict) and "Fn::Join" in body:
        parts = []
        for part in body["Fn::Join"][1]:
            if isinstance(part, str):
                parts.append(part)
            elif "Ref" in part and part["Ref"] in refs:
                parts.append(refs[part["Ref"]])
            elif "Fn::GetAtt" in part and part["Fn::GetAtt"][0] in refs:
                parts.append(refs[part["Fn::GetAtt"][0]])
            elif "Ref" in part and part["Ref"] == "AWS::Partition":
                parts.append("aws")
            elif "Ref" in part and part["Ref"] == "AWS::Region":
                parts.append("us-east-1")
            elif "Ref" in part and part["Ref"] == "AWS::AccountId":
                parts.append("123456789012")
            elif "Fn::GetAtt" in part and part["Fn::GetAtt"][1] == "Arn":
                parts.append(f"arn:aws:lambda:us-east-1:123456789012:function:{part['Fn::GetAtt'][0]}")
            elif "Fn::FindInMap" in part:
                parts.append("811284229777")
            else:
                parts.append(f"token-{abs(hash(json.dumps(part, sort_keys=True))) % 10**8}")
        body = "".join(parts)
    return json.loads(body)
