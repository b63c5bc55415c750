"""Every IAM and AWS IoT policy of the stack checked against IAM's own action and resource tables (policy_sentry's
database, with parliament's linter): each action exists, each resource fits one of the action's resource types, an
action that takes only ``*`` gets ``*``, and no action that has resource types gets ``*``."""

from __future__ import annotations

import json
import re
from functools import cache

import pytest
from parliament import analyze_policy_string
from policy_sentry.querying.actions import get_action_data

from tests.infra.template_values import Deployment

pytestmark = pytest.mark.integration


def _policies(deployment: Deployment) -> dict[str, dict]:
    found = {}
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IoT::Policy"):
        for logical, resource in deployment.resources(kind).items():
            found[logical] = deployment.resolve(resource["Properties"]["PolicyDocument"])
    for logical, resource in deployment.resources("AWS::IAM::Role").items():
        for inline in resource["Properties"].get("Policies", []):
            found[f"{logical}/{inline['PolicyName']}"] = deployment.resolve(inline["PolicyDocument"])
    return found


@cache
def _formats(action: str) -> tuple[str, ...]:
    service, name = action.split(":")
    data = get_action_data(service, name)
    rows = data.get(service) if data else None
    assert rows, f"{action}: not an IAM action"
    return tuple(row["resource_arn_format"] for row in rows if row["action"].lower() == action.lower())


def _fits(resource: str, arn_format: str) -> bool:
    """An ARN of ours (with * and policy variables) fits a resource type's ARN format."""
    pattern = re.escape(arn_format)
    pattern = re.sub(r"\\\$\\\{(Partition|Region|Account)\\\}", r"[^:]+", pattern)
    pattern = re.sub(r"\\\$\\\{[A-Za-z]+\\\}", r".+", pattern)
    return re.fullmatch(pattern, resource) is not None


def _statements(document: dict) -> list[tuple[list[str], list[str]]]:
    out = []
    for statement in document["Statement"]:
        actions, resources = statement["Action"], statement["Resource"]
        out.append(
            (
                actions if isinstance(actions, list) else [actions],
                resources if isinstance(resources, list) else [resources],
            )
        )
    return out


@pytest.fixture(scope="module")
def policies(synthesized) -> dict[str, dict]:
    return _policies(Deployment(synthesized[1], region="eu-west-1"))


# parliament asks CreateJob for thing ARNs as well; a thing-group deployment's job names the group, not things
# and the Distributed Map's DescribeExecution for its map-run resource; the map describes its child executions
ACCEPTED_FINDINGS = {("RESOURCE_MISMATCH", "iot:CreateJob"), ("RESOURCE_MISMATCH", "states:DescribeExecution")}
CDK_OWN = ("CustomCDKBucketDeployment",)  # aws-cdk-lib's provider: its grants are not ours to write
POLICY_VARIABLE = re.compile(r"\$\{[a-z-]+:[A-Za-z.]+\}")


def test_parliament_finds_nothing(policies):
    for name, document in policies.items():
        if name.startswith(CDK_OWN) or any(a.startswith("iot:") for (a,) in _actions(document)):
            continue  # AWS IoT policies are checked below against IAM's tables
        text = POLICY_VARIABLE.sub("thing-1", json.dumps(document))  # IAM evaluates variables as values
        findings = [
            (f.issue, sorted({d["action"] for d in f.detail}) if f.issue == "RESOURCE_MISMATCH" else f.detail)
            for f in analyze_policy_string(text).findings
        ]
        findings = [f for f in findings if (f[0], *f[1]) not in ACCEPTED_FINDINGS]
        assert not findings, (name, findings)


def _actions(document: dict) -> list[tuple[str]]:
    return [(a,) for actions, _ in _statements(document) for a in actions]


def test_every_resource_fits_its_actions_and_star_only_where_required(policies):
    for name, document in policies.items():
        if name.startswith(CDK_OWN):
            continue
        for actions, resources in _statements(document):
            for action in actions:
                formats = _formats(action)
                assert "*" not in action, (name, action)
                for resource in resources:
                    if resource == "*":
                        assert formats == ("*",), (
                            f"{name}: {action} has resource types {formats}; {resource} is broader"
                        )
                    else:
                        assert any(_fits(resource, f) for f in formats), f"{name}: {action} cannot apply to {resource}"


def test_actions_that_take_only_star_are_granted_on_star(policies):
    """The rule that caught greengrass:CreateDeployment on thing-group ARNs (it never matched)."""
    for name, document in policies.items():
        for actions, resources in _statements(document):
            for action in actions:
                if _formats(action) == ("*",):
                    assert resources == ["*"], f"{name}: {action} takes only *, granted on {resources}"


def test_create_deployment_dependencies_for_a_thing_group(policies):
    """CreateDeployment's dependent actions (IAM's table) that a thing-group deployment uses are granted."""
    deploy = next(doc for name, doc in policies.items() if name.startswith("DeployToThingGroup"))
    granted = {a for actions, _ in _statements(deploy) for a in actions}
    rows = get_action_data("greengrass", "CreateDeployment")["greengrass"]
    dependent = {a for row in rows for a in (row.get("dependent_actions") or [])}
    needed = {a for a in dependent if "Shadow" not in a and a != "iot:DescribeThing"}  # single-device targets only
    assert needed <= granted, needed - granted
    assert {"greengrass:CreateDeployment", "greengrass:ListDeployments", "greengrass:GetDeployment"} <= granted
