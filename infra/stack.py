"""The one stack, composed: storage, where training runs, the notification topic, the Greengrass side, the
pipeline's functions, and the two workflows (ingestion, and labeling -> training -> deployment)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from odshared.fleet.canary import NO_CANARY

from .canary_group import CanaryGroup
from .config import AppConfig
from .edge import EdgeComponents
from .fleet_data import FleetData
from .fleet_monitoring import FleetMonitoring
from .ingestion import Ingestion
from .pipeline_functions import Registry, pipeline_functions
from .promotion import Promotion, model_package_group
from .regions import PUBLIC_WORKTEAM_ACCOUNT, check_region
from .state_machines import notify_unhandled_failures
from .storage import Storage
from .training import algorithm_image, region_map, sagemaker_role
from .workflow import Workflow


class ObjectDetectionStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)
        if not cdk.Token.is_unresolved(self.region):
            check_region(self.region)  # the CDK CLI always passes a concrete region: refuse it at synth
        removal = cdk.RemovalPolicy.DESTROY if config.removal_policy == "destroy" else cdk.RemovalPolicy.RETAIN
        storage = Storage(self, "Storage", removal_policy=removal)
        regions = region_map(self)
        role = sagemaker_role(self, storage)
        topic = sns.Topic(self, "Notifications", display_name="Object detection pipeline", enforce_ssl=True)
        if config.notification_email:
            topic.add_subscription(subscriptions.EmailSubscription(config.notification_email))
        edge = EdgeComponents(self, "Edge", config=config, artifacts=storage.artifacts, data=storage.data)
        fleet = FleetData(self, "Fleet", data=storage.data, retention_days=config.fleet_retention_days)
        monitoring = FleetMonitoring(
            self,
            "FleetMonitoring",
            alarms=config.fleet_alarms,
            topic=topic,
            errors=fleet.errors,
            streams=fleet.streams,
            registration=fleet.partitions.function,
            unregistered=fleet.unregistered,
            refused=fleet.refused,
        )
        registry = model_package_group(self, config.stack_name)
        group_name = str(registry.model_package_group_name)
        functions = pipeline_functions(
            self,
            config,
            storage,
            edge,
            self._execution_defaults(config, storage, regions),
            Registry(group_name, algorithm_image(regions)),
        )
        ingestion = Ingestion(
            self,
            "Ingestion",
            config=config,
            data=storage.data,
            extract=functions["extract"],
            merge=functions["merge"],
            topic=topic,
        )
        workflow = Workflow(
            self,
            "Pipeline",
            config=config,
            functions=functions,
            sagemaker_role=role,
            data_bucket_name=storage.data.bucket_name,
            artifacts_bucket_name=storage.artifacts.bucket_name,
            algorithm_image=algorithm_image(regions),
            ground_truth_lambda_account=regions.find_in_map(cdk.Aws.REGION, "groundTruth"),
            topic=topic,
        )
        self.state_machine = workflow.state_machine
        promotion = Promotion(self, "Promotion", functions=functions, group_name=group_name, topic=topic)
        notify_unhandled_failures(
            self, [workflow.state_machine, ingestion.state_machine, promotion.state_machine], topic
        )
        canary = self._canary_group(config)
        for name, value, description in (
            ("CanaryThingGroup", canary, "where an approved model soaks first (odctl model approve)"),
            ("DataBucketName", storage.data.bucket_name, "videos, frames, manifests, labeling output"),
            ("ArtifactsBucketName", storage.artifacts.bucket_name, "training output, models, component artifacts"),
            ("StateMachineArn", workflow.state_machine.state_machine_arn, "start runs with odctl pipeline start"),
            ("PromotionStateMachineArn", promotion.state_machine.state_machine_arn, "approved model -> devices"),
            ("ModelPackageGroupName", group_name, "the Model Registry group (odctl model list)"),
            ("DeployFunctionName", functions["deploy"].function_name, "odctl model rollback deploys through it"),
            ("IngestionStateMachineArn", ingestion.state_machine.state_machine_arn, "odctl pipeline ingest"),
            ("InferenceComponentName", edge.component_name, "the Greengrass inference component"),
            ("InferenceComponentVersion", config.component_version, "its version"),
            ("ModelComponentName", edge.model_component_name, "the Greengrass model component"),
            ("DevicePolicyArn", edge.device_policy.managed_policy_arn, "attach to the token exchange role"),
            ("DeviceTopicsPolicyName", edge.topics_policy.ref, "AWS IoT policy: attach to the thing group"),
            ("NotificationTopicArn", topic.topic_arn, "pipeline failures"),
            ("FleetWorkGroup", fleet.workgroup.ref, "Athena workgroup of the counts ledger (odctl counts)"),
            ("FleetDatabase", fleet.database_name, "Glue database of the counts ledger"),
            ("FleetDashboard", monitoring.dashboard.dashboard_name, "CloudWatch dashboard of the fleet"),
        ):
            cdk.CfnOutput(self, name, value=value, description=description)

    def _canary_group(self, config: AppConfig) -> str:
        """The canary group made or found (its name); with none configured, a warning at every synth and deploy, as
        every promotion notice says it, and ``NO_CANARY``."""
        group = config.promotion_settings.canary_thing_group
        if group:
            CanaryGroup(self, "CanaryGroup", group_name=group)
            return group
        cdk.Annotations.of(self).add_warning_v2(
            "edge-od:noCanary",
            "edge-od:promotion canaryThingGroup is empty: approved models go straight to the fleet group "
            f"({config.thing_group or 'the one each run names'}), with no canary soak (docs/promotion.md, The canary)",
        )
        return NO_CANARY

    @staticmethod
    def _execution_defaults(config: AppConfig, storage: Storage, regions: cdk.CfnMapping) -> dict[str, object]:
        """What ValidateInput fills in where an execution's input leaves a value out."""
        workteam = config.private_workteam or (
            f"arn:{cdk.Aws.PARTITION}:sagemaker:{cdk.Aws.REGION}:{PUBLIC_WORKTEAM_ACCOUNT}:workteam/public-crowd/default"
        )
        return {
            "classes": list(config.classes),
            "hyperparameters": config.hyperparameters,
            "thingGroup": config.thing_group,
            "evaluationImages": config.promotion_settings.evaluation_images,
            "dataBucket": storage.data.bucket_name,
            "workteamArn": workteam,
            "labelingAvailable": regions.find_in_map(cdk.Aws.REGION, "labelingAvailable"),
            "region": cdk.Aws.REGION,
        }
