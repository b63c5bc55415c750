"""The fleet's metrics (EMF through IoT rules, odshared.fleet.metrics), alarms when a camera goes quiet or slow, and a
dashboard."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from odshared.fleet.metrics import CROSSING_METRICS, HEALTH_METRICS, METRIC_SETS, NAMESPACE, rule_sql

from .fleet_data import SQL_VERSION, log_writer


class FleetMonitoring(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, alarms: dict[str, Any], topic: sns.ITopic, errors: logs.ILogGroup
    ) -> None:
        super().__init__(scope, construct_id)
        self.metrics_log = logs.LogGroup(self, "Metrics", retention=logs.RetentionDays.ONE_MONTH)
        role = iam.Role(self, "RuleRole", assumed_by=iam.ServicePrincipal("iot.amazonaws.com"))
        role.add_to_policy(log_writer(self.metrics_log))
        role.add_to_policy(log_writer(errors))
        for metric_set in METRIC_SETS:
            name = metric_set.metrics[0].name
            iot.CfnTopicRule(
                self,
                f"Rule-{name}",
                topic_rule_payload=iot.CfnTopicRule.TopicRulePayloadProperty(
                    sql=rule_sql(metric_set),
                    aws_iot_sql_version=SQL_VERSION,
                    rule_disabled=False,
                    description=f"{metric_set.topic_filter} as CloudWatch metrics (Embedded Metric Format)",
                    actions=[self._logs(self.metrics_log, role)],
                    error_action=self._logs(errors, role),
                ),
            ).node.add_dependency(role)
        self.alarms = self._alarms(alarms, topic)
        self.dashboard = self._dashboard()

    @staticmethod
    def _logs(group: logs.ILogGroup, role: iam.IRole) -> iot.CfnTopicRule.ActionProperty:
        return iot.CfnTopicRule.ActionProperty(
            cloudwatch_logs=iot.CfnTopicRule.CloudwatchLogsActionProperty(
                log_group_name=group.log_group_name, role_arn=role.role_arn
            )
        )

    def _alarms(self, settings: dict[str, Any], topic: sns.ITopic) -> list[cloudwatch.Alarm]:
        silence = cdk.Duration.minutes(settings["silenceMinutes"])
        made = [
            self._alarm(
                "FleetSilent",
                cloudwatch.Metric(namespace=NAMESPACE, metric_name="HealthReports", statistic="Sum", period=silence),
                1,
                f"no device has sent health for {settings['silenceMinutes']} minutes",
            )
        ]
        for thing in settings["devices"]:
            dimensions = {"thing": thing}
            made.append(
                self._alarm(
                    f"Silent-{thing}",
                    cloudwatch.Metric(
                        namespace=NAMESPACE,
                        metric_name="HealthReports",
                        dimensions_map=dimensions,
                        statistic="Sum",
                        period=silence,
                    ),
                    1,
                    f"{thing} has sent no health for {settings['silenceMinutes']} minutes",
                )
            )
            made.append(
                self._alarm(
                    f"LowFps-{thing}",
                    cloudwatch.Metric(
                        namespace=NAMESPACE,
                        metric_name="FPS",
                        dimensions_map=dimensions,
                        statistic="Average",
                        period=cdk.Duration.minutes(5),
                    ),
                    settings["fpsFloor"],
                    f"{thing} infers under {settings['fpsFloor']} frames per second",
                    periods=3,
                )
            )
        for alarm in made:
            alarm.add_alarm_action(actions.SnsAction(topic))
            alarm.add_ok_action(actions.SnsAction(topic))
        return made

    def _alarm(
        self, name: str, metric: cloudwatch.Metric, floor: float, description: str, periods: int = 1
    ) -> cloudwatch.Alarm:
        """Under ``floor`` is harm; no data at all is too (a silent camera sends none: missing is breaching)."""
        return cloudwatch.Alarm(
            self,
            name,
            metric=metric,
            threshold=floor,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=periods,
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            alarm_description=description,
        )

    def _dashboard(self) -> cloudwatch.Dashboard:
        def search(metric: str, dimensions: tuple[str, ...], stat: str, period: int, label: str) -> cloudwatch.IMetric:
            schema = ",".join([NAMESPACE, *dimensions])
            return cloudwatch.MathExpression(
                expression=f"SEARCH('{{{schema}}} MetricName=\"{metric}\"', '{stat}', {period})",
                label=label,
                period=cdk.Duration.seconds(period),
                using_metrics={},
            )

        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{cdk.Stack.of(self).stack_name}-fleet")
        health, crossings = HEALTH_METRICS.dimensions, CROSSING_METRICS.dimensions
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Devices reporting (health messages per 5 min)",
                left=[search("HealthReports", health, "Sum", 300, "reports")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="FPS per device", left=[search("FPS", health, "Average", 300, "fps")], width=12
            ),
            cloudwatch.GraphWidget(
                title="Crossings per hour per line",
                left=[search("Crossings", crossings, "Sum", 3600, "crossings")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Publish errors (since each component started)",
                left=[search("PublishErrors", health, "Maximum", 300, "errors")],
                width=12,
            ),
        )
        return dashboard
