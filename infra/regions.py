"""Per-region AWS-owned resources the workflow names, and the regions where the stack can exist.

The algorithm's accounts come from the SageMaker SDK's image-URI configuration (sagemaker-core's
object-detection.json, read at synth); Ground Truth's from its documentation (REFERENCE.md A1, C3). A region is
accepted when both the built-in Object Detection image and AWS IoT Greengrass V2
(``AWS::GreengrassV2::ComponentVersion``, botocore's greengrassv2 endpoints) exist there; the tests check this table
against botocore's endpoint data and cfn-lint's resource specifications.
"""

from __future__ import annotations

import json

# where the SageMaker SDK keeps its image-URI configuration (sagemaker-core ships it as data files)
IMAGE_URI_CONFIG = "sagemaker/core/image_uri_config/object-detection.json"
ALGORITHM_VERSION = "1"
OTHER_PARTITIONS = ("cn-", "us-gov-", "us-iso")  # the stack is for the aws partition


def _object_detection_accounts() -> dict[str, str]:
    """The built-in Object Detection image's ECR account per region (image object-detection:1), from the SDK's own
    configuration: it follows AWS's updates with the package version. Read as data, from the installed files:
    importing sagemaker.core would take seconds at every synth."""
    from importlib.metadata import PackageNotFoundError, files

    try:
        found = [f for f in files("sagemaker-core") or [] if str(f) == IMAGE_URI_CONFIG]
    except PackageNotFoundError as exc:
        raise RuntimeError("sagemaker-core is not installed: run `make setup`") from exc
    if not found:
        raise RuntimeError(f"sagemaker-core no longer ships {IMAGE_URI_CONFIG}; pin the version that does")
    version = json.loads(found[0].read_text())["versions"][ALGORITHM_VERSION]
    return {
        region: account
        for region, account in sorted(version["registries"].items())
        if not region.startswith(OTHER_PARTITIONS)
    }


OBJECT_DETECTION_ACCOUNTS = _object_detection_accounts()

# commercial regions with AWS IoT Greengrass V2 (botocore's greengrassv2 endpoints; cfn-lint's specifications)
GREENGRASS_V2_REGIONS = frozenset(
    {
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-south-1",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-5",
        "ca-central-1",
        "eu-central-1",
        "eu-south-2",
        "eu-west-1",
        "eu-west-2",
        "us-east-1",
        "us-east-2",
        "us-west-2",
    }
)

# Ground Truth's built-in bounding-box PRE-/ACS- Lambdas live in these accounts (the 12 published regions)
GROUND_TRUTH_LAMBDA_ACCOUNTS = {
    "us-east-1": "432418664414",
    "us-east-2": "266458841044",
    "us-west-2": "081040173940",
    "ca-central-1": "918755190332",
    "eu-west-1": "568282634449",
    "eu-west-2": "487402164563",
    "eu-central-1": "203001061592",
    "ap-northeast-1": "477331159723",
    "ap-northeast-2": "845288260483",
    "ap-south-1": "565803892007",
    "ap-southeast-1": "377565633583",
    "ap-southeast-2": "454466003867",
}

PUBLIC_WORKTEAM_ACCOUNT = "394669845002"

ACCEPTED_REGIONS = tuple(sorted(set(OBJECT_DETECTION_ACCOUNTS) & GREENGRASS_V2_REGIONS))


class RegionError(ValueError):
    """The stack cannot exist in the requested region."""


def missing_services(region: str) -> list[str]:
    """What the stack needs that the region lacks (empty when the region is accepted)."""
    missing = []
    if region not in OBJECT_DETECTION_ACCOUNTS:
        missing.append("the SageMaker built-in Object Detection algorithm (no object-detection image)")
    if region not in GREENGRASS_V2_REGIONS:
        missing.append("AWS IoT Greengrass V2 (no AWS::GreengrassV2::ComponentVersion)")
    return missing


def check_region(region: str) -> None:
    missing = missing_services(region)
    if missing:
        raise RegionError(
            f"region {region} cannot run this stack: it lacks {' and '.join(missing)}; "
            f"deploy to one of {', '.join(ACCEPTED_REGIONS)}"
        )


def ground_truth_available(region: str) -> bool:
    return region in GROUND_TRUTH_LAMBDA_ACCOUNTS
