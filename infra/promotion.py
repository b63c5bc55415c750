"""The promotion workflow: an approved model version reaches the canary group, soaks, and reaches the fleet's group,
or the canary is put back as it was and the version is Rejected. Started by the EventBridge rule on the stack's
model package group's "SageMaker Model Package State Change" to Approved (the gate's approval in auto mode, an
operator's in manual mode: ``odctl model approve`` or the console)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from odshared.model.promotion_end import ENDED

from .state_machines import execution_status_rule, guard, guarded_invoke, logged_state_machine, notify_then_fail

APPROVAL_EVENT = "SageMaker Model Package State Change"
EXECUTION = "$$.Execution.Id"  # the context object's execution ARN: what holds a claim and a lock


def model_package_group(scope: Construct, stack_name: str) -> sagemaker.CfnModelPackageGroup:
    """One group per stack; lower case, so the versions' ARNs (model-package/<group>/<n>) match the policies."""
    name = f"{stack_name.lower()}-models"[:63]
    return sagemaker.CfnModelPackageGroup(
        scope,
        "ModelRegistry",
        model_package_group_name=name,
        model_package_group_description="Object detection models: every scored run, with its gate decision",
    )


def approval_pattern(group_name: str) -> events.EventPattern:
    return events.EventPattern(
        source=["aws.sagemaker"],
        detail_type=[APPROVAL_EVENT],
        detail={"ModelPackageGroupName": [group_name], "ModelApprovalStatus": ["Approved"]},
    )


class Promotion(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: dict[str, lambda_.IFunction],
        group_name: str,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.functions, self.topic = functions, topic
        self.notify = notify_then_fail(self, topic, "Model promotion failed", "PromotionFailed")
        plan = self._invoke("PlanPromotion", "plan", {"detail.$": "$.detail", "execution.$": EXECUTION}, "$.plan")
        # another version's promotion holds the canary group: ask again later (never two soaks at once)
        wait_for_group = sfn.Wait(self, "WaitForGroup", time=sfn.WaitTime.seconds_path("$.plan.value.waitSeconds"))
        to_fleet = self._to_fleet()
        # an empty deployment, not null: CDK drops a null from a Pass's Result, and $.canary.value must exist
        no_canary = sfn.Pass(self, "NoCanary", result=sfn.Result.from_object({"value": {}}), result_path="$.canary")
        no_canary.next(to_fleet)
        wait_for_group.next(plan)
        definition = plan.next(
            sfn.Choice(self, "Proceed?")
            .when(sfn.Condition.boolean_equals("$.plan.value.proceed", False), sfn.Succeed(self, "NothingToDo"))
            .when(sfn.Condition.boolean_equals("$.plan.value.waiting", True), wait_for_group)
            .when(sfn.Condition.string_equals("$.plan.value.canaryGroup", ""), no_canary)
            .otherwise(self._through_canary(to_fleet))
        )
        self.state_machine, self.log_group = logged_state_machine(
            self, definition, cdk.Duration.days(2), sfn.LogLevel.ALL, execution_data=True
        )
        self.rule = events.Rule(
            self,
            "OnApproval",
            description="An approved model version of the stack's group starts its promotion",
            event_pattern=approval_pattern(group_name),
            targets=[targets.SfnStateMachine(self.state_machine)],
        )
        self._on_end(functions["end"], topic)

    def _to_fleet(self) -> sfn.IChainable:
        """The fleet's group gets the version, both groups' records name it, the topic says so."""
        to_fleet = self._deploy("DeployToFleet", "$.plan.value.thingGroup", "$.fleet")
        record = self._invoke(
            "RecordPromotion",
            "record",
            {
                "plan.$": "$.plan.value",
                "outcome": "promoted",
                "groups.$": "States.Array($.plan.value.thingGroup, $.plan.value.canaryGroup)",
                "deployments.$": "States.Array($.fleet.value, $.canary.value)",
                "execution.$": EXECUTION,
            },
            "$.recorded",
        )
        promoted = self._publish("NotifyPromoted", "Model promoted to the fleet", "$.recorded.value.reason")
        to_fleet.next(record).next(promoted).next(sfn.Succeed(self, "Promoted"))
        return to_fleet

    def _through_canary(self, to_fleet: sfn.IChainable) -> sfn.IChainable:
        """Deploy to the canary group, soak, judge: on to the fleet, or the canary put back and the version
        Rejected."""
        to_canary = self._deploy("DeployToCanary", "$.plan.value.canaryGroup", "$.canary")
        soak = sfn.Wait(self, "Soak", time=sfn.WaitTime.seconds_path("$.plan.value.soakSeconds"))
        check = self._invoke(
            "CheckCanary", "check", {"canary.$": "$.canary.value", "plan.$": "$.plan.value"}, "$.check"
        )
        # a device that applied the deployment late soaks its full time too
        keep_soaking = sfn.Wait(self, "KeepSoaking", time=sfn.WaitTime.seconds_path("$.check.value.waitSeconds"))
        rollback = self._invoke(
            "RollBackCanary",
            "deploy",
            {"thing_group.$": "$.plan.value.canaryGroup", "restore.$": "$.canary.value.previous"},
            "$.rollback",
        )
        reject = self._invoke(
            "RejectVersion",
            "record",
            {
                "plan.$": "$.plan.value",
                "outcome": "rolled_back",
                "reason.$": "$.check.value.reason",
                "execution.$": EXECUTION,
            },
            "$.recorded",
        )
        rolled_back = self._publish("NotifyRolledBack", "Canary unhealthy: model rolled back", "$.check.value.reason")
        keep_soaking.next(check)
        to_canary.next(soak).next(check).next(
            sfn.Choice(self, "CanaryHealthy?")
            .when(sfn.Condition.string_equals("$.check.value.state", "soaking"), keep_soaking)
            .when(sfn.Condition.string_equals("$.check.value.state", "healthy"), to_fleet)
            .otherwise(rollback.next(reject).next(rolled_back).next(sfn.Succeed(self, "RolledBack")))
        )
        return to_canary

    def _on_end(self, function: lambda_.IFunction, topic: sns.ITopic) -> None:
        """A promotion stopped, failed or timed out never runs its own last steps: EndPromotion puts the canary
        back and frees the group (odshared.model.promotion_end), and the topic says it happened."""
        executions = cdk.Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.state_machine.state_machine_name}:*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        function.add_to_role_policy(iam.PolicyStatement(actions=["states:GetExecutionHistory"], resources=[executions]))
        detail = "$.detail.{}"
        notice = events.RuleTargetInput.from_object(
            {
                "subject": "Model promotion ended without its record",
                "execution": events.EventField.from_path(detail.format("executionArn")),
                "status": events.EventField.from_path(detail.format("status")),
                "reason": "the canary group is given back its deployment from before and the version is Rejected "
                "(odctl model approve VERSION --override promotes it again)",
            }
        )
        self.end_rule = execution_status_rule(
            self,
            "OnEnded",
            "A promotion that stopped, failed or timed out: its canary put back, its group released",
            [self.state_machine],
            list(ENDED),
            [targets.LambdaFunction(function), targets.SnsTopic(topic, message=notice)],
        )

    def _invoke(self, name: str, function: str, payload: dict, result: str) -> tasks.LambdaInvoke:
        return guarded_invoke(self, name, self.functions[function], payload, result, self.notify, minutes=5)

    def _deploy(self, name: str, group_path: str, result: str) -> tasks.LambdaInvoke:
        payload = {"thing_group.$": group_path, "component.$": "$.plan.value.component"}
        return self._invoke(name, "deploy", payload, result)

    def _publish(self, name: str, subject: str, reason_path: str) -> tasks.SnsPublish:
        message = {
            "version.$": "$.plan.value.version",
            "modelPackageArn.$": "$.plan.value.modelPackageArn",
            "thingGroup.$": "$.plan.value.thingGroup",
            "canaryGroup.$": "$.plan.value.canaryGroup",
            "reason.$": reason_path,
            "route.$": "$.plan.value.route",  # says so when there is no canary: straight to the fleet
            "execution.$": "$$.Execution.Id",
        }
        notice = tasks.SnsPublish(
            self,
            name,
            topic=self.topic,
            subject=subject,
            message=sfn.TaskInput.from_object(message),
            result_path=sfn.JsonPath.DISCARD,
            task_timeout=sfn.Timeout.duration(cdk.Duration.minutes(1)),
        )
        guard(notice, ["SNS.ThrottledException", "SNS.InternalErrorException"], self.notify)
        return notice
