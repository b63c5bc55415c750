"""The fleet's data: AWS IoT rules -> Amazon Data Firehose, partitioning each message by device and converting it
to Parquet against its Glue table -> the data bucket -> Glue tables (each object's partition registered as it lands:
S3's EventBridge event -> a Lambda, odshared.fleet.partitions) -> an Athena workgroup with the ledger's named
queries (odshared.fleet.ledger).

The tables' columns come from the device's message schemas, every scalar as its text (odshared.fleet.columns): the
queries check and cast each field, so a value of a wrong kind is one row ``malformed_records`` names, never a
skipped or failed read. A record Firehose cannot convert at all (not JSON; no object where a column is a struct)
goes to its error output, which the ``rejected`` table reads, and ``malformed_records`` names it too. Corrections,
which odctl writes, stay JSON lines read as strings (the Regex SerDe; odshared.fleet.ledger says why not a JSON
SerDe). Each stream logs its delivery errors to the ``Delivery`` log group (CloudWatchLoggingOptions: a DirectPut
stream retries S3 for 24 hours, then drops the records, and says so only there and in its metrics, which
fleet_monitoring alarms on); each rule's errors go to ``RuleErrors``, which fleet_monitoring counts and alarms on."""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from odshared.fleet.columns import glue_columns
from odshared.fleet.ledger import (
    BODY,
    CORRECTIONS,
    DEVICE,
    DEVICE_QUERY,
    ERROR_TYPES,
    JSON_SERDE,
    LINE_REGEX,
    OBJECT_CREATED,
    OBJECT_DELETED,
    PARQUET_ROOT,
    PARQUET_SERDE,
    PARTITION_PROJECTION_FORMAT,
    RAW_PREFIX,
    REJECTED,
    REJECTED_FIELDS,
    REJECTED_PARTITIONS,
    REJECTED_PREFIX,
    SERDE,
    TABLES,
    Table,
    named_queries,
)

from .functions import PythonFunction
from .lambda_bundle import REPO

SQL_VERSION = "2016-03-23"
RESULTS_PREFIX = "athena-results/"
SCHEMAS = REPO / "edge_component" / "schemas"  # the device's message schemas: the converted tables' columns
HOUR = "!{timestamp:yyyy/MM/dd/HH}"  # the arrival hour (UTC), as Firehose's default prefix writes it: the tables' dt
CONVERSION_BUFFER_MB = 64  # the least Firehose takes for a stream that converts the record format (or partitions)
DEVICE_KEYS = {DEVICE: DEVICE_QUERY}  # dynamic partitioning's keys: each a jq query over the message


def metadata_query(keys: dict[str, str]) -> str:
    """Dynamic partitioning's MetadataExtractionQuery: one jq program making an object of the keys, ``{device:.thing}``
    (a jq program, not JSON: ``{"device": ".thing"}`` would give every record the text ".thing")."""
    return "{" + ",".join(f"{name}:{query}" for name, query in keys.items()) + "}"


PARTITIONING_RETRY_S = 7200  # the most Firehose takes: an S3 prefix it cannot write is retried this long


def delivery_prefixes(table: Table) -> tuple[str, str]:
    """Where a table's stream writes, by arrival hour and device: its Parquet, then (by error type and hour) the
    records it could not partition or convert."""
    return (
        f"{table.prefix}{HOUR}/!{{partitionKeyFromQuery:{DEVICE}}}/",
        f"{table.rejected_prefix}!{{firehose:error-output-type}}/{HOUR}/",
    )


def table_columns(table: Table) -> list[tuple[str, str]]:
    """The Glue columns of a table: from the device's message schema for one Firehose converts (and the top-level
    keys the ledger reads that the schema admits as extra numbers); the line, as a string, for a lines table."""
    if not table.schema:
        return [(BODY, "string")]
    schema = json.loads((SCHEMAS / f"{table.schema}.schema.json").read_text())
    return glue_columns(schema, [f.path for f in table.fields])


def object_events(bucket: s3.IBucket, prefix: str, kinds: tuple[str, ...] = (OBJECT_CREATED,)) -> events.EventPattern:
    """S3's EventBridge events of ``kinds`` for the objects in ``bucket`` under ``prefix``."""
    return events.EventPattern(
        source=["aws.s3"],
        detail_type=list(kinds),
        detail={"bucket": {"name": [bucket.bucket_name]}, "object": {"key": [{"prefix": prefix}]}},
    )


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
        self.tables: dict[str, glue.CfnTable] = {}
        for table in TABLES:
            self._table(table, data)
            self._allow_schema_reads(table, delivery_role)
            stream = self._stream(table, data, delivery_role)
            rule_role.add_to_policy(
                iam.PolicyStatement(
                    actions=["firehose:PutRecord", "firehose:PutRecordBatch"], resources=[stream.attr_arn]
                )
            )
            self.rules[table.name] = self._rule(table, stream, rule_role)
        self._table(CORRECTIONS, data)  # written by odctl counts correct, one object per record: no stream, no rule
        self._rejected_table(data)
        self.partitions = self._partition_registration(data)
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

    def _allow_schema_reads(self, table: Table, role: iam.Role) -> None:
        """What the record format conversion needs: the table's schema from Glue (catalog, database, table)."""
        stack = cdk.Stack.of(self)
        arns = [
            stack.format_arn(service="glue", resource="catalog"),
            stack.format_arn(service="glue", resource="database", resource_name=self.database_name),
            stack.format_arn(service="glue", resource="table", resource_name=f"{self.database_name}/{table.name}"),
        ]
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"], resources=arns
            )
        )

    def _conversion(
        self, table: Table, role: iam.Role
    ) -> firehose.CfnDeliveryStream.DataFormatConversionConfigurationProperty:
        """JSON in (the OpenX SerDe: Firehose's recommended one), Parquet out (snappy), against the table's columns."""
        stack = cdk.Stack.of(self)
        return firehose.CfnDeliveryStream.DataFormatConversionConfigurationProperty(
            enabled=True,
            input_format_configuration=firehose.CfnDeliveryStream.InputFormatConfigurationProperty(
                deserializer=firehose.CfnDeliveryStream.DeserializerProperty(
                    # keys as they are, as the queries' JSON paths and odctl's local reader take them
                    open_x_json_ser_de=firehose.CfnDeliveryStream.OpenXJsonSerDeProperty(case_insensitive=False)
                )
            ),
            output_format_configuration=firehose.CfnDeliveryStream.OutputFormatConfigurationProperty(
                serializer=firehose.CfnDeliveryStream.SerializerProperty(
                    parquet_ser_de=firehose.CfnDeliveryStream.ParquetSerDeProperty(compression="SNAPPY")
                )
            ),
            schema_configuration=firehose.CfnDeliveryStream.SchemaConfigurationProperty(
                catalog_id=stack.account,
                database_name=self.database_name,
                table_name=table.name,
                region=stack.region,
                role_arn=role.role_arn,
                version_id="LATEST",
            ),
        )

    def _partition_registration(self, data: s3.IBucket) -> PythonFunction:
        """Each Parquet object's (hour, device) partition registered in Glue when S3 says it landed. EventBridge
        invokes the function asynchronously: a failed registration is retried by Lambda (twice, within 6 hours), an
        event EventBridge could not hand over by EventBridge (for 24 hours); then either keeps the event, as it
        was, in one dead-letter queue (fleet_monitoring alarms on it and on the function's errors): an object is
        never left unread without a word. Records Firehose refused (fleet/errors/) have a rule of their own, with
        no target: its matched events are what an alarm counts."""
        data.enable_event_bridge_notification()
        self.unregistered = sqs.Queue(
            self,
            "UnregisteredPartitions",
            retention_period=cdk.Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        registration = PythonFunction(
            self,
            "RegisterPartitions",
            folder="register_partitions",
            description="The ledger's Parquet objects -> their Glue partitions (hour, device)",
            timeout_minutes=1,
            memory_size=256,
            environment={"FLEET_DATABASE": self.database_name},
            dead_letter_queue=self.unregistered,
        )
        stack = cdk.Stack.of(self)
        registration.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["glue:GetTable", "glue:BatchCreatePartition", "glue:DeletePartition"],
                resources=[
                    stack.format_arn(service="glue", resource="catalog"),
                    stack.format_arn(service="glue", resource="database", resource_name=self.database_name),
                    *(
                        stack.format_arn(
                            service="glue", resource="table", resource_name=f"{self.database_name}/{t.name}"
                        )
                        for t in TABLES
                    ),
                ],
            )
        )
        registration.function.add_to_role_policy(  # is a device's hour folder empty: ListObjectsV2 on it
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[data.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{PARQUET_ROOT}/*"]}},
            )
        )
        events.Rule(
            self,
            "PartitionLanded",
            description="A ledger Parquet object landed or expired: register its partition, or drop it emptied",
            event_pattern=object_events(data, f"{PARQUET_ROOT}/", (OBJECT_CREATED, OBJECT_DELETED)),
            targets=[
                targets.LambdaFunction(
                    registration.function,
                    dead_letter_queue=self.unregistered,
                    max_event_age=cdk.Duration.hours(24),
                    retry_attempts=185,
                )
            ],
        )
        self.refused = events.Rule(
            self,
            "RecordRefused",
            description="Firehose wrote a record it could not partition or convert under fleet/errors/ (counted)",
            event_pattern=object_events(data, REJECTED_PREFIX),
        )
        return registration

    def _partitioning(
        self,
    ) -> tuple[
        firehose.CfnDeliveryStream.DynamicPartitioningConfigurationProperty,
        firehose.CfnDeliveryStream.ProcessingConfigurationProperty,
    ]:
        """Dynamic partitioning by device: the jq query of each key (``DEVICE_KEYS``), read by Firehose's own
        parser (no Lambda). A message it cannot read a key from goes to the error output (partitioning-failed)."""
        processor = firehose.CfnDeliveryStream.ProcessorProperty(
            type="MetadataExtraction",
            parameters=[
                firehose.CfnDeliveryStream.ProcessorParameterProperty(
                    parameter_name="MetadataExtractionQuery", parameter_value=metadata_query(DEVICE_KEYS)
                ),
                firehose.CfnDeliveryStream.ProcessorParameterProperty(
                    parameter_name="JsonParsingEngine", parameter_value="JQ-1.6"
                ),
            ],
        )
        return (
            firehose.CfnDeliveryStream.DynamicPartitioningConfigurationProperty(
                enabled=True,
                retry_options=firehose.CfnDeliveryStream.RetryOptionsProperty(duration_in_seconds=PARTITIONING_RETRY_S),
            ),
            firehose.CfnDeliveryStream.ProcessingConfigurationProperty(enabled=True, processors=[processor]),
        )

    def _stream(self, table: Table, data: s3.IBucket, role: iam.Role) -> firehose.CfnDeliveryStream:
        log_stream = self._delivery_log(table, role)
        prefix, rejected_prefix = delivery_prefixes(table)
        partitioning, processing = self._partitioning()
        stream = firehose.CfnDeliveryStream(
            self,
            # a new logical ID: Firehose cannot turn dynamic partitioning on in a stream that exists, so a stack from
            # before gets new streams (the rules move to them in the same update)
            f"PartitionedStream-{table.name}",
            delivery_stream_type="DirectPut",
            delivery_stream_encryption_configuration_input=(
                firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(key_type="AWS_OWNED_CMK")
            ),
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=data.bucket_arn,
                role_arn=role.role_arn,
                prefix=prefix,  # by arrival hour and device: the tables' dt and device
                error_output_prefix=rejected_prefix,
                dynamic_partitioning_configuration=partitioning,
                processing_configuration=processing,
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    interval_in_seconds=300, size_in_m_bs=CONVERSION_BUFFER_MB
                ),
                compression_format="UNCOMPRESSED",  # Parquet compresses its own pages
                data_format_conversion_configuration=self._conversion(table, role),
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True,
                    log_group_name=self.delivery_logs.log_group_name,
                    log_stream_name=log_stream.log_stream_name,
                ),
            ),
        )
        stream.node.add_dependency(role)
        stream.add_resource_dependency(self.tables[table.name])  # the conversion reads the table's schema
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
        """Parquet for a table Firehose converts, partitioned by ``dt`` (the arrival hour) and ``device``, each
        partition registered as its first object lands (``_partition_registration``); the lines as strings for a
        lines table, partitioned by ``dt``, projected (nothing registers its partitions)."""
        location = f"s3://{data.bucket_name}/{table.prefix}"
        if table.schema:
            formats = ("MapredParquetInputFormat", "MapredParquetOutputFormat")
            serde = glue.CfnTable.SerdeInfoProperty(serialization_library=PARQUET_SERDE)
            io = [f"org.apache.hadoop.hive.ql.io.parquet.{name}" for name in formats]
            projection = {}
        else:  # each line whole, as a string: the queries parse it
            serde = glue.CfnTable.SerdeInfoProperty(serialization_library=SERDE, parameters={"input.regex": LINE_REGEX})
            io = [
                "org.apache.hadoop.mapred.TextInputFormat",
                "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
            ]
            projection = {"projection.dt.type": "date", **_HOURS, "storage.location.template": location + "${dt}/"}
        self.tables[table.name] = self._glue_table(
            table.name,
            location,
            projection,
            glue.CfnTable.StorageDescriptorProperty(
                location=location,
                input_format=io[0],
                output_format=io[1],
                serde_info=serde,
                columns=[glue.CfnTable.ColumnProperty(name=n, type=t) for n, t in table_columns(table)],
            ),
            list(table.partition_keys),
        )

    def _rejected_table(self, data: s3.IBucket) -> None:
        """Firehose's records it could not partition or convert, every ledger's: its JSON documents, by ledger, error
        type and hour."""
        location = f"s3://{data.bucket_name}/{REJECTED_PREFIX}"
        ledgers = ",".join(t.name for t in TABLES)
        self._glue_table(
            REJECTED,
            location,
            {
                "projection.ledger.type": "enum",
                "projection.ledger.values": ledgers,
                "projection.error_type.type": "enum",
                "projection.error_type.values": ",".join(ERROR_TYPES),
                "projection.dt.type": "date",
                **_HOURS,
                "storage.location.template": location + "".join(f"${{{key}}}/" for key in REJECTED_PARTITIONS),
            },
            glue.CfnTable.StorageDescriptorProperty(
                location=location,
                input_format="org.apache.hadoop.mapred.TextInputFormat",
                output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                serde_info=glue.CfnTable.SerdeInfoProperty(serialization_library=JSON_SERDE),
                columns=[glue.CfnTable.ColumnProperty(name=n.lower(), type=t) for n, t in REJECTED_FIELDS],
            ),
            list(REJECTED_PARTITIONS),
        )

    def _glue_table(
        self,
        name: str,
        location: str,
        projection: dict[str, str],  # Athena's partition projection ({}: the partitions are registered)
        storage: glue.CfnTable.StorageDescriptorProperty,
        partitions: list[str],
    ) -> glue.CfnTable:
        stack = cdk.Stack.of(self)
        created = glue.CfnTable(
            self,
            f"Table-{name}",
            catalog_id=stack.account,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=name,
                table_type="EXTERNAL_TABLE",
                parameters={"projection.enabled": "true", **projection} if projection else {},
                partition_keys=[glue.CfnTable.ColumnProperty(name=key, type="string") for key in partitions],
                storage_descriptor=storage,
            ),
        )
        created.add_resource_dependency(self.database)
        return created


# the dt projection: every arrival hour from the ledger's first
_HOURS = {
    "projection.dt.format": PARTITION_PROJECTION_FORMAT,
    "projection.dt.range": "2026/01/01/00,NOW",
    "projection.dt.interval": "1",
    "projection.dt.interval.unit": "HOURS",
}
