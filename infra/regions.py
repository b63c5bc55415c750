"""Per-region AWS-owned resources the workflow names, and the regions where the stack can exist.

The accounts come from the SageMaker SDK v3 image map (object-detection.json) and the Ground Truth documentation
(REFERENCE.md A1, C3). A region is accepted when both the built-in Object Detection image and AWS IoT Greengrass V2
(``AWS::GreengrassV2::ComponentVersion``, botocore's greengrassv2 endpoints) exist there; the tests check this table
against botocore's endpoint data and cfn-lint's resource specifications.
"""

from __future__ import annotations

# the built-in Object Detection algorithm's ECR registry account per region (image object-detection:1)
OBJECT_DETECTION_ACCOUNTS = {
    "af-south-1": "455444449433",
    "ap-east-1": "286214385809",
    "ap-northeast-1": "501404015308",
    "ap-northeast-2": "306986355934",
    "ap-northeast-3": "867004704886",
    "ap-south-1": "991648021394",
    "ap-south-2": "628508329040",
    "ap-southeast-1": "475088953585",
    "ap-southeast-2": "544295431143",
    "ap-southeast-3": "951798379941",
    "ap-southeast-4": "106583098589",
    "ca-central-1": "469771592824",
    "ca-west-1": "190319476487",
    "eu-central-1": "813361260812",
    "eu-central-2": "680994064768",
    "eu-north-1": "669576153137",
    "eu-south-1": "257386234256",
    "eu-south-2": "104374241257",
    "eu-west-1": "685385470294",
    "eu-west-2": "644912444149",
    "eu-west-3": "749696950732",
    "il-central-1": "898809789911",
    "me-central-1": "272398656194",
    "me-south-1": "249704162688",
    "sa-east-1": "855470959533",
    "us-east-1": "811284229777",
    "us-east-2": "825641698319",
    "us-west-1": "632365934929",
    "us-west-2": "433757028032",
}

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
