"""The fleet's data: AWS IoT rules -> Amazon Data Firehose -> the data bucket as JSON Lines -> Glue tables with
partition projection -> an Athena workgroup with the ledger's named queries (odshared.fleet.ledger).

The tables hold each line as a string (the Regex SerDe) and the queries parse it, so one malformed line is one row
``malformed_records`` names, never a skipped or failed read (odshared.fleet.ledger says why not a JSON SerDe). Each
stream logs its delivery errors to the ``Delivery`` log group (CloudWatchLoggingOptions: a DirectPut stream retries
S3 for 24 hours, then drops the records, and says so only there and in its metrics, which fleet_monitoring alarms
on); each rule's errors go to ``RuleErrors``, which fleet_monitoring counts and alarms on."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from odshared.fleet.ledger import (
    CORRECTIONS,
    LINE_REGEX,
    PARTITION_PROJECTION_FORMAT,
    RAW_PREFIX,
    SERDE,
    TABLES,
    Table,
    named_queries,
)

SQL_VERSION = "2016-03-23"
RESULTS_PREFIX = "athena-results/"


def log_writer(group: logs.ILogGroup) -> iam.PolicyStatement:
    """What an IoT rule's cloudwatchLogs action needs on its group: streams and events, on the group's streams."""
    streams = cdk.Stack.of(group).format_arn(
        service="logs",
        resource="log-group",
        resource_name=f"{group.log_group_name}:log-stream:*",
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )
    return iam.PolicyStatement(
        actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"], resources=[streams]
    )


class FleetData(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, data: s3.IBucket, retention_days: int) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        data.add_lifecycle_rule(id="FleetRaw", prefix=f"{RAW_PREFIX}/", expiration=cdk.Duration.days(retention_days))
        data.add_lifecycle_rule(id="AthenaResults", prefix=RESULTS_PREFIX, expiration=cdk.Duration.days(7))
        self.errors = logs.LogGroup(self, "RuleErrors", retention=logs.RetentionDays.THREE_MONTHS)
        self.delivery_logs = logs.LogGroup(self, "Delivery", retention=logs.RetentionDays.THREE_MONTHS)
        delivery_role = iam.Role(self, "DeliveryRole", assumed_by=iam.ServicePrincipal("firehose.amazonaws.com"))
        delivery_role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:AbortMultipartUpload"], resources=[data.arn_for_objects(f"{RAW_PREFIX}/*")]
            )
        )
        delivery_role.add_to_policy(
            iam.PolicyStatement(actions=["s3:GetBucketLocation", "s3:ListBucket"], resources=[data.bucket_arn])
        )
        rule_role = iam.Role(self, "RuleRole", assumed_by=iam.ServicePrincipal("iot.amazonaws.com"))
        rule_role.add_to_policy(log_writer(self.errors))
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=stack.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=f"{stack.stack_name.lower()}_fleet", description="The fleet's counts and health"
            ),
        )
        self.streams: dict[str, firehose.CfnDeliveryStream] = {}
        self.rules: dict[str, iot.CfnTopicRule] = {}
        for table in TABLES:
            stream = self._stream(table, data, delivery_role)
            rule_role.add_to_policy(
                iam.PolicyStatement(
                    actions=["firehose:PutRecord", "firehose:PutRecordBatch"], resources=[stream.attr_arn]
                )
            )
            self.rules[table.name] = self._rule(table, stream, rule_role)
            self._table(table, data)
        self._table(CORRECTIONS, data)  # written by odctl counts correct, one object per record: no stream, no rule
        self.workgroup = self._workgroup(data)
        for named in named_queries():
            query = athena.CfnNamedQuery(
                self,
                f"Query-{named.name}",
                name=named.name,
                description=named.description,
                database=self.database_name,
                query_string=named.sql,
                work_group=self.workgroup.ref,
            )
            query.add_resource_dependency(self.workgroup)

    def _workgroup(self, data: s3.IBucket) -> athena.CfnWorkGroup:
        stack = cdk.Stack.of(self)
        return athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=f"{stack.stack_name}-fleet",
            description="odctl counts and odctl fleet",
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=10 * 1024**3,
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{data.bucket_name}/{RESULTS_PREFIX}",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                ),
            ),
        )

    @property
    def database_name(self) -> str:
        name = self.database.database_input.name
        return str(name)

    def _delivery_log(self, table: Table, role: iam.Role) -> logs.LogStream:
        """The stream's log stream in ``Delivery``, and the one permission Firehose needs to write it."""
        log_stream = logs.LogStream(
            self, f"DeliveryLog-{table.name}", log_group=self.delivery_logs, log_stream_name=f"{table.name}-S3Delivery"
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:PutLogEvents"],
                resources=[
                    cdk.Stack.of(self).format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=f"{self.delivery_logs.log_group_name}:log-stream:{log_stream.log_stream_name}",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        return log_stream

    def _stream(self, table: Table, data: s3.IBucket, role: iam.Role) -> firehose.CfnDeliveryStream:
        log_stream = self._delivery_log(table, role)
        stream = firehose.CfnDeliveryStream(
            self,
            f"Stream-{table.name}",
            delivery_stream_type="DirectPut",
            delivery_stream_encryption_configuration_input=(
                firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(key_type="AWS_OWNED_CMK")
            ),
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=data.bucket_arn,
                role_arn=role.role_arn,
                prefix=table.prefix,  # Firehose adds YYYY/MM/DD/HH/ (UTC): the tables' dt
                error_output_prefix=f"{RAW_PREFIX}/errors/{table.name}/",
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    interval_in_seconds=300, size_in_m_bs=5
                ),
                compression_format="UNCOMPRESSED",
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True,
                    log_group_name=self.delivery_logs.log_group_name,
                    log_stream_name=log_stream.log_stream_name,
                ),
            ),
        )
        stream.node.add_dependency(role)
        self.streams[table.name] = stream
        return stream

    def _rule(self, table: Table, stream: firehose.CfnDeliveryStream, role: iam.Role) -> iot.CfnTopicRule:
        rule = iot.CfnTopicRule(
            self,
            f"Rule-{table.name}",
            topic_rule_payload=iot.CfnTopicRule.TopicRulePayloadProperty(
                sql=f"SELECT * FROM '{table.topic_filter}'",
                aws_iot_sql_version=SQL_VERSION,
                rule_disabled=False,
                description=f"{table.topic_filter} into the ledger's {table.name} table",
                actions=[
                    iot.CfnTopicRule.ActionProperty(
                        firehose=iot.CfnTopicRule.FirehoseActionProperty(
                            delivery_stream_name=stream.ref, role_arn=role.role_arn, separator="\n"
                        )
                    )
                ],
                error_action=iot.CfnTopicRule.ActionProperty(
                    cloudwatch_logs=iot.CfnTopicRule.CloudwatchLogsActionProperty(
                        log_group_name=self.errors.log_group_name, role_arn=role.role_arn
                    )
                ),
            ),
        )
        rule.node.add_dependency(role)
        return rule

    def _table(self, table: Table, data: s3.IBucket) -> None:
        stack = cdk.Stack.of(self)
        location = f"s3://{data.bucket_name}/{table.prefix}"
        glue.CfnTable(
            self,
            f"Table-{table.name}",
            catalog_id=stack.account,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=table.name,
                table_type="EXTERNAL_TABLE",
                parameters={
                    "projection.enabled": "true",
                    "projection.dt.type": "date",
                    "projection.dt.format": PARTITION_PROJECTION_FORMAT,
                    "projection.dt.range": "2026/01/01/00,NOW",
                    "projection.dt.interval": "1",
                    "projection.dt.interval.unit": "HOURS",
                    "storage.location.template": location + "${dt}/",
                },
                partition_keys=[glue.CfnTable.ColumnProperty(name="dt", type="string")],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location,
                    input_format="org.apache.hadoop.mapred.TextInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(  # each line whole, as a string: the queries parse it
                        serialization_library=SERDE, parameters={"input.regex": LINE_REGEX}
                    ),
                    columns=[glue.CfnTable.ColumnProperty(name=n, type=t) for n, t in table.columns],
                ),
            ),
        ).add_resource_dependency(self.database)
