"""The pipeline's Lambda functions: their sizes, settings and exactly the permissions each one's code uses.

Built into the stack's own scope, so the logical IDs of deployed stacks do not change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_

from .config import AppConfig
from .edge import EdgeComponents, recipe_resource_limits
from .functions import PythonFunction
from .ingestion import FRAMES_PREFIX, INGEST_PREFIX
from .lambda_bundle import REPO
from .storage import Storage, grant_objects


@dataclass(frozen=True)
class FunctionSpec:
    construct_id: str
    folder: str
    description: str
    timeout_minutes: int
    memory_size: int
    ephemeral_storage_mib: int = 512


SPECS = {
    "validate": FunctionSpec("ValidateInput", "validate_input", "Checks the execution input", 1, 256),
    "prepare": FunctionSpec(
        "PrepareTrainingData", "prepare_training", "Ground Truth output -> training manifests", 15, 2048, 2048
    ),
    "calibrate": FunctionSpec(
        "PrepareCalibration",
        "prepare_calibration",
        "Validation frames -> INT8 calibration frames and the frames the model is scored on",
        10,
        2048,
        2048,
    ),
    "convert": FunctionSpec(
        "ConvertModel", "convert_model", "SageMaker artifact -> MXNet deploy graph, ONNX FP32 and INT8", 15, 3008, 4096
    ),
    "publish": FunctionSpec(
        "PublishModelComponent",
        "publish_model_component",
        "Converted model -> Greengrass model component version",
        5,
        1024,
        2048,
    ),
    # 2 vCPUs (1,769 MB each): decode and JPEG encoding overlap, as measured in bench/; the video is downloaded first
    "extract": FunctionSpec(
        "ExtractVideo", "extract_video", "Ingestion: one video -> frames, manifest part, contact sheet", 15, 3538, 8192
    ),
    "merge": FunctionSpec(
        "MergeManifest",
        "merge_manifest",
        "Ingestion: manifest parts -> one labeling manifest, failed videos listed",
        15,
        512,
    ),
    "deploy": FunctionSpec(
        "DeployToThingGroup", "deploy_model", "Merges the model into the thing group's deployment", 2, 256
    ),
    # ~1.7 vCPUs: the ResNet-50 SSD at 512, FP32 and INT8, scored 62 frames in 55 s on 2 cores (the rehearsal's
    # ScoreModel log), so the default 200 frames take about 3 minutes of the 15
    "score": FunctionSpec(
        "ScoreModel", "score_model", "Converted model -> FP32 and INT8 mAP on the validation frames", 15, 3008, 2048
    ),
    "register": FunctionSpec(
        "RegisterModel", "register_model", "The promotion gate: scores -> a Model Registry version", 1, 256
    ),
    "plan": FunctionSpec("PlanPromotion", "plan_promotion", "An approved version -> what to deploy where", 1, 256),
    "check": FunctionSpec("CheckCanary", "check_canary", "The canary devices' metrics after the soak", 2, 256),
    "record": FunctionSpec(
        "RecordPromotion", "record_promotion", "Deployment records, or the version rejected after a rollback", 1, 256
    ),
    "end": FunctionSpec(
        "EndPromotion", "end_promotion", "A stopped or failed promotion: the canary put back, the group freed", 2, 256
    ),
}


def pipeline_functions(
    stack: cdk.Stack,
    config: AppConfig,
    storage: Storage,
    edge: EdgeComponents,
    defaults: dict[str, Any],
    registry: Registry,
) -> dict[str, lambda_.IFunction]:
    """Every function of the workflows, with its grants; ``defaults`` fill the execution input's gaps."""
    promotion = json.dumps(config.promotion)
    artifacts = storage.artifacts.bucket_name
    environments = {
        "score": {"INT8_MAX_MAP_DROP": str(config.promotion_settings.int8_max_map_drop)},
        "register": {
            "MODEL_PACKAGE_GROUP": registry.group_name,
            "ALGORITHM_IMAGE": registry.algorithm_image,
            "ARTIFACTS_BUCKET": artifacts,
            "PROMOTION": promotion,
            "FLEET_THING_GROUP": config.thing_group,
        },
        "plan": {"PROMOTION": promotion, "ARTIFACTS_BUCKET": artifacts, "FLEET_THING_GROUP": config.thing_group},
        "check": {"PROMOTION": promotion},
        "record": {"ARTIFACTS_BUCKET": artifacts},
        "validate": {"PIPELINE_DEFAULTS": stack.to_json_string(defaults)},
        "publish": {"ARTIFACTS_BUCKET": storage.artifacts.bucket_name, "NAME_PREFIX": config.name_prefix},
        "deploy": {
            "INFERENCE_COMPONENT": edge.component_name,
            "INFERENCE_VERSION": config.component_version,
            "NAME_PREFIX": config.name_prefix,
            "SYSTEM_RESOURCE_LIMITS": json.dumps(recipe_resource_limits()),
            "ROLLOUT_MAX_PER_MINUTE": str(config.rollout_max_per_minute),
            "ROLLOUT_FAILURE_PERCENT": str(config.rollout_failure_threshold_percent),
            "SPOOLER": json.dumps(config.spooler),
            "LOGS": json.dumps(config.logs),
        },
    }
    environments["end"] = {**environments["deploy"], "ARTIFACTS_BUCKET": artifacts}
    extra_files = {"publish": {"model.yaml": REPO / "edge_component/recipes/model.yaml"}}
    functions: dict[str, lambda_.IFunction] = {
        key: PythonFunction(
            stack,
            spec.construct_id,
            folder=spec.folder,
            description=spec.description,
            timeout_minutes=spec.timeout_minutes,
            memory_size=spec.memory_size,
            ephemeral_storage_mib=spec.ephemeral_storage_mib,
            environment=environments.get(key),
            extra_files=extra_files.get(key),
        ).function
        for key, spec in SPECS.items()
    }
    _grant_data(storage, functions)
    _grant_models(stack, storage, edge, functions)
    _grant_promotion(stack, storage, registry, functions)
    for key in ("deploy", "end"):
        grant_thing_group_deployments(stack, functions[key])
    return functions


@dataclass(frozen=True)
class Registry:
    """The stack's model package group and the image its versions name (the built-in algorithm's)."""

    group_name: str
    algorithm_image: str


def _grant_promotion(
    stack: cdk.Stack, storage: Storage, registry: Registry, functions: dict[str, lambda_.IFunction]
) -> None:
    artifacts = storage.artifacts
    versions = stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{registry.group_name}/*")
    group = stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=registry.group_name)
    functions["register"].add_to_role_policy(
        iam.PolicyStatement(actions=["sagemaker:CreateModelPackage"], resources=[group, versions])
    )
    for key, actions in (
        ("register", ["sagemaker:UpdateModelPackage", "sagemaker:DescribeModelPackage"]),
        ("plan", ["sagemaker:DescribeModelPackage"]),
        ("record", ["sagemaker:UpdateModelPackage", "sagemaker:DescribeModelPackage"]),
        ("end", ["sagemaker:UpdateModelPackage", "sagemaker:DescribeModelPackage"]),
    ):
        functions[key].add_to_role_policy(iam.PolicyStatement(actions=actions, resources=[versions]))
    grant_objects(artifacts, functions["register"], "promotion/groups/*", read=True)
    grant_objects(artifacts, functions["plan"], "promotion/claims/*", read=True, write=True)
    grant_objects(artifacts, functions["plan"], "promotion/locks/*", read=True, write=True)
    grant_objects(artifacts, functions["record"], "promotion/groups/*", read=True, write=True)
    for key in ("record", "end"):  # the lock released at the end of a promotion
        grant_objects(artifacts, functions[key], "promotion/locks/*", read=True)
        functions[key].add_to_role_policy(
            iam.PolicyStatement(actions=["s3:DeleteObject"], resources=[artifacts.arn_for_objects("promotion/locks/*")])
        )
    grant_objects(storage.data, functions["score"], "prepared/*", read=True)  # the evaluation frames
    grant_objects(artifacts, functions["score"], "models/*", read=True, write=True)  # model.json, scores.json
    functions["score"].add_to_role_policy(
        iam.PolicyStatement(
            actions=["sagemaker:DescribeTrainingJob"],
            resources=[stack.format_arn(service="sagemaker", resource="training-job", resource_name="*")],
        )
    )
    functions["check"].add_to_role_policy(
        iam.PolicyStatement(
            actions=["iot:ListThingsInThingGroup"],
            resources=[stack.format_arn(service="iot", resource="thinggroup", resource_name="*")],
        )
    )
    # what each canary device applied and runs (Service Authorization Reference, AWS IoT Greengrass V2: coreDevices)
    core_devices = stack.format_arn(
        service="greengrass", resource="coreDevices", resource_name="*", arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
    )
    functions["check"].add_to_role_policy(
        iam.PolicyStatement(
            actions=["greengrass:ListEffectiveDeployments", "greengrass:ListInstalledComponents"],
            resources=[core_devices],
        )
    )
    # GetMetricData takes no resource (Service Authorization Reference, CloudWatch)
    functions["check"].add_to_role_policy(iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"]))


def _grant_data(storage: Storage, functions: dict[str, lambda_.IFunction]) -> None:
    data = storage.data
    grant_objects(data, functions["extract"], read=True)  # videos anywhere in the data bucket
    grant_objects(data, functions["extract"], f"{FRAMES_PREFIX}/*", write=True)
    grant_objects(data, functions["extract"], f"{INGEST_PREFIX}/*", write=True)
    functions["extract"].add_to_role_policy(  # a video that now succeeds clears its failure record
        iam.PolicyStatement(
            actions=["s3:DeleteObject"], resources=[data.arn_for_objects(f"{INGEST_PREFIX}/*/failed/*")]
        )
    )
    grant_objects(data, functions["merge"], f"{INGEST_PREFIX}/*", read=True, write=True)
    grant_objects(data, functions["validate"], "pipeline/*", write=True)
    grant_objects(data, functions["prepare"], read=True)
    grant_objects(data, functions["prepare"], "prepared/*", write=True)
    grant_objects(data, functions["prepare"], "frames/*", write=True)  # mirrored images
    grant_objects(data, functions["calibrate"], read=True)  # the manifests' frames, wherever they point
    grant_objects(data, functions["calibrate"], "prepared/*", write=True)


def _grant_models(
    stack: cdk.Stack, storage: Storage, edge: EdgeComponents, functions: dict[str, lambda_.IFunction]
) -> None:
    artifacts = storage.artifacts
    grant_objects(artifacts, functions["convert"], "training/*", read=True)
    grant_objects(artifacts, functions["convert"], "models/*", read=True, write=True)
    grant_objects(storage.data, functions["convert"], "prepared/*", read=True)  # the calibration frames
    grant_objects(artifacts, functions["publish"], "models/*", read=True)
    grant_objects(artifacts, functions["publish"], "components/*", read=True, write=True)
    functions["convert"].add_to_role_policy(
        iam.PolicyStatement(
            actions=["sagemaker:DescribeTrainingJob"],
            resources=[stack.format_arn(service="sagemaker", resource="training-job", resource_name="*")],
        )
    )
    component_arn = stack.format_arn(
        service="greengrass",
        resource="components",
        resource_name=edge.model_component_name,
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )
    functions["publish"].add_to_role_policy(
        iam.PolicyStatement(
            actions=["greengrass:CreateComponentVersion", "greengrass:ListComponentVersions"],
            resources=[component_arn],
        )
    )
    functions["publish"].add_to_role_policy(
        iam.PolicyStatement(
            actions=["greengrass:GetComponent", "greengrass:DescribeComponent"],
            resources=[f"{component_arn}:versions:*"],
        )
    )
    inference_arn = stack.format_arn(
        service="greengrass",
        resource="components",
        resource_name=edge.component_name,
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )
    functions["deploy"].add_to_role_policy(  # the recipe's HealthInterval: how often a canary device reports
        iam.PolicyStatement(actions=["greengrass:GetComponent"], resources=[f"{inference_arn}:versions:*"])
    )


def grant_thing_group_deployments(stack: cdk.Stack, function: lambda_.IFunction) -> None:
    """What merge_and_deploy calls on a thing group (Service Authorization Reference, AWS IoT Greengrass V2).

    CreateDeployment and ListDeployments take only ``*``; CreateDeployment also needs the IoT job actions it calls
    for the caller (a thing-group deployment is an IoT job on the group). The shadow and DescribeThing actions it
    lists serve deployments to single core devices, which the pipeline never makes.
    """
    function.add_to_role_policy(
        iam.PolicyStatement(actions=["greengrass:CreateDeployment", "greengrass:ListDeployments"], resources=["*"])
    )
    deployments = stack.format_arn(
        service="greengrass", resource="deployments", resource_name="*", arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
    )
    function.add_to_role_policy(iam.PolicyStatement(actions=["greengrass:GetDeployment"], resources=[deployments]))
    jobs = stack.format_arn(service="iot", resource="job", resource_name="*")
    groups = stack.format_arn(service="iot", resource="thinggroup", resource_name="*")
    function.add_to_role_policy(iam.PolicyStatement(actions=["iot:CreateJob"], resources=[jobs, groups]))
    function.add_to_role_policy(
        iam.PolicyStatement(actions=["iot:DescribeJob", "iot:UpdateJob", "iot:CancelJob"], resources=[jobs])
    )
    function.add_to_role_policy(iam.PolicyStatement(actions=["iot:DescribeThingGroup"], resources=[groups]))
