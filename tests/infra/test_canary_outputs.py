"""What `cdk deploy` says about the canary (issue 33): no canary configured is a warning at every synth and deploy;
the stack's output names the canary group, which `odctl model approve` reads to warn of a device also in the
version's fleet group."""

from __future__ import annotations

import json

from aws_cdk.assertions import Annotations, Match

from odshared.fleet.canary import NO_CANARY


def _outputs(template: dict) -> dict[str, str]:
    return {name: output["Value"] for name, output in template["Outputs"].items()}


def test_without_a_canary_the_stack_warns_that_models_go_straight_to_the_fleet(synthesized):
    stack, template = synthesized
    outputs = _outputs(template)
    assert outputs["CanaryThingGroup"] == NO_CANARY
    Annotations.from_stack(stack).has_warning(
        "*", Match.string_like_regexp("canaryThingGroup is empty: approved models go straight to the fleet group")
    )


def test_with_a_canary_the_outputs_name_it_and_nothing_is_said(tmp_path):
    from infra.config import cdk_json_context
    from tests.infra.conftest import synth

    promotion = {**cdk_json_context()["edge-od:promotion"], "canaryThingGroup": "canaries"}
    stack, template = synth(tmp_path, **{"edge-od:promotion": promotion})
    assert _outputs(template)["CanaryThingGroup"] == "canaries"
    Annotations.from_stack(stack).has_no_warning("*", Match.string_like_regexp("canaryThingGroup is empty"))
    # the stack creates the group, or finds it there (CreateThingGroup answers with the existing group)
    (made,) = [r for r in template["Resources"].values() if r["Type"] == "Custom::AWS"]
    create = json.loads(made["Properties"]["Create"])
    assert made["Properties"]["Update"] == made["Properties"]["Create"]
    assert (create["service"], create["action"]) == ("Iot", "createThingGroup")
    assert create["parameters"] == {"thingGroupName": "canaries"}
    _valid_request("iot", "CreateThingGroup", create["parameters"])
    policies = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy"]
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    (allowed,) = [s for s in statements if s["Action"] == "iot:CreateThingGroup"]
    assert json.dumps(allowed["Resource"]).endswith(':thinggroup/canaries"]]}')


def _valid_request(service: str, operation: str, parameters: dict) -> None:
    """The request the custom resource sends, against botocore's own model of the API."""
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model(service).operation_model(operation)
    report = ParamValidator().validate(parameters, model.input_shape)
    assert not report.has_errors(), report.generate_report()
