"""Every IAM and AWS IoT policy of the stack checked against IAM's own action and resource tables (policy_sentry's
database, with parliament's linter): each action exists, each resource fits one of the action's resource types, an
action that takes only ``*`` gets ``*``, and no action that has resource types gets ``*``."""

from __future__ import annotations

import copy
import fnmatch
import json
import re
from dataclasses import dataclass
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
    return _policies(Deployment(synthesized[1], region=REGION, account=ACCOUNT))


ACCOUNT, REGION = "123456789012", "eu-west-1"  # the Deployment the policies are resolved for
IOT, STATES = f"arn:aws:iot:{REGION}:{ACCOUNT}", f"arn:aws:states:{REGION}:{ACCOUNT}"
ASSETS = f"arn:aws:s3:::cdk-hnb659fds-assets-{ACCOUNT}-{REGION}"


@dataclass(frozen=True)
class Accepted:
    """A parliament finding we accept: the policy (logical id prefix), the statement's action as written and the
    statement's resources, exactly; anything else about the statement changed and the finding is reported again."""

    policy: str
    action: str
    resources: tuple[str, ...]
    reason: str


CDK_OWN = ("CustomCDKBucketDeployment",)  # aws-cdk-lib's provider: parliament checks it; the table check below skips it
ACCEPTED_FINDINGS = (
    Accepted(
        "DeployToThingGroup",
        "iot:CreateJob",
        (f"{IOT}:job/*", f"{IOT}:thinggroup/*"),
        "a Greengrass deployment to a thing group creates an IoT job whose target is the group: the job never names "
        "a thing, so thing/* (which parliament asks for) is not granted",
    ),
    Accepted(
        "EndPromotion",
        "iot:CreateJob",
        (f"{IOT}:job/*", f"{IOT}:thinggroup/*"),
        "as DeployToThingGroup's: EndPromotion redeploys a canary group's deployment from before",
    ),
    Accepted(
        "IngestionStateMachineDistributedMapPolicy",
        "states:DescribeExecution",
        (f"{STATES}:execution:ingestionstatemachine74e2485e:*",),
        "aws-cdk-lib's own Distributed Map policy: the map's child executions are STANDARD executions of this state "
        "machine; parliament asks for the express execution type, which this map never starts",
    ),
    *(
        Accepted(
            "CustomCDKBucketDeployment",
            action,
            tuple(sorted(resources)),
            "aws-cdk-lib's BucketDeployment provider grants read as wildcard groups on its buckets; the groups also "
            "expand to account-level S3 actions that take no bucket ARN, which the provider never calls",
        )
        for action in ("s3:GetObject*", "s3:List*")
        for resources in ((ASSETS, f"{ASSETS}/*"), ("arn:aws:s3:::{artifacts}", "arn:aws:s3:::{artifacts}/*"))
    ),
)
POLICY_VARIABLE = re.compile(r"\$\{[a-z-]+:[A-Za-z.]+\}")


def _parliament_findings(name: str, document: dict, artifacts: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """Each finding as (issue, the statement's action as written, the statement's resources), unless accepted."""
    text = POLICY_VARIABLE.sub("thing-1", json.dumps(document))  # IAM evaluates variables as values
    accepted = {
        (a.action, tuple(sorted(r.replace("{artifacts}", artifacts) for r in a.resources)))
        for a in ACCEPTED_FINDINGS
        if name.startswith(a.policy)
    }
    found = []
    for finding in analyze_policy_string(text).findings:
        details = finding.detail if isinstance(finding.detail, list) else [finding.detail]
        for detail in details:
            action = detail.get("action", "") if isinstance(detail, dict) else ""
            where = [
                (written, tuple(sorted(resources)))
                for actions, resources in _statements(document)
                for written in actions
                if action and fnmatch.fnmatch(action.lower(), written.lower())
            ] or [(str(detail), ())]
            found.extend((finding.issue, *key) for key in where if key not in accepted)
    return found


def _artifacts_bucket(policies: dict[str, dict]) -> str:
    deploy = next(doc for name, doc in policies.items() if name.startswith("CustomCDKBucketDeployment"))
    buckets = {r.split(":::")[1].split("/")[0] for _, resources in _statements(deploy) for r in resources}
    (artifacts,) = {b for b in buckets if b.startswith("storageartifacts")}
    return artifacts


def test_parliament_finds_nothing_in_any_policy(policies):
    """Every policy the stack creates (IAM and AWS IoT, aws-cdk-lib's own too) goes through parliament."""
    artifacts = _artifacts_bucket(policies)
    for name, document in policies.items():
        assert _parliament_findings(name, document, artifacts) == [], name


def test_a_narrowed_deploy_policy_is_caught(policies):
    """The accepted CreateJob finding holds only for the statement as it is: without the thing-group ARN the job
    could not target the group, and parliament's finding is reported."""
    name, deploy = next((n, d) for n, d in policies.items() if n.startswith("DeployToThingGroup"))
    narrowed = copy.deepcopy(deploy)
    for statement in narrowed["Statement"]:
        if "iot:CreateJob" in statement["Action"]:
            statement["Resource"] = [r for r in statement["Resource"] if ":thinggroup/" not in r]
    findings = _parliament_findings(name, narrowed, _artifacts_bucket(policies))
    assert findings and {(issue, action) for issue, action, _ in findings} == {("RESOURCE_MISMATCH", "iot:CreateJob")}


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


def test_a_device_writes_its_captures_and_evidence_under_its_own_thing_name_only(policies):
    """The token exchange role's device policy: s3:PutObject on the data bucket's capture/ and evidence/ (evidence
    per crossing, odedge.evidence) under the credentials' own thing name, and on nothing else; no other S3 write."""
    (device,) = [doc for name, doc in policies.items() if "DeviceArtifactAccess" in name]
    writes = [(actions, resources) for actions, resources in _statements(device) if "s3:PutObject" in actions]
    assert len(writes) == 1 and writes[0][0] == ["s3:PutObject"]
    resources = writes[0][1]
    keys = sorted(r.split(":::", 1)[1].split("/", 1)[1] for r in resources)
    assert keys == ["capture/${credentials-iot:ThingName}/*", "evidence/${credentials-iot:ThingName}/*"]
    assert len({r.split(":::", 1)[1].split("/", 1)[0] for r in resources}) == 1  # one bucket: the data bucket
    assert all(r.split(":::", 1)[1].startswith("storagedata") for r in resources), resources
    other = {a for actions, _ in _statements(device) for a in actions if a.startswith("s3:") and a != "s3:PutObject"}
    assert other == {"s3:GetObject", "s3:GetBucketLocation"}  # component downloads only
