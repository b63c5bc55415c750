"""The Greengrass side of the stack: the inference component version (its code uploaded under a folder named by
the code's digest), the IAM policy a device's token-exchange role needs (component downloads, its own capture
and evidence prefixes) and the AWS IoT policy for the component's topics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_greengrassv2 as greengrass
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from odshared.core.archives import edge_code_digest, edge_code_zip
from odshared.fleet.ledger import EVIDENCE_PREFIX
from odshared.greengrass.recipes import component_names, render_recipe

from .config import AppConfig, ConfigError
from .lambda_bundle import REPO

EDGE = REPO / "edge_component"
RELEASES = EDGE / "releases.json"
COMPONENTS_PREFIX = "components"
TOPIC_ROOT = "od"
# the IoT credentials provider resolves this from the x-amzn-iot-thingname header, which the nucleus's token
# exchange service sends with the core device's thing name (aws-greengrass-nucleus IotCloudHelper)
THING_NAME_IN_CREDENTIALS = "${credentials-iot:ThingName}"
THING_NAME_ON_CONNECTION = "${iot:Connection.Thing.ThingName}"
INFERENCE_RECIPE = EDGE / "recipes" / "inference.yaml"
# the data bucket's prefixes a device writes, each under its own thing name: active-learning captures and evidence
# per crossing (odedge.evidence.PREFIX)
DEVICE_PREFIXES = ("capture", EVIDENCE_PREFIX)
# how long the cloud copy of a crossing's evidence lives: past a quarter's reconciliation of counts against stock, and
# no longer, since the pictures are of whoever walked past (docs/device.md, "Evidence per crossing")
EVIDENCE_RETENTION_DAYS = 90


def _recipe_defaults() -> dict[str, Any]:
    import yaml

    defaults: dict[str, Any] = yaml.safe_load(INFERENCE_RECIPE.read_text())["ComponentConfiguration"][
        "DefaultConfiguration"
    ]
    return defaults


def published_topic_leaves() -> list[str]:
    """What the component may publish to AWS IoT Core, from the recipe's accessControl (``od/+/<leaf>``): the one
    home of the list, so the IoT policy follows the recipe."""
    policies = _recipe_defaults()["accessControl"]["aws.greengrass.ipc.mqttproxy"].values()
    resources = [r for p in policies if "aws.greengrass#PublishToIoTCore" in p["operations"] for r in p["resources"]]
    return [r.split("/", 2)[2] for r in resources if r.startswith(f"{TOPIC_ROOT}/+/")]


def recipe_resource_limits() -> dict[str, float | int]:
    """The inference recipe's SystemResourceLimits (memory in KB, cpus), as the deployment's runWith takes them:
    the recipe is their one home, the deploy step applies them."""
    limits = _recipe_defaults()["SystemResourceLimits"]
    return {"memory": int(limits["memory"]), "cpus": float(limits["cpus"])}


def code_archive(folder: Path) -> Path:
    """odedge.zip (the package and its requirements), written where a BucketDeployment can pick it up."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "odedge.zip").write_bytes(edge_code_zip(EDGE))
    return folder


def check_release(version: str, digest: str, releases: Path = RELEASES) -> None:
    """A component version is immutable on devices: code that changed since a version was released needs a new
    version, never the same one with other bytes."""
    recorded = json.loads(releases.read_text()).get(version) if releases.exists() else None
    if recorded is not None and recorded != digest:
        raise ConfigError(
            f"edge-od:componentVersion: the device code changed since {version} was released (code digest "
            f"{digest}, {releases.name} records {recorded}); set a new componentVersion in cdk.json and record "
            f'it in edge_component/{releases.name} as "<version>": "{digest}"'
        )


class EdgeComponents(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: AppConfig, artifacts: s3.IBucket, data: s3.IBucket
    ) -> None:
        super().__init__(scope, construct_id)
        self.component_name, self.model_component_name = component_names(config.name_prefix)
        digest = edge_code_digest(EDGE)
        check_release(config.component_version, digest)
        key_prefix = f"{COMPONENTS_PREFIX}/{self.component_name}/{config.component_version}/{digest}"
        # staged under the cloud assembly (cdk.out), which CDK owns and rewrites; not a stray temporary folder
        staging = code_archive(Path(cdk.Stage.of(self).outdir) / "odedge-staging" / digest)
        upload = s3deploy.BucketDeployment(
            self,
            "CodeArtifact",
            sources=[s3deploy.Source.asset(str(staging))],
            destination_bucket=artifacts,
            destination_key_prefix=key_prefix,
            prune=False,
            retain_on_delete=True,
            extract=True,
        )
        recipe = render_recipe(
            INFERENCE_RECIPE.read_text(),
            {
                "NAME_PREFIX": config.name_prefix,
                "VERSION": config.component_version,
                "ARTIFACT_URI": f"s3://{artifacts.bucket_name}/{COMPONENTS_PREFIX}",
                "CODE_DIGEST": digest,
                "UPLOAD_BUCKET": data.bucket_name,
            },
        )
        self.component = greengrass.CfnComponentVersion(self, "InferenceComponent", inline_recipe=recipe)
        self.component.node.add_dependency(upload)  # Greengrass checks the artifact exists at creation
        data.add_lifecycle_rule(
            id="Evidence", prefix=f"{EVIDENCE_PREFIX}/", expiration=cdk.Duration.days(EVIDENCE_RETENTION_DAYS)
        )
        self.device_policy = iam.ManagedPolicy(
            self,
            "DeviceArtifactAccess",
            statements=[
                iam.PolicyStatement(
                    actions=["s3:GetObject"], resources=[artifacts.arn_for_objects(f"{COMPONENTS_PREFIX}/*")]
                ),
                iam.PolicyStatement(actions=["s3:GetBucketLocation"], resources=[artifacts.bucket_arn]),
                # captures and evidence per crossing (odedge.evidence): each device under its own thing name only
                iam.PolicyStatement(
                    actions=["s3:PutObject"],
                    resources=[
                        data.arn_for_objects(f"{prefix}/{THING_NAME_IN_CREDENTIALS}/*") for prefix in DEVICE_PREFIXES
                    ],
                ),
                # aws.greengrass.LogManager uploads into /aws/greengrass/{GreengrassSystemComponent|UserComponent}/...
                iam.PolicyStatement(
                    actions=["logs:CreateLogGroup", "logs:DescribeLogStreams"],
                    resources=[_greengrass_logs(cdk.Stack.of(self), "*")],
                ),
                iam.PolicyStatement(
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[_greengrass_logs(cdk.Stack.of(self), "*:log-stream:*")],
                ),
            ],
            description="Attach to the Greengrass token exchange role: component downloads, capture and evidence "
            "uploads and the LogManager's log uploads.",
        )
        if config.device_role_name:
            self.device_policy.attach_to_role(iam.Role.from_role_name(self, "DeviceRole", config.device_role_name))
        self.topics_policy = iot.CfnPolicy(
            self, "DeviceTopics", policy_document=topics_policy_document(cdk.Stack.of(self))
        )


def topics_policy_document(stack: cdk.Stack) -> dict:
    """The AWS IoT policy for the component's MQTT traffic, each device limited to its own topics.

    The component's IPC accessControl allows ``od/+/...`` (no recipe-variable interpolation needed on the device);
    this policy is where the thing name is enforced, by AWS IoT Core on the core device's connection.
    """

    def arn(resource: str, name: str) -> str:
        return stack.format_arn(service="iot", resource=resource, resource_name=name)

    own = f"{TOPIC_ROOT}/{THING_NAME_ON_CONNECTION}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "iot:Publish",
                "Resource": [arn("topic", f"{own}/{leaf}") for leaf in published_topic_leaves()],
            },
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": arn("topicfilter", f"{own}/requests")},
            {"Effect": "Allow", "Action": "iot:Receive", "Resource": arn("topic", f"{own}/requests")},
        ],
    }


def _greengrass_logs(stack: cdk.Stack, rest: str) -> str:
    return stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name=f"/aws/greengrass/{rest}",
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )
