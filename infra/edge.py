"""The Greengrass side of the stack: the inference component version (code uploaded with a stable artifact
name) and the policy a device's token-exchange role needs to download the components' artifacts."""

from __future__ import annotations

import tempfile
from pathlib import Path

from aws_cdk import aws_greengrassv2 as greengrass
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from odshared.archives import edge_code_zip
from odshared.greengrass import render_recipe

from .config import AppConfig
from .lambda_bundle import REPO

EDGE = REPO / "edge_component"
COMPONENTS_PREFIX = "components"


def code_archive(folder: Path) -> Path:
    """odedge.zip (the package and its requirements), written where a BucketDeployment can pick it up."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "odedge.zip").write_bytes(edge_code_zip(EDGE))
    return folder


class EdgeComponents(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: AppConfig, artifacts: s3.IBucket, data: s3.IBucket
    ) -> None:
        super().__init__(scope, construct_id)
        self.component_name = f"{config.name_prefix}.ObjectDetection"
        self.model_component_name = f"{config.name_prefix}.ObjectDetection.Model"
        key_prefix = f"{COMPONENTS_PREFIX}/{self.component_name}/{config.component_version}"
        staging = code_archive(Path(tempfile.mkdtemp(prefix="odedge-artifact-")))
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
            (EDGE / "recipes" / "inference.yaml").read_text(),
            {
                "NAME_PREFIX": config.name_prefix,
                "VERSION": config.component_version,
                "ARTIFACT_URI": f"s3://{artifacts.bucket_name}/{COMPONENTS_PREFIX}",
                "UPLOAD_BUCKET": data.bucket_name,
            },
        )
        self.component = greengrass.CfnComponentVersion(self, "InferenceComponent", inline_recipe=recipe)
        self.component.node.add_dependency(upload)  # Greengrass checks the artifact exists at creation
        self.device_policy = iam.ManagedPolicy(
            self,
            "DeviceArtifactAccess",
            statements=[
                iam.PolicyStatement(
                    actions=["s3:GetObject"], resources=[artifacts.arn_for_objects(f"{COMPONENTS_PREFIX}/*")]
                ),
                iam.PolicyStatement(actions=["s3:GetBucketLocation"], resources=[artifacts.bucket_arn]),
                iam.PolicyStatement(actions=["s3:PutObject"], resources=[data.arn_for_objects("capture/*")]),
            ],
            description="Attach to the Greengrass token exchange role: component downloads and capture uploads.",
        )
        if config.device_role_name:
            self.device_policy.attach_to_role(iam.Role.from_role_name(self, "DeviceRole", config.device_role_name))
