"""The SageMaker ``.sync`` integration for moto's Step Functions interpreter (moto has none).

The state's Parameters reach it exactly as the synthesized definition builds them. The request is validated with
botocore's own ParamValidator against the operation's input shape (a request AWS would refuse fails the state as
SageMaker.AmazonSageMakerException, as Step Functions names SageMaker's service errors); the job runs through its
local equivalent (sagemaker_jobs); the state's result is a Describe* response checked against botocore's output
shape, so ResultSelector reads real field names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Final

import botocore.session
from botocore.exceptions import ClientError, ParamValidationError
from botocore.validate import ParamValidator
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

from tests.rehearsal import sagemaker_jobs

MODEL = botocore.session.get_session().get_service_model("sagemaker")
JOBS: Final = {"createtrainingjob": "TrainingJob", "createlabelingjob": "LabelingJob"}


class Jobs:
    """What the stand-in service knows: every request it accepted and every job's description."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict]] = []
        self.described: dict[str, dict] = {}
        self.fail: dict[str, str] = {}  # job kind -> failure reason to end its next job with
        self.omit: set[str] = set()  # optional Describe* members to leave out (still a valid response)
        self.truncate_artifact = False


JOB_STATE = Jobs()


def validate(operation: str, params: dict, output: bool = False) -> None:
    op = MODEL.operation_model(operation)
    report = ParamValidator().validate(params, op.output_shape if output else op.input_shape)
    if report.has_errors():
        raise ParamValidationError(report=report.generate_report())


def refuse_builtin_metric_definitions(request: dict) -> None:
    """SageMaker's rule for its own algorithms (REFERENCE.md section 0), beyond what the input shape says."""
    from infra.regions import OBJECT_DETECTION_ACCOUNTS

    spec = request.get("AlgorithmSpecification", {})
    account = spec.get("TrainingImage", "").split(".", 1)[0]
    if spec.get("MetricDefinitions") and account in OBJECT_DETECTION_ACCOUNTS.values():
        message = "You can't override the metric definitions for Amazon SageMaker algorithms."
        raise ClientError({"Error": {"Code": "ValidationException", "Message": message}}, "CreateTrainingJob")


def _describe(kind: str, request: dict, account: str, region: str) -> dict:
    name = request[f"{kind}Name"]
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    shape = MODEL.operation_model(f"Describe{kind}").output_shape
    described = {k: v for k, v in request.items() if k in shape.members}
    arn_kind = "training-job" if kind == "TrainingJob" else "labeling-job"
    described |= {f"{kind}Arn": f"arn:aws:sagemaker:{region}:{account}:{arn_kind}/{name.lower()}", "CreationTime": now}
    reason = JOB_STATE.fail.pop(kind, None)
    try:
        if reason:
            raise sagemaker_jobs.JobFailed(reason)
        if kind == "TrainingJob":
            artifact = sagemaker_jobs.run_training_job(request, JOB_STATE.truncate_artifact)
            described |= {"TrainingJobStatus": "Completed", "SecondaryStatus": "Completed"}
            described |= {"ModelArtifacts": {"S3ModelArtifacts": artifact}, "TrainingEndTime": now}
        else:
            manifest = sagemaker_jobs.run_labeling_job(request)
            described |= {"LabelingJobStatus": "Completed", "LabelingJobOutput": {"OutputDatasetS3Uri": manifest}}
    except sagemaker_jobs.JobFailed as exc:
        described |= {f"{kind}Status": "Failed", "FailureReason": str(exc)}
        if kind == "TrainingJob":
            described |= {"SecondaryStatus": "Failed", "ModelArtifacts": {"S3ModelArtifacts": ""}}
    if kind == "LabelingJob":
        described |= {"LastModifiedTime": now, "JobReferenceCode": "rehearsal", "LabelCounters": {}}
    for member in JOB_STATE.omit:
        described.pop(member, None)
    validate(f"Describe{kind}", described, output=True)
    return described


def _json_ready(value: Any) -> Any:
    """Timestamps as Step Functions shows them in a .sync result (epoch milliseconds)."""
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


class StateTaskServiceSageMaker(StateTaskServiceCallback):
    def __init__(self) -> None:
        super().__init__(supported_integration_patterns={ResourceCondition.Sync, ResourceCondition.WaitForTaskToken})

    def _get_supported_parameters(self) -> set[str] | None:
        kind = JOBS.get(self.resource.api_action.lower())
        return set(MODEL.operation_model(f"Create{kind}").input_shape.members) if kind else None

    def _from_error(self, env, ex: Exception) -> FailureEvent:
        if isinstance(ex, ClientError | ParamValidationError):
            code = ex.response["Error"]["Code"] if isinstance(ex, ClientError) else "ValidationException"
            error, cause = "SageMaker.AmazonSageMakerException", f"{ex} (Service: SageMaker; Error Code: {code})"
            return FailureEvent(
                env=env,
                error_name=CustomErrorName(error),
                event_type=HistoryEventType.TaskFailed,
                event_details=EventDetails(
                    taskFailedEventDetails=TaskFailedEventDetails(
                        error=error, cause=cause, resource=self._get_sfn_resource(), resourceType="sagemaker"
                    )
                ),
            )
        return super()._from_error(env=env, ex=ex)

    def _eval_service_task(self, env, resource_runtime_part, normalised_parameters: dict, state_credentials) -> None:
        kind = JOBS[self.resource.api_action.lower()]
        validate(f"Create{kind}", normalised_parameters)
        refuse_builtin_metric_definitions(normalised_parameters)
        JOB_STATE.requests.append((f"Create{kind}", normalised_parameters))
        described = _describe(kind, normalised_parameters, resource_runtime_part.account, resource_runtime_part.region)
        JOB_STATE.described[normalised_parameters[f"{kind}Name"]] = described
        env.stack.append({f"{kind}Arn": described[f"{kind}Arn"]})

    def _build_sync_resolver(self, env, resource_runtime_part, normalised_parameters, state_credentials) -> Callable:
        kind = JOBS[self.resource.api_action.lower()]
        env.stack.pop()
        described = _json_ready(JOB_STATE.described[normalised_parameters[f"{kind}Name"]])

        def resolve() -> dict:
            if described[f"{kind}Status"] == "Completed":
                return described
            raise FailureEventException(
                FailureEvent(
                    env=env,
                    error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                    event_type=HistoryEventType.TaskFailed,
                    event_details=EventDetails(
                        taskFailedEventDetails=TaskFailedEventDetails(
                            resource=self._get_sfn_resource(),
                            resourceType="sagemaker",
                            error=StatesErrorNameType.StatesTaskFailed.to_name(),
                            cause=to_json_str(described),
                        )
                    ),
                )
            )

        return resolve


def install(monkeypatch) -> Jobs:
    """Route the interpreter's sagemaker tasks here for one test."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory

    original = state_task_factory.state_task_service_for

    def service_for(service_name: str):
        return StateTaskServiceSageMaker() if service_name == "sagemaker" else original(service_name)

    monkeypatch.setattr(state_task_factory, "state_task_service_for", service_for)
    from moto.sagemaker.models import SageMakerModelBackend

    moto_describe = SageMakerModelBackend.describe_training_job

    def describe_training_job(backend, name: str) -> dict:
        """A job the stand-in ran is described as the .sync integration saw it (a step asking SageMaker later)."""
        return JOB_STATE.described[name] if name in JOB_STATE.described else moto_describe(backend, name)

    monkeypatch.setattr(SageMakerModelBackend, "describe_training_job", describe_training_job)
    JOB_STATE.__init__()
    return JOB_STATE
