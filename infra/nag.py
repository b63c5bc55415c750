"""cdk-nag's AwsSolutions pack inside the app, with a written reason for every acknowledged finding.

Findings that name a resource carry its logical ID; they are computed from the constructs, never written
by hand, so renaming a construct cannot silently orphan an acknowledgment.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

from .functions import python_functions

BUCKET_GRANT_ACTIONS = ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*", "s3:Abort*")


def _arn(stack: cdk.Stack, construct: IConstruct) -> str:
    return f"<{stack.get_logical_id(construct.node.default_child)}.Arn>"


def _concrete_or(value: str, placeholder: str) -> str:
    """cdk-nag writes a token as ``<AWS::Region>`` but a concrete value as itself (the CDK CLI passes one)."""
    return placeholder if cdk.Token.is_unresolved(value) else value


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=f"AwsSolutions-{finding}", reason=reason))


def add_nag_checks(app: cdk.App, stack: cdk.Stack) -> None:
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    storage = stack.node.find_child("Storage")
    data, artifacts = storage.node.find_child("Data"), storage.node.find_child("Artifacts")
    data_arn, artifacts_arn = _arn(stack, data), _arn(stack, artifacts)
    partition = "arn:<AWS::Partition>"
    region = _concrete_or(stack.region, "<AWS::Region>")
    account = _concrete_or(stack.account, "<AWS::AccountId>")
    scoped = f"{region}:{account}"

    _acknowledge_managed(stack)
    _acknowledge_bucket_prefixes(stack, data_arn, artifacts_arn)
    _acknowledge_log_streams(stack, partition, scoped)
    _acknowledge_function_versions(stack)
    _acknowledge_runtime_names(stack, partition, region, account)
    _acknowledge_components(stack, partition, scoped)
    acknowledge_ingestion(stack, data, region, account)
    _acknowledge_end_promotion(stack, partition, scoped)
    acknowledge(
        stack.node.find_child("Fleet").node.find_child("UnregisteredPartitions"),
        "SQS3",
        "It is a dead-letter queue itself: the partition registration's EventBridge target's (an alarm watches it).",
    )


def _acknowledge_managed(stack: cdk.Stack) -> None:
    """Findings on what AWS or the CDK itself provides, which the project cannot scope further."""
    acknowledge(
        stack,
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "The AWS-managed basic execution policy only lets each function write its own CloudWatch logs.",
    )
    acknowledge(
        stack,
        "L1",
        "Python 3.13 is the newest runtime the conversion's onnx wheels (cp313) support; "
        "the CDK BucketDeployment provider's runtime is chosen by aws-cdk-lib.",
    )
    acknowledge(
        stack,
        "IAM5[Resource::*]",
        "X-Ray (PutTraceSegments/PutTelemetryRecords), CloudWatch Logs delivery, SageMaker ListTags, "
        "cloudwatch:PutMetricData, ecr:GetAuthorizationToken, greengrass:CreateDeployment and "
        "greengrass:ListDeployments and cloudwatch:GetMetricData have no resource-level permissions (Service "
        "Authorization Reference).",
    )
    for action in BUCKET_GRANT_ACTIONS:
        acknowledge(
            stack,
            f"IAM5[Action::{action}]",
            "CDK's own BucketDeployment provider grants S3 families by wildcard; the project's grants name "
            "their actions (infra.storage.grant_objects).",
        )


def _acknowledge_bucket_prefixes(stack: cdk.Stack, data_arn: str, artifacts_arn: str) -> None:
    """Each wildcard under a bucket is a prefix some writer owns; the reason names that writer."""
    for prefix, why in (
        ("*", "Ground Truth and training jobs read every prefix of the data bucket they are given"),
        ("pipeline/*", "the validation step writes the label categories and UI template of a run"),
        ("prepared/*", "data preparation writes each run's manifests under its own prefix"),
        ("frames/*", "data preparation writes mirrored copies beside the original frames"),
        ("capture/<credentials-iot:ThingName>/*", "each device uploads captures under its own thing name only"),
        (
            "evidence/<credentials-iot:ThingName>/*",
            "each device uploads its crossings' evidence under its own thing name",
        ),
        ("ingest/*", "ingestion writes each run's manifest parts, contact sheets and merged manifest there"),
        ("ingest/*/failed/*", "a video that succeeds on a re-run clears its own failure record"),
        ("fleet/*", "Firehose writes the fleet's messages under fleet/<table>/YYYY/MM/DD/HH/ with names it chooses"),
    ):
        acknowledge(stack, f"IAM5[Resource::{data_arn}/{prefix}]", f"Data bucket prefix: {why}.")
    for prefix, why in (
        ("*", "the training job reads what it wrote and the conversion reads training output"),
        ("training/*", "SageMaker writes <job>/output/model.tar.gz under training/"),
        ("models/*", "converted packages are written and read under models/<job>/"),
        ("components/*", "component artifacts live under components/<name>/<version>/"),
        ("promotion/groups/*", "each thing group's deployment record is promotion/groups/<group>.json"),
        ("promotion/claims/*", "each promoted version's claim is promotion/claims/<version>.json"),
        ("promotion/locks/*", "one promotion per canary group: its lock is promotion/locks/<group>.json"),
    ):
        acknowledge(stack, f"IAM5[Resource::{artifacts_arn}/{prefix}]", f"Artifacts bucket prefix: {why}.")


def _acknowledge_log_streams(stack: cdk.Stack, partition: str, scoped: str) -> None:
    """Log groups and streams named by Greengrass or IoT rules, not by the stack."""
    for rest, why in (("*", "its log groups"), ("*:log-stream:*", "their log streams")):
        acknowledge(
            stack,
            f"IAM5[Resource::{partition}:logs:{scoped}:log-group:/aws/greengrass/{rest}]",
            f"The device's aws.greengrass.LogManager names {why} under /aws/greengrass/ per component (its docs).",
        )
    for path in (("Fleet", "RuleErrors"), ("FleetMonitoring", "Metrics")):
        group = stack.node.find_child(path[0]).node.find_child(path[1])
        logical = stack.get_logical_id(group.node.default_child)
        acknowledge(
            stack,
            f"IAM5[Resource::{partition}:logs:{scoped}:log-group:<{logical}>:log-stream:*]",
            "An IoT rule's cloudwatchLogs action names its own log streams in the rule's one log group.",
        )


def _acknowledge_function_versions(stack: cdk.Stack) -> None:
    """CDK's LambdaInvoke grant covers versions and aliases by wildcard."""
    for construct in python_functions(stack):
        function = construct.node.find_child("Function")
        acknowledge(
            stack,
            f"IAM5[Resource::{_arn(stack, function)}:*]",
            "Step Functions invokes the function's versions and aliases (CDK's LambdaInvoke grant).",
        )


def _acknowledge_runtime_names(stack: cdk.Stack, partition: str, region: str, account: str) -> None:
    """Resources the services name at run time, so no ARN is known at synth."""
    scoped = f"{region}:{account}"
    for resource, why in (
        (f"{partition}:sagemaker:{scoped}:training-job/*", "training job names are chosen per run at runtime"),
        (f"{partition}:sagemaker:{scoped}:labeling-job/*", "labeling job names are chosen per run at runtime"),
        (
            f"{partition}:events:{scoped}:rule/StepFunctionsGetEventsForSageMaker*",
            "the .sync integrations' managed EventBridge rules (documented names)",
        ),
        (f"{partition}:logs:{scoped}:log-group:/aws/sagemaker/*", "SageMaker names each job's log group"),
        (f"{partition}:logs:{scoped}:log-group:/aws/sagemaker/*:log-stream:*", "and each job's log streams"),
        (f"{partition}:greengrass:{scoped}:deployments:*", "deployment ids are created by the service"),
        (f"{partition}:greengrass:{scoped}:coreDevices:*", "the canary reads each device of its group"),
        (
            f"{partition}:sagemaker:{scoped}:model-package/{stack.node.find_child('ModelRegistry').model_package_group_name}/*",
            "the stack's model package group numbers its versions as they are registered",
        ),
        (f"{partition}:iot:{scoped}:job/*", "Greengrass deployments run as IoT jobs with service-made ids"),
        (f"{partition}:iot:{scoped}:thinggroup/*", "the thing group is chosen per run in the execution input"),
        (
            f"{partition}:s3:::cdk-hnb659fds-assets-{account}-{region}/*",
            "the CDK BucketDeployment provider reads the code artifact from the bootstrap asset bucket",
        ),
    ):
        acknowledge(stack, f"IAM5[Resource::{resource}]", f"Runtime-named resources: {why}.")


def _acknowledge_components(stack: cdk.Stack, partition: str, scoped: str) -> None:
    """Component versions are numbered per run; the grants are scoped to the stack's two components."""
    model_components = stack.node.find_child("Edge").model_component_name
    acknowledge(
        stack,
        f"IAM5[Resource::{partition}:greengrass:{scoped}:components:{model_components}:versions:*]",
        "The publish step reads the versions of the model component only (version numbers are made per run).",
    )
    inference = stack.node.find_child("Edge").component_name
    acknowledge(
        stack,
        f"IAM5[Resource::{partition}:greengrass:{scoped}:components:{inference}:versions:*]",
        "The deploy step reads the inference component's recipe (its HealthInterval, what a canary expects).",
    )


def _acknowledge_end_promotion(stack: cdk.Stack, partition: str, scoped: str) -> None:
    """Execution names are made per start; the grant is scoped to the promotion state machine."""
    machine = stack.node.find_child("Promotion").state_machine
    acknowledge(
        stack.node.find_child("EndPromotion"),
        f"IAM5[Resource::{partition}:states:{scoped}:execution:<{stack.get_logical_id(machine.node.default_child)}.Name>:*]",
        "EndPromotion reads the history of the promotion state machine's executions only (names made per start).",
    )


def acknowledge_ingestion(stack: cdk.Stack, data: IConstruct, region: str, account: str) -> None:
    ingestion = stack.node.find_child("Ingestion")
    machine = ingestion.node.find_child("StateMachine")
    acknowledge(
        machine,
        "SF1",
        "The ingestion map runs one child execution per video (10,000s per run): ERROR-level logs keep every "
        "failure with its cause; ALL would log every item's events at that scale.",
    )
    acknowledge(
        machine,
        f"IAM5[Resource::arn:<AWS::Partition>:s3:::<{stack.get_logical_id(data.node.default_child)}>/*]",
        "CDK's Distributed Map grants its ItemReader/ResultWriter object access on the whole data bucket "
        "(aws-cdk-lib ResultWriter has no prefix-scoped grant); the map writes under ingest/map-results/ only.",
    )
    name = stack.get_logical_id(machine.node.default_child)
    execution = (
        f'arn:<AWS::Partition>:states:{region}:{account}:execution:{{"Fn::Select":[6,{{"Fn::Split":'
        f'[":",{{"Ref":"{name}"}}]}}]}}'
    )
    for suffix in (":*", "/*:*"):
        acknowledge(
            machine,
            f"IAM5[Resource::{execution}{suffix}]",
            "The Distributed Map describes, stops and redrives its own child executions (service-made names).",
        )
