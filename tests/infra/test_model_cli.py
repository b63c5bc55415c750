"""odctl model approve / list / rollback against moto's SageMaker and S3, the Greengrass stand-in, and the deploy
function's settings as the synthesized stack gives them; the versions are registered by the real gate on real
scores of the scene's trained model."""

from __future__ import annotations

import boto3
import pytest

from odctl.model_versions import ModelVersionError, approve, list_models, rollback
from odedge.model import ModelPackage
from odshared.model.calibration import build_evaluation_set
from odshared.model.registry import Candidate, GateSettings, RegistrySettings, register_model, write_deployed
from odshared.model.scoring import score_package
from tests.infra.template_values import Deployment
from tests.lambdas.greengrass_service import GreengrassService

pytestmark = pytest.mark.integration
GROUP = "edgeobjectdetector-models"
MANUAL = GateSettings("manual", map_floor=0.0, max_map_drop=1.0)


@pytest.fixture(scope="module")
def scores(scene):
    evaluation = build_evaluation_set(str(scene["root"] / "prepared/validation.manifest"), "bb", 300, 40)
    scored = score_package(ModelPackage.load(scene["package_int8"]), evaluation, None, 0.02).to_dict()
    return {**scored, "scoresUri": "s3://od-artifacts/models/od-1/scores.json"}


def _register(scores, version: str, bucket: str) -> dict:
    candidate = Candidate(
        scores,
        {"componentName": "com.example.ObjectDetection.Model", "componentVersion": version},
        f"s3://{bucket}/training/od-{version}/output/model.tar.gz",
        f"od-{version}-train",
        f"arn:aws:states:us-east-1:123456789012:execution:Pipeline:od-{version}",
        [f"s3://{bucket}/prepared/od-{version}/validation.manifest"],
        ["blue box", "yellow box"],
        "cameras",
    )
    image = "811284229777.dkr.ecr.us-east-1.amazonaws.com/object-detection:1"
    settings = RegistrySettings(GROUP, image, bucket, MANUAL)
    return register_model(candidate, True, settings, boto3.client("sagemaker"))


@pytest.fixture
def registry(aws, bucket):
    boto3.client("sagemaker").create_model_package_group(ModelPackageGroupName=GROUP)
    return bucket


def test_approve_then_list_then_refusals(registry, scores):
    first = _register(scores, "1.0.0", registry)
    assert first["outcome"] == "pending" and first["version"] == 1
    sagemaker = boto3.client("sagemaker")
    approved = approve(GROUP, 1, sagemaker)
    assert approved["status"] == "Approved" and approved["was"] == "PendingManualApproval"
    described = sagemaker.describe_model_package(ModelPackageName=first["modelPackageArn"])
    assert described["CustomerMetadataProperties"]["componentVersion"] == "1.0.0"  # kept through the update
    with pytest.raises(ModelVersionError, match="version 1 is approved already"):
        approve(GROUP, 1, sagemaker)
    with pytest.raises(ModelVersionError, match="version 7: no such version"):
        approve(GROUP, 7, sagemaker)
    sagemaker.update_model_package(
        ModelPackageArn=first["modelPackageArn"],
        ModelApprovalStatus="Rejected",
        ApprovalDescription="canary failed: camera-07 FPS",
        CustomerMetadataProperties=described["CustomerMetadataProperties"],
    )
    with pytest.raises(
        ModelVersionError, match=r"version 1 was rejected \(canary failed: camera-07 FPS\); pass --override"
    ):
        approve(GROUP, 1, sagemaker)
    from odshared.core import storage
    from odshared.model.promotion import claim_uri

    claim = claim_uri(registry, sagemaker.describe_model_package(ModelPackageName=first["modelPackageArn"]))
    storage.write_text(claim, "{}")  # what its first promotion's plan step left
    overridden = approve(GROUP, 1, sagemaker, override=True, bucket=registry)
    assert overridden["was"] == "Rejected" and overridden["claimReleased"] and not storage.exists(claim)
    (row,) = list_models(GROUP, registry, sagemaker)
    assert row["version"] == 1 and row["status"] == "Approved" and row["deployedTo"] == []
    assert row["mAP"] == pytest.approx(scores["mAP"], abs=1e-6) and row["component"] == "1.0.0"


def test_rollback_redeploys_the_version_before(registry, scores, synthesized):
    sagemaker = boto3.client("sagemaker")
    with pytest.raises(ModelVersionError, match="no promotion has reached it"):
        rollback("cameras", registry, "DeployToThingGroup", sagemaker, None, None)
    versions = [_register(scores, v, registry) for v in ("1.0.0", "1.0.1")]
    for version in versions:
        approve(GROUP, version["version"], sagemaker)
    records = [
        {"modelPackageArn": v["modelPackageArn"], "version": v["version"], "scores": {"mAP": v["mAP"]}}
        for v in versions
    ]
    for record, component in zip(records, ("1.0.0", "1.0.1"), strict=True):
        component = {"componentName": "com.example.ObjectDetection.Model", "componentVersion": component}
        write_deployed(registry, "cameras", {**record, "component": component})
    stack, template = synthesized
    function = stack.node.find_child("DeployToThingGroup").function
    props = template["Resources"][stack.get_logical_id(function.node.default_child)]["Properties"]
    lambda_client = boto3.client("lambda")
    role = boto3.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lambda_client.create_function(
        FunctionName="DeployToThingGroup",
        Runtime=props["Runtime"],
        Role=role,
        Handler=props["Handler"],
        Code={"ZipFile": b"PK\x05\x06" + b"\0" * 18},
        Environment={"Variables": Deployment(template).resolve(props["Environment"]["Variables"])},
    )
    greengrass = GreengrassService()
    try:
        client = boto3.client("greengrassv2", endpoint_url=greengrass.endpoint)
        done = rollback("cameras", registry, "DeployToThingGroup", sagemaker, client, lambda_client, "camera-07 hangs")
        assert done == {
            "thingGroup": "cameras",
            "version": 1,
            "from": 2,
            "deploymentId": done["deploymentId"],
            "changed": True,
        }
        bad = sagemaker.describe_model_package(ModelPackageName=versions[1]["modelPackageArn"])
        assert bad["ModelApprovalStatus"] == "Rejected"
        assert bad["ApprovalDescription"] == "rolled back from cameras: camera-07 hangs"
        again = rollback("cameras", registry, "DeployToThingGroup", sagemaker, client, lambda_client)
        assert again["changed"] is False and "version 2 was rolled back already: cameras runs 1" in again["why"]
        assert len(greengrass.deployments) == 1  # the second rollback deployed nothing
        components = greengrass.deployments[done["deploymentId"]]["components"]
        assert components["com.example.ObjectDetection.Model"]["componentVersion"] == "1.0.0"
        assert "aws.greengrass.DiskSpooler" in components  # the deploy step's own settings, from the function
        (first, second) = list_models(GROUP, registry, sagemaker)
        assert first["deployedTo"] == ["cameras"] and second["deployedTo"] == []
    finally:
        greengrass.close()
