"""What the stack's two workflows share: the failure path (SNS with the error, then a Fail whose cause carries it)
and a state machine with its own log group and X-Ray tracing."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

TRANSIENT = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "States.Timeout",
]


def guarded_invoke(
    scope: Construct,
    name: str,
    function: lambda_.IFunction,
    payload: dict,
    result: str,
    notify: sfn.IChainable,
    minutes: int,
) -> tasks.LambdaInvoke:
    """Every Lambda step of both workflows: the payload alone at ``result``, service exceptions retried by
    ``guard`` with backoff rather than by the task's own default retry, failures routed to ``notify``."""
    task = tasks.LambdaInvoke(
        scope,
        name,
        lambda_function=function,
        payload=sfn.TaskInput.from_object(payload),
        result_selector={"value.$": "$.Payload"},
        result_path=result,
        retry_on_service_exceptions=False,
        task_timeout=sfn.Timeout.duration(cdk.Duration.minutes(minutes)),
    )
    guard(task, TRANSIENT, notify)
    return task


def notify_then_fail(scope: Construct, topic: sns.ITopic, subject: str, error: str) -> tasks.SnsPublish:
    """Catchers put the caught error at ``$.error``. The Fail state uses a fixed error name: a caught States.* error
    (States.TaskFailed of a .sync job, States.Timeout) cannot be re-raised under its own, reserved, name."""
    notify = tasks.SnsPublish(
        scope,
        "Notify",
        topic=topic,
        subject=subject,
        message=sfn.TaskInput.from_json_path_at("$.error"),
        result_path=sfn.JsonPath.DISCARD,
    )
    notify.next(
        sfn.Fail(
            scope,
            "Failed",
            error=error,
            cause_path=sfn.JsonPath.format(
                "{}: {}", sfn.JsonPath.string_at("$.error.Error"), sfn.JsonPath.string_at("$.error.Cause")
            ),
        )
    )
    return notify


def retry_with_backoff(state: sfn.TaskStateBase | sfn.CustomState | sfn.DistributedMap, errors: list[str]) -> None:
    """Transient errors: 4 retries from 5 s, doubling, full jitter (many items failing at once do not retry in step)."""
    state.add_retry(
        errors=errors,
        interval=cdk.Duration.seconds(5),
        max_attempts=4,
        backoff_rate=2.0,
        jitter_strategy=sfn.JitterType.FULL,
    )


def guard(state: sfn.TaskStateBase | sfn.CustomState, errors: list[str], notify: sfn.IChainable) -> None:
    """Retry what is transient; everything else goes, with the error at ``$.error``, to ``notify``."""
    retry_with_backoff(state, errors)
    state.add_catch(notify, errors=["States.ALL"], result_path="$.error")


def logged_state_machine(
    scope: Construct, definition: sfn.IChainable, timeout: cdk.Duration, level: sfn.LogLevel, execution_data: bool
) -> tuple[sfn.StateMachine, logs.LogGroup]:
    log_group = logs.LogGroup(
        scope, "Logs", retention=logs.RetentionDays.SIX_MONTHS, removal_policy=cdk.RemovalPolicy.DESTROY
    )
    machine = sfn.StateMachine(
        scope,
        "StateMachine",
        definition_body=sfn.DefinitionBody.from_chainable(definition),
        timeout=timeout,
        tracing_enabled=True,
        logs=sfn.LogOptions(destination=log_group, level=level, include_execution_data=execution_data),
    )
    return machine, log_group


def notify_unhandled_failures(stack: cdk.Stack, machines: list[sfn.IStateMachine], topic: sns.ITopic) -> None:
    """No Catch sees States.Runtime, an execution timeout or an abort: the status change event does."""
    execution_status_rule(
        stack,
        "PipelineFailed",
        "Workflow executions that failed, timed out or were aborted",
        machines,
        ["FAILED", "TIMED_OUT", "ABORTED"],
        [
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


def execution_status_rule(
    scope: Construct,
    construct_id: str,
    description: str,
    machines: list[sfn.IStateMachine],
    statuses: list[str],
    rule_targets: list[events.IRuleTarget],
) -> events.Rule:
    """An EventBridge rule on the machines' executions reaching one of ``statuses``: how an end no Catch sees (a
    timeout, an abort, States.Runtime) still reaches its targets."""
    return events.Rule(
        scope,
        construct_id,
        description=description,
        event_pattern=events.EventPattern(
            source=["aws.states"],
            detail_type=["Step Functions Execution Status Change"],
            detail={"status": statuses, "stateMachineArn": [machine.state_machine_arn for machine in machines]},
        ),
        targets=rule_targets,
    )
