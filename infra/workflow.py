"""The Step Functions workflow (JSONPath): validate -> optional Ground Truth labeling -> prepare data ->
built-in Object Detection training -> convert -> score -> publish the model component -> the promotion gate
registers it (an approved version is deployed by infra/promotion.py).

Every task retries throttling and transient errors with backoff, and catches everything else into
Notify (SNS) -> Fail with the cause. The SageMaker tasks are CustomStates with ``.sync`` and hand-written IAM:
CDK's SageMakerCreateTrainingJob cannot take the hyperparameter map from the state (it is computed by the
data-preparation step), and there is no L2 task for CreateLabelingJob.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from .config import AppConfig
from .state_machines import guard, guarded_invoke, logged_state_machine, notify_then_fail

SAGEMAKER_TRANSIENT = ["SageMaker.AmazonSageMakerException", "SageMaker.ThrottlingException"]


class Workflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        functions: dict[str, lambda_.IFunction],
        sagemaker_role: iam.IRole,
        data_bucket_name: str,
        artifacts_bucket_name: str,
        algorithm_image: str,
        ground_truth_lambda_account: str,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.functions = functions
        self.notify = notify_then_fail(self, topic, "Object detection pipeline failed", "PipelineFailed")
        validate = self._invoke("ValidateInput", "validate", {"input.$": "$"}, "$.config")
        labeling = self._labeling(config, sagemaker_role, data_bucket_name, ground_truth_lambda_account)
        labeled_manifests = sfn.Pass(
            self,
            "UseLabelingOutput",
            parameters={"manifests.$": "States.Array($.labeling.outputManifest)"},
            result_path="$.labeled",
        )
        given_manifests = sfn.Pass(
            self, "UseGivenManifests", parameters={"manifests.$": "$.config.value.manifests"}, result_path="$.labeled"
        )
        prepare = self._invoke(
            "PrepareTrainingData",
            "prepare",
            {
                "manifests.$": "$.labeled.manifests",
                "output_prefix.$": "$.config.value.preparedPrefix",
                "classes.$": "$.config.value.classes",
                "label_attribute": config.label_attribute,
                "preparation.$": "$.config.value.preparation",
                "hyperparameters.$": "$.config.value.hyperparameters",
            },
            "$.prepared",
        )
        calibration = self._invoke(
            "PrepareCalibration",
            "calibrate",
            {
                "validation_manifest.$": "$.prepared.value.validation_manifest",
                "train_manifest.$": "$.prepared.value.train_manifest",
                "hyperparameters.$": "$.prepared.value.hyperparameters",
                # the validation frames the converted model is scored on, preprocessed here (OpenCV is here)
                "label_attribute": config.label_attribute,
                "evaluation_images.$": "$.config.value.evaluationImages",
            },
            "$.calibration",
            minutes=10,
        )
        training = self._training(config, sagemaker_role, algorithm_image, artifacts_bucket_name)
        labeling.next(labeled_manifests)
        labeled_manifests.next(prepare)
        given_manifests.next(prepare)
        prepare.next(calibration).next(training).next(self._model_to_registry(artifacts_bucket_name, topic))
        definition = validate.next(
            sfn.Choice(self, "LabelingRequested?")
            .when(sfn.Condition.boolean_equals("$.config.value.labelingRequested", True), labeling)
            .otherwise(given_manifests)
        )
        self.state_machine, self.log_group = logged_state_machine(
            self,
            definition,
            cdk.Duration.hours(config.labeling_max_hours + config.training_max_hours + 6),
            sfn.LogLevel.ALL,
            execution_data=True,
        )
        self._grant_sagemaker(sagemaker_role)

    def _invoke(self, name: str, function: str, payload: dict, result: str, minutes: int = 15) -> tasks.LambdaInvoke:
        return guarded_invoke(self, name, self.functions[function], payload, result, self.notify, minutes)

    def _sagemaker_job(
        self, job: str, hours: float, parameters: dict, selector: dict, result_path: str
    ) -> sfn.CustomState:
        """SageMaker's Create``job`` run to its end (``.sync``): ``hours`` of work and an hour more for its queue
        and start-up, then the state times out."""
        return sfn.CustomState(
            self,
            f"Create{job}",
            state_json={
                "Type": "Task",
                "Resource": f"arn:{cdk.Aws.PARTITION}:states:::sagemaker:create{job}.sync",
                "TimeoutSeconds": int(hours * 3600) + 3600,
                "Parameters": parameters,
                "ResultSelector": selector,
                "ResultPath": result_path,
            },
        )

    def _labeling(
        self, config: AppConfig, sagemaker_role: iam.IRole, data_bucket_name: str, ground_truth_lambda_account: str
    ) -> sfn.CustomState:
        """Ground Truth bounding-box labeling of the input manifest (existing Ground Truth customers)."""
        labeling = self._sagemaker_job(
            "LabelingJob",
            config.labeling_max_hours,
            {
                "LabelingJobName.$": "$.config.value.labelingJobName",
                "LabelAttributeName": config.label_attribute,
                "InputConfig": {
                    "DataSource": {"S3DataSource": {"ManifestS3Uri.$": "$.config.value.labelingManifest"}},
                    "DataAttributes": {
                        "ContentClassifiers": ["FreeOfPersonallyIdentifiableInformation", "FreeOfAdultContent"]
                    },
                },
                "OutputConfig": {"S3OutputPath": f"s3://{data_bucket_name}/labels/"},
                "RoleArn": sagemaker_role.role_arn,
                "LabelCategoryConfigS3Uri.$": "$.config.value.labelCategoryConfig",
                "StoppingConditions": {"MaxPercentageOfInputDatasetLabeled": 100},
                "HumanTaskConfig": {
                    "WorkteamArn.$": "$.config.value.workteamArn",
                    "UiConfig": {"UiTemplateS3Uri.$": "$.config.value.uiTemplate"},
                    "PreHumanTaskLambdaArn": f"arn:{cdk.Aws.PARTITION}:lambda:{cdk.Aws.REGION}:"
                    f"{ground_truth_lambda_account}:function:PRE-BoundingBox",
                    "AnnotationConsolidationConfig": {
                        "AnnotationConsolidationLambdaArn": f"arn:{cdk.Aws.PARTITION}:lambda:{cdk.Aws.REGION}:"
                        f"{ground_truth_lambda_account}:function:ACS-BoundingBox"
                    },
                    "TaskTitle": "Draw a box around each object",
                    "TaskDescription": "Draw a tight box around every object of the listed classes.",
                    "TaskKeywords": ["image", "bounding box", "object detection"],
                    "NumberOfHumanWorkersPerDataObject": 1,
                    "TaskTimeLimitInSeconds": 300,
                    "TaskAvailabilityLifetimeInSeconds": 21600,
                    "MaxConcurrentTaskCount": 1000,
                    "PublicWorkforceTaskPrice.$": "$.config.value.price",
                },
            },
            {"outputManifest.$": "$.LabelingJobOutput.OutputDatasetS3Uri"},
            "$.labeling",
        )
        guard(labeling, SAGEMAKER_TRANSIENT, self.notify)
        return labeling

    def _training(
        self, config: AppConfig, sagemaker_role: iam.IRole, algorithm_image: str, artifacts_bucket_name: str
    ) -> sfn.CustomState:
        """The built-in Object Detection algorithm on the prepared augmented manifests (Pipe mode, RecordIO)."""
        channel = {
            "ContentType": "application/x-recordio",
            "RecordWrapperType": "RecordIO",
            "InputMode": "Pipe",
            "CompressionType": "None",
        }
        training = self._sagemaker_job(
            "TrainingJob",
            config.training_max_hours,
            {
                "TrainingJobName.$": "$.config.value.trainingJobName",
                "AlgorithmSpecification": {
                    "TrainingImage": algorithm_image,
                    "TrainingInputMode": "Pipe",
                    # no MetricDefinitions: SageMaker refuses them for its built-in algorithms, which
                    # publish validation:mAP and the training losses themselves
                },
                "RoleArn": sagemaker_role.role_arn,
                "HyperParameters.$": "$.prepared.value.hyperparameters",
                "InputDataConfig": [
                    {
                        "ChannelName": name,
                        **channel,
                        "DataSource": {
                            "S3DataSource": {
                                "S3DataType": "AugmentedManifestFile",
                                "S3DataDistributionType": "FullyReplicated",
                                "AttributeNames": ["source-ref", config.label_attribute],
                                "S3Uri.$": f"$.prepared.value.{key}",
                            }
                        },
                    }
                    for name, key in (("train", "train_manifest"), ("validation", "validation_manifest"))
                ],
                "OutputDataConfig": {"S3OutputPath": f"s3://{artifacts_bucket_name}/training/"},
                "ResourceConfig": {
                    "InstanceType": config.training_instance_type,
                    "InstanceCount": config.training_instance_count,
                    "VolumeSizeInGB": config.training_volume_gb,
                },
                "StoppingCondition": {"MaxRuntimeInSeconds": int(config.training_max_hours * 3600)},
            },
            {"modelArtifact.$": "$.ModelArtifacts.S3ModelArtifacts", "trainingJobName.$": "$.TrainingJobName"},
            "$.training",
        )
        training.add_retry(
            errors=["SageMaker.ResourceLimitExceededException"],
            interval=cdk.Duration.seconds(60),
            max_attempts=10,
            backoff_rate=1.5,
        )
        guard(training, SAGEMAKER_TRANSIENT, self.notify)
        return training

    def _model_to_registry(self, artifacts_bucket_name: str, topic: sns.ITopic) -> sfn.IChainable:
        """Convert -> score -> publish the model component -> the gate registers it; an approved version is
        promoted by its approval's event (infra/promotion.py), so this run ends here."""
        convert = self._invoke(
            "ConvertModel",
            "convert",
            {
                "model_artifact.$": "$.training.modelArtifact",
                "training_job_name.$": "$.training.trainingJobName",
                # the id order the training read (prepare-training's classes.json), not the names as typed
                "classes_from.$": "$.prepared.value.classes_json",
                "output_prefix": f"s3://{artifacts_bucket_name}/models",
                # model.int8.onnx beside model.onnx, calibrated on the run's own validation frames
                "calibration.$": "$.calibration.value.calibration",
            },
            "$.converted",
        )
        score = self._invoke(
            "ScoreModel",
            "score",
            {
                "package.$": "$.converted.value.package",
                "evaluation.$": "$.calibration.value.evaluation.uri",
                "training_job_name.$": "$.training.trainingJobName",
            },
            "$.scored",
        )
        publish = self._invoke(
            "PublishModelComponent",
            "publish",
            {
                "package.$": "$.converted.value.package",
                "training_job_name.$": "$.training.trainingJobName",
                "classes.$": "$.config.value.classes",
            },
            "$.component",
        )
        register = self._invoke(
            "RegisterModel",
            "register",
            {
                "scores.$": "$.scored.value",
                "component.$": "$.component.value",
                "model_artifact.$": "$.training.modelArtifact",
                "training_job_name.$": "$.training.trainingJobName",
                "execution.$": "$$.Execution.Id",
                "manifests.$": "States.Array($.prepared.value.train_manifest, $.prepared.value.validation_manifest)",
                "classes.$": "$.config.value.classes",
                "thing_group.$": "$.config.value.thingGroup",
                "deploy_requested.$": "$.config.value.deployRequested",
            },
            "$.registered",
        )
        convert.next(score).next(publish).next(register).next(self._gate_outcome(topic))
        return convert

    def _gate_outcome(self, topic: sns.ITopic) -> sfn.Choice:
        """A rejected or pending version is news for the operator; an approved one starts the promotion, which
        sends its own notices, so this run just ends."""
        outcome = {
            "outcome.$": "$.registered.value.outcome",
            "reason.$": "$.registered.value.reason",
            "mAP.$": "$.registered.value.mAP",
            "deployedMap.$": "$.registered.value.deployedMap",
            "version.$": "$.registered.value.version",
            "modelPackageArn.$": "$.registered.value.modelPackageArn",
            "thingGroup.$": "$.registered.value.thingGroup",
            "execution.$": "$$.Execution.Id",
        }
        done = sfn.Succeed(self, "Done")
        choice = sfn.Choice(self, "GatePassed?")
        for value, name, subject in (
            ("rejected", "NotifyRejected", "Model rejected by the promotion gate"),
            ("pending", "NotifyAwaitingApproval", "Model registered: awaiting approval"),
        ):
            notice = tasks.SnsPublish(
                self,
                name,
                topic=topic,
                subject=subject,
                message=sfn.TaskInput.from_object(outcome),
                result_path=sfn.JsonPath.DISCARD,
                task_timeout=sfn.Timeout.duration(cdk.Duration.minutes(1)),
            )
            guard(notice, ["SNS.ThrottledException", "SNS.InternalErrorException"], self.notify)
            choice.when(sfn.Condition.string_equals("$.registered.value.outcome", value), notice.next(done))
        return choice.otherwise(done)

    def _grant_sagemaker(self, sagemaker_role: iam.IRole) -> None:
        """What the .sync integrations need (Step Functions' SageMaker IAM page; labeling: the same shape)."""
        stack = cdk.Stack.of(self)
        role = self.state_machine.role
        training_jobs = stack.format_arn(service="sagemaker", resource="training-job", resource_name="*")
        labeling_jobs = stack.format_arn(service="sagemaker", resource="labeling-job", resource_name="*")
        for kind, jobs in (("TrainingJob", training_jobs), ("LabelingJob", labeling_jobs)):
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=[f"sagemaker:Create{kind}", f"sagemaker:Describe{kind}", f"sagemaker:Stop{kind}"],
                    resources=[jobs],
                )
            )
        # the integration tags the jobs it starts; IAM's table scopes both actions to the job ARNs
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:AddTags", "sagemaker:ListTags"], resources=[training_jobs, labeling_jobs]
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[sagemaker_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[
                    stack.format_arn(
                        service="events", resource="rule", resource_name="StepFunctionsGetEventsForSageMaker*"
                    )
                ],
            )
        )
