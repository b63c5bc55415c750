"""Where training runs: the accepted regions' map (algorithm image account, Ground Truth), the template's region
rule, the Object Detection image, and the role SageMaker's labeling and training jobs assume.

Built into the stack's own scope (not a nested construct), so the logical IDs of deployed stacks do not change.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from .regions import ACCEPTED_REGIONS, GROUND_TRUTH_LAMBDA_ACCOUNTS, OBJECT_DETECTION_ACCOUNTS
from .storage import Storage, grant_objects


def region_map(stack: cdk.Stack) -> cdk.CfnMapping:
    """Per accepted region: the algorithm's ECR account, Ground Truth's Lambda account, whether labeling runs."""
    mapping = cdk.CfnMapping(
        stack,
        "RegionMap",
        mapping={
            region: {
                "objectDetection": OBJECT_DETECTION_ACCOUNTS[region],
                # outside Ground Truth's regions the labeling branch is refused by ValidateInput
                "groundTruth": GROUND_TRUTH_LAMBDA_ACCOUNTS.get(region, "none"),
                "labelingAvailable": "true" if region in GROUND_TRUTH_LAMBDA_ACCOUNTS else "false",
            }
            for region in ACCEPTED_REGIONS
        },
    )
    cdk.CfnRule(  # an environment-agnostic template deployed elsewhere fails before anything is created
        stack,
        "SupportedRegion",
        assertions=[
            cdk.CfnRuleAssertion(
                assert_=cdk.Fn.condition_contains(list(ACCEPTED_REGIONS), cdk.Aws.REGION),
                assert_description="This stack needs the SageMaker Object Detection algorithm and AWS IoT "
                "Greengrass V2; deploy it to one of " + ", ".join(ACCEPTED_REGIONS),
            )
        ],
    )
    return mapping


def algorithm_image(regions: cdk.CfnMapping) -> str:
    """The built-in Object Detection algorithm's image in the deploying region."""
    return (
        f"{regions.find_in_map(cdk.Aws.REGION, 'objectDetection')}.dkr.ecr.{cdk.Aws.REGION}."
        f"{cdk.Aws.URL_SUFFIX}/object-detection:1"
    )


def sagemaker_role(stack: cdk.Stack, storage: Storage) -> iam.Role:
    """Labeling jobs read frames and write their output; training jobs read data and write training/."""
    role = iam.Role(
        stack,
        "SageMakerExecutionRole",
        assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
        description="Ground Truth labeling and Object Detection training jobs",
    )
    grant_objects(storage.data, role, read=True, write=True)
    grant_objects(storage.artifacts, role, "training/*", read=True, write=True)
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["cloudwatch:PutMetricData", "ecr:GetAuthorizationToken"], resources=["*"])
    )  # these actions have no resource-level permissions
    # SageMaker jobs log to /aws/sagemaker/TrainingJobs and /aws/sagemaker/LabelingJobs
    logs = stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name="/aws/sagemaker/*",
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["logs:CreateLogGroup", "logs:DescribeLogStreams"], resources=[logs])
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[f"{logs}:log-stream:*"])
    )
    return role
