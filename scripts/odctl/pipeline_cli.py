"""``odctl pipeline start|status|list``: the deployed stack's workflow, found through CloudFormation outputs."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from odshared.core.errors import OdError
from odshared.core.log import log_event
from odshared.data.pipeline import JOB_NAME

logger = logging.getLogger(__name__)
DEFAULT_STACK = "EdgeObjectDetector"


class PipelineError(OdError):
    """The stack or the execution cannot be found, or the service refused the call."""


def stack_outputs(stack: str, cloudformation: Any = None) -> dict[str, str]:
    import boto3
    from botocore.exceptions import ClientError

    client = cloudformation or boto3.client("cloudformation")
    try:
        described = client.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as exc:
        raise PipelineError(
            f"stack {stack!r} not found in this account and region (cdk deploy first, or pass "
            f"--stack): {exc.response['Error'].get('Message', exc)}"
        ) from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    if "StateMachineArn" not in outputs:
        raise PipelineError(f"stack {stack!r} has no StateMachineArn output: is it this project's stack?")
    return outputs


def _run_name(given: str | None, prefix: str) -> str:
    """The given name, or ``<prefix>-<UTC time>``; SageMaker's job-name rule, which the workflow applies too."""
    run = given or time.strftime(f"{prefix}-%Y%m%d-%H%M%S", time.gmtime())
    if not JOB_NAME.match(run):
        raise PipelineError(f"--run-name {run!r}: 1-63 letters, digits and dashes")
    return run


def execution_input(
    manifests: list[str] | None = None,
    labeling_manifest: str | None = None,
    classes: list[str] | None = None,
    hyperparameters: dict[str, Any] | None = None,
    deploy: bool | str = False,
    run_name: str | None = None,
    preparation: dict[str, Any] | None = None,
    evaluation_images: int | None = None,
) -> dict[str, Any]:
    """The workflow's execution input, as ValidateInput reads it (odshared.data.pipeline.normalise)."""
    run = _run_name(run_name, "od")
    if bool(manifests) == bool(labeling_manifest):
        raise PipelineError("give --manifest (labeled output manifests) or --labeling-manifest, one of the two")
    for option, uri in [("--manifest", m) for m in manifests or ()] + [("--labeling-manifest", labeling_manifest)]:
        if uri is not None and not str(uri).startswith("s3://"):
            raise PipelineError(f"{option} {uri}: the workflow reads S3; upload it and pass its s3:// URI")
    given = {
        "labelingManifest": labeling_manifest,
        "manifests": manifests,
        "classes": classes,
        "hyperparameters": hyperparameters,
        "preparation": preparation,
        "deploy": deploy,
        "evaluationImages": evaluation_images,
    }
    return {"runName": run, **{key: value for key, value in given.items() if value}}


def ingestion_input(
    videos: str,
    data_bucket: str,
    every: int | None = None,
    fps: float | None = None,
    metadata_from_name: str | None = None,
    run_name: str | None = None,
) -> dict[str, Any]:
    """The ingestion workflow's execution input; the videos must be under the stack's data bucket."""
    run = _run_name(run_name, "ingest")
    if not videos.startswith(f"s3://{data_bucket}/"):
        raise PipelineError(
            f"{videos}: the ingestion workflow reads the stack's data bucket; upload the videos under "
            f"s3://{data_bucket}/videos/ (aws s3 sync) and pass that prefix"
        )
    if every is not None and fps is not None:
        raise PipelineError("give --every or --fps, not both")
    sampling = {"fps": fps} if fps is not None else {"every": every or 1}
    prefix = videos[len(f"s3://{data_bucket}/") :]
    return {"runName": run, "prefix": prefix, "sampling": sampling, "metadataFromName": metadata_from_name or ""}


def start(stack: str, payload: dict[str, Any], stepfunctions: Any = None, cloudformation: Any = None) -> dict[str, Any]:
    """Start a run with an input made by :func:`execution_input`."""
    import boto3

    outputs = stack_outputs(stack, cloudformation)
    run = payload["runName"]
    from botocore.exceptions import ClientError

    client = stepfunctions or boto3.client("stepfunctions")
    try:
        started = client.start_execution(
            stateMachineArn=outputs["StateMachineArn"], name=run, input=json.dumps(payload)
        )
    except ClientError as exc:
        raise PipelineError(f"cannot start run {run!r}: {exc.response['Error'].get('Message', exc)}") from exc
    log_event(logger, "pipeline.started", execution=started["executionArn"], run=run)
    return {"executionArn": started["executionArn"], "runName": run, "input": payload}


def _steps(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each state in order with its status and, for failures, the error and cause."""
    steps: dict[str, dict[str, Any]] = {}
    for event in history:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            steps[name] = {"state": name, "status": "RUNNING", "entered": str(event["timestamp"])}
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            steps.setdefault(name, {"state": name})["status"] = "SUCCEEDED"
        elif kind.endswith("Failed") and kind != "ExecutionFailed":
            details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("FailedEventDetails")), {})
            last = next(reversed(steps.values()), None)
            if last is not None:
                last.update(status="FAILED", error=details.get("error"), cause=details.get("cause"))
    return list(steps.values())


def status(
    execution: str | None = None, stack: str = DEFAULT_STACK, stepfunctions: Any = None, cloudformation: Any = None
) -> dict[str, Any]:
    import boto3

    client = stepfunctions or boto3.client("stepfunctions")
    if execution is None:
        latest = list_runs(stack, 1, client, cloudformation)
        if not latest:
            raise PipelineError(f"no execution of stack {stack!r} yet")
        execution = latest[0]["executionArn"]
    described = client.describe_execution(executionArn=execution)
    history = client.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    result = {
        "executionArn": execution,
        "status": described["status"],
        "steps": _steps(history),
        "startDate": str(described.get("startDate")),
    }
    if described["status"] == "FAILED":
        result.update(error=described.get("error"), cause=described.get("cause"))
    if described.get("output"):
        result["output"] = json.loads(described["output"])
    map_runs = client.list_map_runs(executionArn=execution).get("mapRuns", [])
    if map_runs:  # the ingestion map: items done and failed so far
        counts = client.describe_map_run(mapRunArn=map_runs[0]["mapRunArn"]).get("itemCounts", {})
        result["videos"] = {k: counts.get(k, 0) for k in ("total", "succeeded", "failed", "running", "pending")}
    return result


def start_ingestion(stack: str, payload: dict[str, Any], stepfunctions: Any = None) -> dict[str, Any]:
    """Start an ingestion run with an input made by :func:`ingestion_input`."""
    import boto3

    outputs = stack_outputs(stack)
    client = stepfunctions or boto3.client("stepfunctions")
    started = client.start_execution(
        stateMachineArn=outputs["IngestionStateMachineArn"], name=payload["runName"], input=json.dumps(payload)
    )
    bucket = outputs["DataBucketName"]
    manifest = f"s3://{bucket}/ingest/{payload['runName']}/labeling.manifest"
    log_event(logger, "pipeline.ingest_started", execution=started["executionArn"], manifest=manifest)
    return {"executionArn": started["executionArn"], "runName": payload["runName"], "manifest": manifest}


def list_runs(
    stack: str = DEFAULT_STACK, limit: int = 20, stepfunctions: Any = None, cloudformation: Any = None
) -> list[dict[str, Any]]:
    import boto3

    outputs = stack_outputs(stack, cloudformation)
    client = stepfunctions or boto3.client("stepfunctions")
    runs = client.list_executions(stateMachineArn=outputs["StateMachineArn"], maxResults=limit)["executions"]
    return [
        {"name": r["name"], "executionArn": r["executionArn"], "status": r["status"], "startDate": str(r["startDate"])}
        for r in runs
    ]
