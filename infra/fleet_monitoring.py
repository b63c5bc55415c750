"""The fleet's metrics (EMF through IoT rules, odshared.fleet.metrics), alarms when a camera goes quiet or slow,
loses crossings or fills its outbox, or when the cloud path drops what the devices sent, and a dashboard.

Nothing on the way from a device to the ledger may fail unseen: a rule's action error lands in the rules' error log
group (a metric filter counts it: ``RuleErrors``); a Firehose stream that cannot write S3 retries for 24 hours and then
drops the records (its ``DeliveryToS3.DataFreshness`` and ``DeliveryToS3.Success`` metrics, AWS/Firehose, say so
first); a device that could not keep a crossing counts it in ``counts_lost`` and says how full its outbox is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from odshared.core.settings import FleetAlarmSettings
from odshared.fleet.metrics import CROSSING_METRICS, HEALTH_METRICS, METRIC_SETS, NAMESPACE, rule_sql

from .fleet_data import SQL_VERSION, log_writer

FIREHOSE = "AWS/Firehose"
RULE_ERRORS = "RuleErrors"  # the metric filter's metric: one per error action message (one per rule and message)
FRESHNESS_LIMIT_S = 900  # Firehose's best practices: alarm past the buffering limit, at most 15 minutes
FIVE_MINUTES = cdk.Duration.minutes(5)
# a camera covered, dark, blurred, moved or frozen this long is an alarm (the device's own hysteresis has already
# kept a passing shadow out)
CAMERA_FAULT_MINUTES = 2


def health_metric(name: str, statistic: str, thing: str | None = None) -> cloudwatch.Metric:
    """A metric of the health rule's EMF: per ``thing``, or the fleet's (the dimensionless set)."""
    dimensions = {"thing": thing} if thing else None
    return cloudwatch.Metric(
        namespace=NAMESPACE, metric_name=name, dimensions_map=dimensions, statistic=statistic, period=FIVE_MINUTES
    )


class FleetMonitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alarms: FleetAlarmSettings,
        topic: sns.ITopic,
        errors: logs.ILogGroup,
        streams: Mapping[str, firehose.CfnDeliveryStream],
        registration: lambda_.IFunction,
        unregistered: sqs.IQueue,
        refused: events.IRule,
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
        # the error action's message (AWS IoT's "Error action message format") always names its rule
        errors.add_metric_filter(
            "RuleErrorCount",
            filter_pattern=logs.FilterPattern.exists("$.ruleName"),
            metric_namespace=NAMESPACE,
            metric_name=RULE_ERRORS,
            metric_value="1",
        )
        self.streams = dict(streams)
        self.alarms = self._alarms(alarms) + self._registration(registration, unregistered, refused)
        for alarm in self.alarms:
            alarm.add_alarm_action(actions.SnsAction(topic))
            alarm.add_ok_action(actions.SnsAction(topic))
        self.dashboard = self._dashboard()

    @staticmethod
    def _logs(group: logs.ILogGroup, role: iam.IRole) -> iot.CfnTopicRule.ActionProperty:
        return iot.CfnTopicRule.ActionProperty(
            cloudwatch_logs=iot.CfnTopicRule.CloudwatchLogsActionProperty(
                log_group_name=group.log_group_name, role_arn=role.role_arn
            )
        )

    def _alarms(self, settings: FleetAlarmSettings) -> list[cloudwatch.Alarm]:
        silence = cdk.Duration.minutes(settings.silence_minutes)
        reports = health_metric("HealthReports", "Sum").with_(period=silence)
        quiet = f"no device has sent health for {settings.silence_minutes} minutes"
        made = [self._floor("FleetSilent", reports, 1, quiet)]
        made += self._losses(None)
        made.append(self._camera(None))
        for thing in settings.devices:
            made += self._device(thing, settings)
        made.append(
            self._ceiling(
                "RuleErrors",
                cloudwatch.Metric(namespace=NAMESPACE, metric_name=RULE_ERRORS, statistic="Sum", period=FIVE_MINUTES),
                1,
                "an IoT rule could not act on a device's message (the ledger's Firehose, the metrics' log group): "
                "the message is in the RuleErrors log group, base64OriginalPayload",
            )
        )
        for table, stream in self.streams.items():
            made += self._delivery(table, stream)
        return made

    def _registration(
        self, function: lambda_.IFunction, unregistered: sqs.IQueue, refused: events.IRule
    ) -> list[cloudwatch.Alarm]:
        """The ledger's partitions: an object whose partition is not registered is not read by any query; and a
        record Firehose refused (any error type: partitioning fails before conversion is tried) is not counted."""
        matched = cloudwatch.Metric(
            namespace="AWS/Events",
            metric_name="MatchedEvents",
            dimensions_map={"RuleName": refused.rule_name},
            statistic="Sum",
            period=FIVE_MINUTES,
        )
        return [
            self._ceiling(
                "LedgerRefused",
                matched,
                1,
                "Firehose wrote a record it could not partition or convert (not JSON, no thing, a value where an "
                "object belongs, over the partition quota) under fleet/errors/: it is not counted; the named query "
                "malformed_records names it",
            ),
            self._ceiling(
                "LedgerPartitionErrors",
                function.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
                1,
                "registering a ledger object's partition failed (Lambda retries it twice; the function's log says "
                "why): until it succeeds, the queries do not read that device's hour",
            ),
            self._ceiling(
                "LedgerPartitionsUnregistered",
                unregistered.metric_approximate_number_of_messages_visible(period=FIVE_MINUTES, statistic="Maximum"),
                1,
                "a ledger object's partition was never registered (its event is in the dead-letter queue): the "
                "queries do not read that device's hour; docs/fleet-data.md says how to register it",
            ),
        ]

    def _device(self, thing: str, settings: FleetAlarmSettings) -> list[cloudwatch.Alarm]:
        silence = cdk.Duration.minutes(settings.silence_minutes)
        return [
            self._floor(
                f"Silent-{thing}",
                health_metric("HealthReports", "Sum", thing).with_(period=silence),
                1,
                f"{thing} has sent no health for {settings.silence_minutes} minutes",
            ),
            self._floor(
                f"LowFps-{thing}",
                health_metric("FPS", "Average", thing),
                settings.fps_floor,
                f"{thing} infers under {settings.fps_floor:g} frames per second",
                periods=3,
            ),
            *self._losses(thing),
            self._camera(thing),
        ]

    def _camera(self, thing: str | None) -> cloudwatch.Alarm:
        """One device: every report over ``CAMERA_FAULT_MINUTES`` said its camera was not OK (``Minimum``; health
        every 60 s puts two in the window). Any device: some report said so in each of two such windows on end
        (the fleet's series mixes devices, so a minimum would wait for every camera)."""
        window = cdk.Duration.minutes(CAMERA_FAULT_MINUTES)
        statistic, periods = ("Minimum", 1) if thing else ("Maximum", 2)
        who, suffix = (thing, f"-{thing}") if thing else ("a device", "")
        return self._ceiling(
            f"CameraFault{suffix}",
            health_metric("CameraFault", statistic, thing).with_(period=window),
            1,
            f"{who}'s camera has been covered, dark, overexposed, out of focus, moved or frozen for "
            f"{CAMERA_FAULT_MINUTES} minutes or more: its crossings are not to be trusted (health's camera.state says "
            "which; odctl camera reference after a deliberate move)",
            periods=periods,
        )

    def _losses(self, thing: str | None) -> list[cloudwatch.Alarm]:
        """Crossings lost, and an outbox near or past its bound: for the fleet (any device) or one device."""
        who, suffix = (thing, f"-{thing}") if thing else ("a device", "")
        filling = cloudwatch.MathExpression(
            expression="MAX([nearly, full])",
            using_metrics={
                "nearly": health_metric("OutboxNearlyFull", "Maximum", thing),
                "full": health_metric("OutboxFull", "Maximum", thing),
            },
            period=FIVE_MINUTES,
            label="outbox nearly full or full",
        )
        return [
            self._ceiling(
                f"CountsLost{suffix}",
                health_metric("CountsLost", "Maximum", thing),
                1,
                f"{who} lost crossings it could neither keep nor send (counts_lost, since its component started; "
                "odctl counts --gaps names the seqs)",
            ),
            self._ceiling(
                f"OutboxFilling{suffix}",
                filling,
                1,
                f"{who}'s crossings outbox is nearly full or full: crossings are, or soon will be, sent from memory "
                "only (a restart loses them), then lost",
            ),
        ]

    def _delivery(self, table: str, stream: firehose.CfnDeliveryStream) -> list[cloudwatch.Alarm]:
        """Firehose's own delivery metrics for one stream (AWS/Firehose, DeliveryStreamName)."""

        def metric(name: str, statistic: str) -> cloudwatch.Metric:
            return self._stream_metric(table, stream, name, statistic)

        return [
            self._ceiling(
                f"LedgerStale-{table}",
                metric("DeliveryToS3.DataFreshness", "Maximum"),
                FRESHNESS_LIMIT_S,
                f"the {table} stream holds a record older than {FRESHNESS_LIMIT_S} s: S3 delivery is failing "
                "(its Delivery log stream says why); after 24 hours Firehose drops the records",
            ),
            self._floor(
                f"LedgerDeliveryFailing-{table}",
                metric("DeliveryToS3.Success", "Average"),
                1,
                f"some of the {table} stream's S3 writes failed (retried for 24 hours; its Delivery log stream)",
                missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            self._ceiling(
                f"LedgerRejected-{table}",
                metric("FailedConversion.Records", "Sum"),
                1,
                f"the {table} stream could not convert a message to Parquet (a value where an object belongs): it "
                "is not counted; the named query malformed_records names it (fleet/errors/)",
            ),
            self._ceiling(
                f"LedgerPartitionsExceeded-{table}",
                metric("PartitionCountExceeded", "Maximum"),
                1,
                f"the {table} stream has more devices in its buffer than its active partitions quota: the records "
                "of the devices over it are not delivered to the ledger (fleet/errors/); raise the quota",
            ),
        ]

    def _floor(
        self,
        name: str,
        metric: cloudwatch.IMetric,
        floor: float,
        description: str,
        periods: int = 1,
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.BREACHING,
    ) -> cloudwatch.Alarm:
        """Under ``floor`` is harm; by default no data at all is too (a silent camera sends none)."""
        below = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD
        return self._alarm(name, metric, floor, below, description, periods, missing)

    def _ceiling(
        self, name: str, metric: cloudwatch.IMetric, ceiling: float, description: str, periods: int = 1
    ) -> cloudwatch.Alarm:
        """At or over ``ceiling`` in each of ``periods`` periods is harm; no data is none (silence has its own
        alarms)."""
        above = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        silent = cloudwatch.TreatMissingData.NOT_BREACHING
        return self._alarm(name, metric, ceiling, above, description, periods, silent, datapoints=periods)

    def _alarm(
        self,
        name: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator,
        description: str,
        periods: int,
        missing: cloudwatch.TreatMissingData,
        datapoints: int | None = None,
    ) -> cloudwatch.Alarm:
        """The one alarm shape of the fleet: ``datapoints`` left out keeps CloudWatch's default (all ``periods``)."""
        return cloudwatch.Alarm(
            self,
            name,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=periods,
            datapoints_to_alarm=datapoints,
            treat_missing_data=missing,
            alarm_description=description,
        )

    def _dashboard(self) -> cloudwatch.Dashboard:
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{cdk.Stack.of(self).stack_name}-fleet")
        health, crossings = HEALTH_METRICS.dimensions, CROSSING_METRICS.dimensions
        dashboard.add_widgets(
            _graph("Devices reporting (health messages per 5 min)", [search("HealthReports", health, "Sum", 300)]),
            _graph("FPS per device", [search("FPS", health, "Average", 300)]),
            _graph(
                "Crossing messages delivered per hour per line: deliveries, a redelivery counted again "
                "(each crossing once: odctl counts)",
                [search("Crossings", crossings, "Sum", 3600, "deliveries")],
            ),
            _graph(
                "Messages given up (left) and publishes retried (right), since each component started",
                [search("DeliveryFailures", health, "Maximum", 300)],
                right=[search("PublishRetries", health, "Maximum", 300)],
            ),
            _graph(
                "Crossings lost per device (since each component started; which: odctl counts --gaps)",
                [search("CountsLost", health, "Maximum", 300)],
            ),
            _graph(
                "Outbox per device: crossings awaiting delivery (left); nearly full, full (right, 1 = yes)",
                [search("OutboxPending", health, "Maximum", 300)],
                right=[search(m, health, "Maximum", 300) for m in ("OutboxNearlyFull", "OutboxFull")],
            ),
            _graph(
                "Ledger delivery to S3 (Firehose): oldest record's age in s (left), share of writes that succeeded "
                "(right)",
                [self._stream_metric(t, s, "DeliveryToS3.DataFreshness", "Maximum") for t, s in self.streams.items()],
                right=[self._stream_metric(t, s, "DeliveryToS3.Success", "Average") for t, s in self.streams.items()],
            ),
            _graph(
                "Camera not OK per device (1 = covered, dark, overexposed, out of focus, moved or frozen)",
                [search("CameraFault", health, "Maximum", 60)],
            ),
            _graph(
                "IoT rule errors (messages an action could not take: RuleErrors log group)",
                [cloudwatch.Metric(namespace=NAMESPACE, metric_name=RULE_ERRORS, statistic="Sum", period=FIVE_MINUTES)],
            ),
        )
        return dashboard

    @staticmethod
    def _stream_metric(table: str, stream: firehose.CfnDeliveryStream, name: str, statistic: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=FIREHOSE,
            metric_name=name,
            dimensions_map={"DeliveryStreamName": stream.ref},
            statistic=statistic,
            period=FIVE_MINUTES,
            label=table,
        )


def search(metric: str, dimensions: tuple[str, ...], stat: str, period: int, label: str = "") -> cloudwatch.IMetric:
    """Every series of ``metric`` with exactly these dimensions: one line per device (or line) as they appear."""
    schema = ",".join([NAMESPACE, *dimensions])
    return cloudwatch.MathExpression(
        expression=f"SEARCH('{{{schema}}} MetricName=\"{metric}\"', '{stat}', {period})",
        label=label or metric,
        period=cdk.Duration.seconds(period),
        using_metrics={},
    )


def _graph(title: str, left: list[cloudwatch.IMetric], right: list[cloudwatch.IMetric] | None = None) -> Any:
    return cloudwatch.GraphWidget(title=title, left=left, right=right or [], width=12)
