"""The one stack: storage, the SageMaker role, the Lambdas, the workflow and the Greengrass component."""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from .config import AppConfig
from .edge import EdgeComponents
from .functions import PythonFunction
from .ingestion import FRAMES_PREFIX, INGEST_PREFIX, Ingestion
from .lambda_bundle import REPO
from .regions import (
    ACCEPTED_REGIONS,
    GROUND_TRUTH_LAMBDA_ACCOUNTS,
    OBJECT_DETECTION_ACCOUNTS,
    PUBLIC_WORKTEAM_ACCOUNT,
    check_region,
)
from .storage import Storage, grant_objects
from .workflow import Workflow


class ObjectDetectionStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)
        if not cdk.Token.is_unresolved(self.region):
            check_region(self.region)  # the CDK CLI always passes a concrete region: refuse it at synth
        removal = cdk.RemovalPolicy.DESTROY if config.removal_policy == "destroy" else cdk.RemovalPolicy.RETAIN
        storage = Storage(self, "Storage", removal_policy=removal)
        regions = cdk.CfnMapping(
            self,
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
            self,
            "SupportedRegion",
            assertions=[
                cdk.CfnRuleAssertion(
                    assert_=cdk.Fn.condition_contains(list(ACCEPTED_REGIONS), cdk.Aws.REGION),
                    assert_description="This stack needs the SageMaker Object Detection algorithm and AWS IoT "
                    "Greengrass V2; deploy it to one of " + ", ".join(ACCEPTED_REGIONS),
                )
            ],
        )
        algorithm_image = (
            f"{regions.find_in_map(cdk.Aws.REGION, 'objectDetection')}.dkr.ecr.{cdk.Aws.REGION}."
            f"{cdk.Aws.URL_SUFFIX}/object-detection:1"
        )

        sagemaker_role = iam.Role(
            self,
            "SageMakerExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Ground Truth labeling and Object Detection training jobs",
        )
        grant_objects(storage.data, sagemaker_role, read=True, write=True)  # labeling reads frames, writes output
        grant_objects(storage.artifacts, sagemaker_role, "training/*", read=True, write=True)
        sagemaker_role.add_to_principal_policy(
            iam.PolicyStatement(actions=["cloudwatch:PutMetricData", "ecr:GetAuthorizationToken"], resources=["*"])
        )  # these actions have no resource-level permissions
        # SageMaker jobs log to /aws/sagemaker/TrainingJobs and /aws/sagemaker/LabelingJobs
        sagemaker_logs = self.format_arn(
            service="logs",
            resource="log-group",
            resource_name="/aws/sagemaker/*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        sagemaker_role.add_to_principal_policy(
            iam.PolicyStatement(actions=["logs:CreateLogGroup", "logs:DescribeLogStreams"], resources=[sagemaker_logs])
        )
        sagemaker_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[f"{sagemaker_logs}:log-stream:*"]
            )
        )

        topic = sns.Topic(self, "Notifications", display_name="Object detection pipeline", enforce_ssl=True)
        if config.notification_email:
            topic.add_subscription(subscriptions.EmailSubscription(config.notification_email))

        edge = EdgeComponents(self, "Edge", config=config, artifacts=storage.artifacts, data=storage.data)
        workteam = config.private_workteam or (
            f"arn:{cdk.Aws.PARTITION}:sagemaker:{cdk.Aws.REGION}:{PUBLIC_WORKTEAM_ACCOUNT}:workteam/public-crowd/default"
        )
        defaults = {
            "classes": list(config.classes),
            "hyperparameters": config.hyperparameters,
            "thingGroup": config.thing_group,
            "dataBucket": storage.data.bucket_name,
            "workteamArn": workteam,
            "labelingAvailable": regions.find_in_map(cdk.Aws.REGION, "labelingAvailable"),
            "region": cdk.Aws.REGION,
        }
        functions = {
            "validate": PythonFunction(
                self,
                "ValidateInput",
                folder="validate_input",
                timeout_minutes=1,
                memory_size=256,
                description="Checks the execution input",
                environment={"PIPELINE_DEFAULTS": cdk.Stack.of(self).to_json_string(defaults)},
            ),
            "prepare": PythonFunction(
                self,
                "PrepareTrainingData",
                folder="prepare_training",
                timeout_minutes=15,
                memory_size=2048,
                ephemeral_storage_mib=2048,
                description="Ground Truth output -> training manifests",
            ),
            "convert": PythonFunction(
                self,
                "ConvertModel",
                folder="convert_model",
                timeout_minutes=15,
                memory_size=3008,
                ephemeral_storage_mib=4096,
                description="SageMaker artifact -> MXNet deploy graph + ONNX",
            ),
            "publish": PythonFunction(
                self,
                "PublishModelComponent",
                folder="publish_model_component",
                timeout_minutes=5,
                memory_size=1024,
                ephemeral_storage_mib=2048,
                description="Converted model -> Greengrass model component version",
                environment={"ARTIFACTS_BUCKET": storage.artifacts.bucket_name, "NAME_PREFIX": config.name_prefix},
                extra_files={"model.yaml": REPO / "edge_component/recipes/model.yaml"},
            ),
            "extract": PythonFunction(
                self,
                "ExtractVideo",
                folder="extract_video",
                timeout_minutes=15,
                memory_size=3538,  # 2 vCPUs (1,769 MB each): decode and JPEG encoding overlap, as measured in bench/
                ephemeral_storage_mib=8192,  # the video is downloaded first
                description="Ingestion: one video -> frames, manifest part, contact sheet",
            ),
            "merge": PythonFunction(
                self,
                "MergeManifest",
                folder="merge_manifest",
                timeout_minutes=15,
                memory_size=512,
                description="Ingestion: manifest parts -> one labeling manifest, failed videos listed",
            ),
            "deploy": PythonFunction(
                self,
                "DeployToThingGroup",
                folder="deploy_model",
                timeout_minutes=2,
                memory_size=256,
                description="Merges the model into the thing group's deployment",
                environment={
                    "INFERENCE_COMPONENT": edge.component_name,
                    "INFERENCE_VERSION": config.component_version,
                    "NAME_PREFIX": config.name_prefix,
                    "SYSTEM_RESOURCE_LIMITS": json.dumps({"memory": 1048576, "cpus": 1.5}),
                    "ROLLOUT_MAX_PER_MINUTE": str(config.rollout_max_per_minute),
                    "ROLLOUT_FAILURE_PERCENT": str(config.rollout_failure_threshold_percent),
                },
            ),
        }
        grant_objects(storage.data, functions["extract"].function, read=True)  # videos anywhere in the data bucket
        grant_objects(storage.data, functions["extract"].function, f"{FRAMES_PREFIX}/*", write=True)
        grant_objects(storage.data, functions["extract"].function, f"{INGEST_PREFIX}/*", write=True)
        functions["extract"].function.add_to_role_policy(  # a video that now succeeds clears its failure record
            iam.PolicyStatement(
                actions=["s3:DeleteObject"], resources=[storage.data.arn_for_objects(f"{INGEST_PREFIX}/*/failed/*")]
            )
        )
        grant_objects(storage.data, functions["merge"].function, f"{INGEST_PREFIX}/*", read=True, write=True)
        grant_objects(storage.data, functions["validate"].function, "pipeline/*", write=True)
        grant_objects(storage.data, functions["prepare"].function, read=True)
        grant_objects(storage.data, functions["prepare"].function, "prepared/*", write=True)
        grant_objects(storage.data, functions["prepare"].function, "frames/*", write=True)  # mirrored images
        grant_objects(storage.artifacts, functions["convert"].function, "training/*", read=True)
        grant_objects(storage.artifacts, functions["convert"].function, "models/*", read=True, write=True)
        grant_objects(storage.artifacts, functions["publish"].function, "models/*", read=True)
        grant_objects(storage.artifacts, functions["publish"].function, "components/*", read=True, write=True)
        functions["convert"].function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeTrainingJob"],
                resources=[self.format_arn(service="sagemaker", resource="training-job", resource_name="*")],
            )
        )
        component_arn = self.format_arn(
            service="greengrass",
            resource="components",
            resource_name=edge.model_component_name,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        functions["publish"].function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["greengrass:CreateComponentVersion", "greengrass:ListComponentVersions"],
                resources=[component_arn],
            )
        )
        functions["publish"].function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["greengrass:GetComponent", "greengrass:DescribeComponent"],
                resources=[f"{component_arn}:versions:*"],
            )
        )
        grant_thing_group_deployments(self, functions["deploy"].function)

        ingestion = Ingestion(
            self,
            "Ingestion",
            config=config,
            data=storage.data,
            extract=functions["extract"].function,
            merge=functions["merge"].function,
            topic=topic,
        )
        workflow = Workflow(
            self,
            "Pipeline",
            config=config,
            functions={k: v.function for k, v in functions.items()},
            sagemaker_role=sagemaker_role,
            data_bucket_name=storage.data.bucket_name,
            artifacts_bucket_name=storage.artifacts.bucket_name,
            algorithm_image=algorithm_image,
            ground_truth_lambda_account=regions.find_in_map(cdk.Aws.REGION, "groundTruth"),
            topic=topic,
        )
        self.state_machine = workflow.state_machine
        notify_unhandled_failures(self, [workflow.state_machine, ingestion.state_machine], topic)
        for name, value, description in (
            ("DataBucketName", storage.data.bucket_name, "videos, frames, manifests, labeling output"),
            ("ArtifactsBucketName", storage.artifacts.bucket_name, "training output, models, component artifacts"),
            ("StateMachineArn", workflow.state_machine.state_machine_arn, "start runs with odctl pipeline start"),
            ("IngestionStateMachineArn", ingestion.state_machine.state_machine_arn, "odctl pipeline ingest"),
            ("InferenceComponentName", edge.component_name, "the Greengrass inference component"),
            ("InferenceComponentVersion", config.component_version, "its version"),
            ("ModelComponentName", edge.model_component_name, "the Greengrass model component"),
            ("DevicePolicyArn", edge.device_policy.managed_policy_arn, "attach to the token exchange role"),
            ("DeviceTopicsPolicyName", edge.topics_policy.ref, "AWS IoT policy: attach to the thing group"),
            ("NotificationTopicArn", topic.topic_arn, "pipeline failures"),
        ):
            cdk.CfnOutput(self, name, value=value, description=description)


def grant_thing_group_deployments(stack: cdk.Stack, function: lambda_.IFunction) -> None:
    """What merge_and_deploy calls on a thing group (Service Authorization Reference, AWS IoT Greengrass V2).

    CreateDeployment and ListDeployments take only ``*``; CreateDeployment also needs the IoT job actions it calls
    for the caller (a thing-group deployment is an IoT job on the group). The shadow and DescribeThing actions it
    lists serve deployments to single core devices, which the pipeline never makes.
    """
    function.add_to_role_policy(
        iam.PolicyStatement(actions=["greengrass:CreateDeployment", "greengrass:ListDeployments"], resources=["*"])
    )
    function.add_to_role_policy(
        iam.PolicyStatement(
            actions=["greengrass:GetDeployment"],
            resources=[
                stack.format_arn(
                    service="greengrass",
                    resource="deployments",
                    resource_name="*",
                    arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
        )
    )
    jobs = stack.format_arn(service="iot", resource="job", resource_name="*")
    groups = stack.format_arn(service="iot", resource="thinggroup", resource_name="*")
    function.add_to_role_policy(iam.PolicyStatement(actions=["iot:CreateJob"], resources=[jobs, groups]))
    function.add_to_role_policy(
        iam.PolicyStatement(actions=["iot:DescribeJob", "iot:UpdateJob", "iot:CancelJob"], resources=[jobs])
    )
    function.add_to_role_policy(iam.PolicyStatement(actions=["iot:DescribeThingGroup"], resources=[groups]))


def notify_unhandled_failures(stack: cdk.Stack, machines: list[sfn.IStateMachine], topic: sns.ITopic) -> None:
    """No Catch sees States.Runtime, an execution timeout or an abort: the status change event does."""
    events.Rule(
        stack,
        "PipelineFailed",
        description="Workflow executions that failed, timed out or were aborted",
        event_pattern=events.EventPattern(
            source=["aws.states"],
            detail_type=["Step Functions Execution Status Change"],
            detail={
                "status": ["FAILED", "TIMED_OUT", "ABORTED"],
                "stateMachineArn": [machine.state_machine_arn for machine in machines],
            },
        ),
        targets=[
            targets.SnsTopic(
                topic,
                message=events.RuleTargetInput.from_object(
                    {
                        "execution": events.EventField.from_path("$.detail.executionArn"),
                        "status": events.EventField.from_path("$.detail.status"),
                        "error": events.EventField.from_path("$.detail.error"),
                        "cause": events.EventField.from_path("$.detail.cause"),
                    }
                ),
            )
        ],
    )
