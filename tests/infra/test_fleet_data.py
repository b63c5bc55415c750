"""The counts ledger and its watchers: the rules, streams, tables and named queries in the template; the device
loop's real messages through moto's Firehose into S3, with redeliveries and a malformed line, where the named
queries (unchanged: Athena's Trino SQL, parsed by sqlglot's Trino dialect, run by DuckDB) give the device's totals
exactly and name the malformed line; and every alarm on a metric that is emitted, with its namespace and
dimensions: the EMF the stack's rule makes of the real device's health, Firehose's own, the rule errors' filter."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from odshared.fleet.columns import reached
from odshared.fleet.ledger import (
    BODY,
    CORRECTIONS,
    ERROR_TYPES,
    LINE_REGEX,
    PARQUET_SERDE,
    QUERIED,
    REJECTED,
    REJECTED_FIELDS,
    SERDE,
    TABLES,
    corrected_parameters,
    gap_parameters,
    named_queries,
    period_parameters,
    review_parameters,
)
from odshared.fleet.metrics import CROSSING_METRICS, HEALTH_METRICS, NAMESPACE, rule_sql
from tests.conftest import REPO
from tests.infra.template_values import Deployment
from tests.rehearsal import iot_sql

SCHEMA_TYPES = {"string": "string", "bigint": "integer", "double": "number", "boolean": "boolean"}
ALL_TIME = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
ALARMS = {"silenceMinutes": 10, "fpsFloor": 2, "devices": ["camera-07"]}
# Firehose's own metrics the alarms read (its CloudWatch metrics page: delivery, data format conversion)
FIREHOSE_METRICS = {
    "DeliveryToS3.DataFreshness",
    "DeliveryToS3.Success",
    "FailedConversion.Records",
    "PartitionCountExceeded",  # dynamic partitioning's
}


def _resources(template, kind):
    return {k: r["Properties"] for k, r in template["Resources"].items() if r["Type"] == kind}


def test_every_rule_has_its_sql_version_an_error_action_and_newline_separated_records(synthesized):
    _, template = synthesized
    rules = _resources(template, "AWS::IoT::TopicRule")
    topics = {re.search(r"FROM '([^']+)'", r["TopicRulePayload"]["Sql"]).group(1) for r in rules.values()}
    assert topics >= {t.topic_filter for t in TABLES}
    for rule in rules.values():
        payload = rule["TopicRulePayload"]
        assert payload["AwsIotSqlVersion"] == "2016-03-23" and "ErrorAction" in payload
        for action in payload["Actions"]:
            if "Firehose" in action:
                assert action["Firehose"]["Separator"] == "\n"  # JSON Lines: one message per line


def _schema_field(schema: dict, path: str) -> dict | None:
    node: dict | None = schema
    for part in path.removeprefix("$.").split("."):
        node = (node or {}).get("properties", {}).get(part)
    return node


def test_each_stream_converts_to_parquet_with_a_column_for_every_property_of_its_message_schema(synthesized):
    """Each stream converts its messages to Parquet (OpenX JSON in, snappy Parquet out) against its own Glue table,
    whose columns are the device's message schema's top-level properties, in order (a property added to a schema
    and not to the table fails here), every value as its text; each field the queries read reaches a string, of
    the schema's type for its kind. Firehose may read that table's schema and no other. Corrections stay lines (the
    Regex SerDe, the whole line); the rejected table reads the streams' error output for conversion failures."""
    _, template = synthesized
    deployment = Deployment(template)
    tables = {t["TableInput"]["Name"]: t["TableInput"] for t in _resources(template, "AWS::Glue::Table").values()}
    assert set(tables) == {t.name for t in QUERIED} | {REJECTED}
    streams = list(_resources(template, "AWS::KinesisFirehose::DeliveryStream").values())
    for table in TABLES:
        found = tables[table.name]
        described = found["StorageDescriptor"]
        assert described["SerdeInfo"] == {"SerializationLibrary": PARQUET_SERDE}
        assert described["InputFormat"].endswith("MapredParquetInputFormat")
        assert found["PartitionKeys"] == [{"Name": k, "Type": "string"} for k in ("dt", "device")]
        assert not any(k.startswith("projection.") for k in found.get("Parameters", {})), "registered, not projected"
        assert json.dumps(described["Location"]).count(table.prefix) == 1
        schema = json.loads((REPO / "edge_component/schemas" / f"{table.schema}.schema.json").read_text())
        columns = {c["Name"]: c["Type"] for c in described["Columns"]}
        assert list(columns)[: len(schema["properties"])] == list(schema["properties"])
        extra = list(columns)[len(schema["properties"]) :]  # the counters health reports as extra numbers
        assert all(schema["additionalProperties"]["type"] == "number" for _ in extra), extra
        counters = schema["additionalProperties"].get("description", "") if extra else ""
        assert all(name in counters for name in extra), extra
        for field in table.fields:
            assert reached(columns, field.path[2:].split(".")) == "string", field
            node = _schema_field(schema, field.path)
            if node is not None:
                assert node.get("type", "string") == SCHEMA_TYPES.get(field.kind, "string"), field
                assert field.kind != "timestamp" or node.get("format") == "date-time"
                assert not field.required or field.path[2:] in schema["required"]
        (stream,) = [
            s for s in streams if table.prefix in json.dumps(s["ExtendedS3DestinationConfiguration"]["Prefix"])
        ]
        destination = deployment.resolve(stream["ExtendedS3DestinationConfiguration"])
        conversion = destination["DataFormatConversionConfiguration"]
        assert conversion["Enabled"] is True and conversion["SchemaConfiguration"]["TableName"] == table.name
        assert conversion["InputFormatConfiguration"]["Deserializer"] == {"OpenXJsonSerDe": {"CaseInsensitive": False}}
        assert conversion["OutputFormatConfiguration"]["Serializer"] == {"ParquetSerDe": {"Compression": "SNAPPY"}}
        assert destination["BufferingHints"]["SizeInMBs"] >= 64 and destination["CompressionFormat"] == "UNCOMPRESSED"
        assert destination["Prefix"] == f"{table.prefix}!{{timestamp:yyyy/MM/dd/HH}}/!{{partitionKeyFromQuery:device}}/"
        assert "!{firehose:error-output-type}" in destination["ErrorOutputPrefix"]
        assert destination["DynamicPartitioningConfiguration"]["Enabled"] is True
        (processor,) = destination["ProcessingConfiguration"]["Processors"]
        parameters = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}
        assert processor["Type"] == "MetadataExtraction" and parameters["JsonParsingEngine"] == "JQ-1.6"
        assert parameters["MetadataExtractionQuery"] == "{device:.thing}"  # a jq program making {"device": <thing>}
    readable = [
        r
        for policy in _resources(template, "AWS::IAM::Policy").values()
        for statement in policy["PolicyDocument"]["Statement"]
        if "glue:GetTable" in statement["Action"]
        for r in deployment.resolve(statement["Resource"])
    ]
    assert {r.rsplit("/", 1)[-1] for r in readable if ":table/" in r} == {t.name for t in TABLES}
    corrections = tables[CORRECTIONS.name]["StorageDescriptor"]
    assert corrections["Columns"] == [{"Name": BODY, "Type": "string"}]
    assert corrections["SerdeInfo"] == {"SerializationLibrary": SERDE, "Parameters": {"input.regex": LINE_REGEX}}
    rejected = tables[REJECTED]
    assert [c["Name"] for c in rejected["StorageDescriptor"]["Columns"]] == [n.lower() for n, _ in REJECTED_FIELDS]
    assert rejected["Parameters"]["projection.ledger.values"] == ",".join(t.name for t in TABLES)
    assert rejected["Parameters"]["projection.error_type.values"] == ",".join(ERROR_TYPES)
    assert {"format-conversion-failed", "partitioning-failed"} <= set(ERROR_TYPES)
    assert "/${ledger}/${error_type}/${dt}/" in json.dumps(rejected["Parameters"]["storage.location.template"])


def test_each_objects_partition_is_registered_when_it_lands_and_a_failed_registration_is_kept_and_alarmed(
    synthesized,
):
    """S3 sends the data bucket's events to EventBridge; a rule sends each Parquet object's "Object Created" to the
    registration function (handed over for up to a day; Lambda retries a failed registration), then into a
    dead-letter queue that an alarm watches (as do the function's errors). The function may read the two tables
    and add their partitions, nothing else. Another rule matches every object Firehose refused: an alarm counts
    them."""
    _, template = synthesized
    deployment = Deployment(template)
    buckets = _resources(template, "AWS::S3::Bucket")
    assert any("EventBridgeConfiguration" in json.dumps(b) for b in buckets.values()) or any(
        r["Type"] == "Custom::S3BucketNotifications" and "EventBridgeConfiguration" in json.dumps(r)
        for r in template["Resources"].values()
    )
    (rule,) = [r for r in _resources(template, "AWS::Events::Rule").values() if "fleet/parquet/" in json.dumps(r)]
    pattern = deployment.resolve(rule["EventPattern"])
    assert pattern["detail-type"] == ["Object Created", "Object Deleted"]  # landed; expired
    assert pattern["detail"]["object"] == {"key": [{"prefix": "fleet/parquet/"}]}
    (target,) = rule["Targets"]
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
    queue = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    function = target["Arn"]["Fn::GetAtt"][0]
    environment = template["Resources"][function]["Properties"]["Environment"]["Variables"]
    assert "FLEET_DATABASE" in environment
    role = template["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    granted = {
        action
        for policy in _resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Roles"]
        for statement in policy["PolicyDocument"]["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert granted - {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "sqs:SendMessage"} == {
        "glue:GetTable",
        "glue:BatchCreatePartition",
        "glue:DeletePartition",
        "s3:ListBucket",
    }
    dead_letters = template["Resources"][function]["Properties"]["DeadLetterConfig"]["TargetArn"]
    assert dead_letters == {"Fn::GetAtt": [queue, "Arn"]}  # Lambda's own retries end in the same queue
    watched = [json.dumps(a) for a in _resources(template, "AWS::CloudWatch::Alarm").values() if "Dimensions" in a]
    assert any(queue in a and "ApproximateNumberOfMessagesVisible" in a for a in watched)
    assert any(function in a and '"Errors"' in a for a in watched)
    (refused,) = [k for k, r in _resources(template, "AWS::Events::Rule").items() if "fleet/errors/" in json.dumps(r)]
    assert any(refused in a and "MatchedEvents" in a for a in watched)


def test_the_stand_in_evaluates_only_a_jq_program_making_an_object_of_top_level_keys():
    """So a MetadataExtractionQuery Firehose would read otherwise (JSON: every record's key the text ".thing")
    fails the tests instead of being read kindly."""
    from tests.rehearsal.firehose_conversion import jq_keys

    assert jq_keys("{device:.thing}") == {"device": ".thing"}
    assert jq_keys("{ a: .b, c:.d }") == {"a": ".b", "c": ".d"}
    for other in ('{"device": ".thing"}', "{device:.a.b}", ".thing"):
        with pytest.raises(NotImplementedError):
            jq_keys(other)


def test_the_corrections_table_reads_what_odctl_writes_and_nothing_expires_it(synthesized):
    """The corrections table's fields are the keys of the records odshared.fleet.corrections makes (its one
    producer: no device schema), and no lifecycle rule reaches corrections/: an audit of who changed a count stays
    after the raw messages it amends expire."""
    from odshared.fleet.corrections import correct

    crossing = {"event_id": "s-1", "thing": "t", "line": "l", "class": "c", "direction": "in"}
    crossing["timestamp"] = "2026-11-22T09:00:00Z"
    now = datetime(2026, 11, 23, tzinfo=UTC)
    made = [
        correct(kind, crossing, "me", "why", now, {"class": "d"} if kind == "wrong_class" else {})
        for kind in ("not_a_crossing", "wrong_class", "wrong_direction")
    ]
    declared = {f.path[2:] for f in CORRECTIONS.fields}
    assert set().union(*map(set, made)) == declared
    assert {f.path[2:] for f in CORRECTIONS.fields if f.required} <= set(made[0])
    _, template = synthesized
    (rules,) = [  # the data bucket's: the one whose rules expire the raw messages
        b["LifecycleConfiguration"]["Rules"]
        for b in _resources(template, "AWS::S3::Bucket").values()
        if any(r.get("Id") == "FleetRaw" for r in b.get("LifecycleConfiguration", {}).get("Rules", []))
    ]
    assert not [r for r in rules if CORRECTIONS.prefix.startswith(r.get("Prefix", "")) and "ExpirationInDays" in r]


def test_the_named_queries_are_athenas_dialect_and_duckdb_runs_them_unchanged(synthesized):
    """Every named query in the template is the ledger's text; sqlglot's Trino dialect parses it with every function
    one it knows (none unknown: what it transpiles means the same in DuckDB), and DuckDB runs the transpiled text on
    empty tables with the parameters the CLI passes, as many as its ``?``."""
    import duckdb
    import sqlglot
    from sqlglot import exp

    _, template = synthesized
    queries = {q["Name"]: q["QueryString"] for q in _resources(template, "AWS::Athena::NamedQuery").values()}
    assert queries == {q.name: q.sql for q in named_queries()}
    from odctl.ledger_landed import Landed, load_landed
    from tests.rehearsal.ledger_objects import stack_columns

    parameters = {
        "last_health": ["2026/01/01/00"],
        "malformed_records": ["2026/01/01/00"] * 3,
        "crossing_gaps": gap_parameters(ALL_TIME[1]),
        "crossings_for_review": review_parameters(*ALL_TIME),
        "corrected_balance": corrected_parameters(*ALL_TIME),
    }
    connection = duckdb.connect()
    load_landed(connection, Landed(stack_columns()))  # every table, empty, with the stack's columns
    for name, sql in queries.items():
        tree = sqlglot.parse_one(sql, read="trino", error_level=sqlglot.ErrorLevel.RAISE)
        assert not list(tree.find_all(exp.Anonymous)), name
        given = parameters.get(name, period_parameters(*ALL_TIME))
        assert sql.count("?") == len(given), name
        assert connection.execute(sqlglot.transpile(sql, read="trino", write="duckdb")[0], given).fetchall() == []


def test_each_stream_logs_its_delivery_errors_and_may_write_only_its_own_log_stream(synthesized):
    _, template = synthesized
    log_streams = _resources(template, "AWS::Logs::LogStream")
    deployment = Deployment(template, names={k: s["LogStreamName"] for k, s in log_streams.items()})
    roles = {k for k, r in _resources(template, "AWS::IAM::Role").items() if "firehose" in json.dumps(r)}
    granted = [
        resource
        for policy in _resources(template, "AWS::IAM::Policy").values()
        if {r["Ref"] for r in policy["Roles"]} & roles
        for statement in deployment.resolve(policy["PolicyDocument"])["Statement"]
        if "logs:PutLogEvents" in statement["Action"]
        for resource in (statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]])
    ]
    streams = _resources(template, "AWS::KinesisFirehose::DeliveryStream")
    assert len(streams) == len(TABLES)
    for props in streams.values():
        logging = deployment.resolve(props["ExtendedS3DestinationConfiguration"]["CloudWatchLoggingOptions"])
        assert logging["Enabled"] is True
        (logical,) = [k for k, s in log_streams.items() if s["LogStreamName"] == logging["LogStreamName"]]
        assert deployment.resolve(log_streams[logical]["LogGroupName"]) == logging["LogGroupName"]
        arn = f"arn:aws:logs:us-east-1:123456789012:log-group:{logging['LogGroupName']}:log-stream:"
        assert arn + logging["LogStreamName"] in granted  # that stream exactly, no wildcard
    assert all("*" not in resource for resource in granted)


def test_every_rules_errors_reach_the_log_group_whose_filter_the_rule_errors_alarm_reads(synthesized):
    """An IoT rule error is only seen if it lands where the metric filter looks: every rule (the ledger's and the
    metrics') sends its errors, one log event a message (no batch mode, so ``$.ruleName`` is at the top of each
    event), to the group the RuleErrors filter watches, with a role that may write there; and the RuleErrors alarm
    reads that filter's metric (namespace, name, no dimensions), so one failed action sets it off."""
    _, template = synthesized
    deployment = Deployment(template)
    (metric_filter,) = _resources(template, "AWS::Logs::MetricFilter").values()
    group = deployment.resolve(metric_filter["LogGroupName"])
    (made,) = metric_filter["MetricTransformations"]
    rules = _resources(template, "AWS::IoT::TopicRule")
    assert len(rules) == len(TABLES) + 2  # the ledger's, and the health and crossings metrics'
    statements = {
        role["Ref"]: deployment.resolve(policy["PolicyDocument"])["Statement"]
        for policy in _resources(template, "AWS::IAM::Policy").values()
        for role in policy["Roles"]
    }
    for logical, rule in rules.items():
        action = rule["TopicRulePayload"]["ErrorAction"]["CloudwatchLogs"]
        assert deployment.resolve(action["LogGroupName"]) == group, logical
        assert not action.get("BatchMode"), logical
        role = action["RoleArn"]["Fn::GetAtt"][0]
        writable = [
            resource
            for statement in statements.get(role, [])
            if "logs:PutLogEvents" in statement["Action"]
            for resource in (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
        ]
        assert f"arn:aws:logs:us-east-1:123456789012:log-group:{group}:log-stream:*" in writable, logical
    (alarm,) = [a for k, a in _alarms(template).items() if k.startswith("FleetMonitoringRuleErrors")]
    assert (alarm["Namespace"], alarm["MetricName"]) == (made["MetricNamespace"], made["MetricName"])
    assert "Dimensions" not in alarm and made["MetricValue"] == "1"
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "Sum",
        1,
        "GreaterThanOrEqualToThreshold",
    )


@pytest.fixture
def device_messages(scene, tmp_path):
    """What the real device loop publishes on a generated crossings video: (topic, payload bytes)."""
    from odctl.synth_video import SynthSpec, write_video
    from odedge.app import run
    from odedge.config import EdgeConfig

    video, _ = write_video(
        SynthSpec("mixed_boxes_6", ("blue box", "yellow box"), frames=300, seed=6, scenario="crossings"), tmp_path
    )
    out = tmp_path / "messages.jsonl"
    lines = json.dumps([{"name": "middle", "points": [[0.5, 0.0], [0.5, 1.0]], "in": "left-to-right"}])
    config = EdgeConfig.from_mapping(
        {
            "model_dir": str(scene["package"]),
            "source": str(video),
            "publisher": "jsonl",
            "jsonl": str(out),
            "lines": lines,
            "score_threshold": "0.4",
            "thing_name": "camera-07",
        }
    )
    run(config, install_signals=False)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    return [(r["topic"], json.dumps(r["message"], separators=(",", ":")).encode()) for r in records]


def _matches(topic_filter, topic):
    pattern = "^" + re.escape(topic_filter).replace(r"\+", "[^/]+").replace(r"\#", ".*") + "$"
    return re.match(pattern, topic) is not None


def _firehose_from_template(template, bucket):
    """moto's Firehose streams as the template configures them, and each rule's route: (topic, stream, separator)."""
    import boto3

    firehose = boto3.client("firehose")
    deployment = Deployment(template)
    for logical, props in _resources(template, "AWS::KinesisFirehose::DeliveryStream").items():
        destination = {
            **deployment.resolve(props["ExtendedS3DestinationConfiguration"]),
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "RoleARN": "arn:aws:iam::123456789012:role/delivery",
        }
        firehose.create_delivery_stream(
            DeliveryStreamName=logical, DeliveryStreamType="DirectPut", ExtendedS3DestinationConfiguration=destination
        )
    routes = []
    for rule in _resources(template, "AWS::IoT::TopicRule").values():
        payload = rule["TopicRulePayload"]
        topic_filter = re.search(r"FROM '([^']+)'", payload["Sql"]).group(1)
        for action in payload["Actions"]:
            if "Firehose" in action:
                stream = action["Firehose"]["DeliveryStreamName"]["Ref"]
                routes.append((topic_filter, stream, action["Firehose"]["Separator"].encode()))
    return firehose, routes


REGISTRATION_CONTEXT = {
    "function_name": "RegisterPartitions",
    "invoked_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:RegisterPartitions",
    "timeout_s": 60.0,
    "memory_mb": 256,
}


def _catalog_from_template(template, bucket):
    """moto's Glue database and tables as the template declares them (database ``DATABASE``), S3's events on to
    EventBridge, and the template's rule for a landed object sending its events to a queue, where the test picks
    them up for the registration function (moto runs no Lambda): (glue, sqs, queue URL)."""
    import boto3

    from tests.rehearsal.ledger_objects import DATABASE

    names = {
        logical: bucket for logical in _resources(template, "AWS::S3::Bucket") if logical.startswith("StorageData")
    }
    names |= {logical: DATABASE for logical in _resources(template, "AWS::Glue::Database")}
    deployment = Deployment(template, names=names)
    glue = boto3.client("glue")
    glue.create_database(DatabaseInput={"Name": DATABASE})
    for table in _resources(template, "AWS::Glue::Table").values():
        glue.create_table(DatabaseName=DATABASE, TableInput=deployment.resolve(table["TableInput"]))
    s3, events, sqs = boto3.client("s3"), boto3.client("events"), boto3.client("sqs")
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    (rule,) = [r for r in _resources(template, "AWS::Events::Rule").values() if "fleet/parquet/" in json.dumps(r)]
    events.put_rule(Name="partition-landed", EventPattern=json.dumps(deployment.resolve(rule["EventPattern"])))
    queue = sqs.create_queue(QueueName="registration")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_targets(Rule="partition-landed", Targets=[{"Id": "registration", "Arn": arn}])
    return glue, sqs, queue


def _register_landed(registration, sqs, queue) -> list[dict]:
    """Every event the rule passed on, given to the registration function (its bundle, on the Lambda runtime's
    Python) as EventBridge gives it; the events."""
    received = []
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            received.append(json.loads(message["Body"]))
            answer = registration.invoke(received[-1], REGISTRATION_CONTEXT)
            assert "result" in answer, answer
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return received


@pytest.fixture
def registration(lambda_bundles, aws, tmp_path):
    """The partition registration function started from its bundle, as the stack configures it (its database)."""
    import os

    from tests.rehearsal.lambda_runtime import RuntimeFunction
    from tests.rehearsal.ledger_objects import DATABASE

    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    variables = {"LOG_LEVEL": "INFO", "FLEET_DATABASE": DATABASE, "AWS_REGION": region}
    runtime = RuntimeFunction("RegisterPartitions", lambda_bundles["RegisterPartitions"], variables, tmp_path / "r.log")
    yield runtime
    runtime.close()


@pytest.mark.integration
def test_the_devices_messages_through_firehose_give_its_totals_once_each(
    synthesized, device_messages, bucket, registration, tmp_path
):
    """Each rule's action as the template states it applied to the loop's messages in moto's Firehose (batched:
    several lines an object); every crossing sent twice (a redelivery) and, among them, one crossing cut short (a
    payload truncated on the way: not JSON). What moto delivered is partitioned and converted as Firehose does it
    (tests.rehearsal.firehose_conversion: Parquet under the stream's prefix and the device's folder, the cut line in
    its error output); each object S3 announces to EventBridge reaches the registration function through the
    template's rule, which registers its partition in Glue (the template's tables); the queries read the objects of
    the registered partitions, as Athena does. They give the device's totals exactly; malformed_records names the
    cut line (its error object, its text, why); every line is counted or named. A redelivered event registers
    nothing twice; a partition whose objects expire is dropped with the last."""
    import boto3

    from odctl.ledger_local import run_query
    from tests.rehearsal.firehose_conversion import convert_landed
    from tests.rehearsal.ledger_objects import landed_from_s3, stack_columns

    _, template = synthesized
    firehose, routes = _firehose_from_template(template, bucket)
    batches: dict[str, list[bytes]] = {}
    cut = next(p for t, p in device_messages if t.endswith("/counts"))[:-9]  # the first crossing, truncated
    for topic, payload in device_messages:
        for topic_filter, stream, separator in routes:
            if _matches(topic_filter, topic):
                batches.setdefault(stream, []).extend([payload + separator] * (2 if topic.endswith("/counts") else 1))
                if payload.startswith(cut):
                    batches[stream].append(cut + separator)
    for stream, records in batches.items():
        for first in range(0, len(records), 7):
            firehose.put_record_batch(
                DeliveryStreamName=stream, Records=[{"Data": r} for r in records[first : first + 7]]
            )
    s3 = boto3.client("s3")
    glue, sqs, queue = _catalog_from_template(template, bucket)  # after moto's raw objects: Firehose writes none
    assert convert_landed(s3, firehose, bucket, stack_columns())  # what Firehose's conversion makes of them
    events = _register_landed(registration, sqs, queue)
    registered = {
        (table.name, tuple(p["Values"]))
        for table in TABLES
        for p in glue.get_partitions(DatabaseName="fleet", TableName=table.name)["Partitions"]
    }
    assert {(table, values[1]) for table, values in registered} == {(t.name, "camera-07") for t in TABLES}
    assert all(re.fullmatch(r"[0-9]{4}/[0-9]{2}/[0-9]{2}/[0-9]{2}", values[0]) for _, values in registered)
    assert all(e["detail"]["object"]["key"].startswith("fleet/parquet/") for e in events)
    # moto's raw objects, which the stand-in replaces, name no partition: their deletion events dropped nothing
    created = [e for e in events if e["detail-type"] == "Object Created"]
    assert {e["detail-type"] for e in events} <= {"Object Created", "Object Deleted"} and created
    again = registration.invoke(created[0], REGISTRATION_CONTEXT)
    assert again == {"result": {"registered": []}}  # a redelivered event: the partition is there
    tables = landed_from_s3(s3, bucket, tmp_path, stack_columns(), glue=glue)
    written = landed_from_s3(s3, bucket, tmp_path / "all", stack_columns())
    assert {t: len(placed) for t, placed in tables.parquet.items()} == {
        t: len(placed) for t, placed in written.parquet.items()
    }  # every object Firehose wrote is under a registered partition
    parameters = period_parameters(*ALL_TIME, "camera-07")
    balance = run_query("net_balance", parameters, tables)
    final = [json.loads(p) for t, p in device_messages if t.endswith("/health")][-1]["counts"]["lines"]["middle"]
    got = {(r["class"], "in"): r["crossed_in"] for r in balance} | {
        (r["class"], "out"): r["crossed_out"] for r in balance
    }
    want = {(c, way): n for way in ("in", "out") for c, n in final[way].items()}
    assert {k: v for k, v in got.items() if v} == {k: v for k, v in want.items() if v}
    hourly = run_query("crossings_by_hour", parameters, tables)
    assert sum(r["crossings"] for r in hourly) == sum(want.values())
    (health,) = run_query("last_health", parameters[:1], tables)
    assert health["thing"] == "camera-07" and health["last_seq"] == sum(want.values())
    (bad,) = run_query("malformed_records", parameters[:1] * 3, tables)
    (holder,) = tables.rejected["counts"]
    assert (bad["ledger"], bad["source"], bad["body"]) == ("counts", holder[2], cut.decode() + "\n")
    assert bad["reason"].startswith("Firehose could not partition it (")  # not JSON: no thing to partition by
    assert holder[2].startswith(f"s3://{bucket}/fleet/errors/counts/partitioning-failed/20")
    stored = [json.loads(line) for line in _parquet_rows(tables.parquet["counts"])]
    assert len(stored) == 2 * sum(want.values()) == 2 * len({m["event_id"] for m in stored})  # each one twice
    assert run_query("crossing_gaps", gap_parameters(ALL_TIME[1]), tables) == []
    _expire_one_partition(s3, bucket, glue, sqs, queue, registration)


def _expire_one_partition(s3, bucket, glue, sqs, queue, registration) -> None:
    """The health table's partition's objects deleted (as the lifecycle rule expires them): through the rule and
    the registration bundle, the partition is dropped once the last is gone, and only then."""
    (partition,) = glue.get_partitions(DatabaseName="fleet", TableName="health")["Partitions"]
    folder = partition["StorageDescriptor"]["Location"].removeprefix(f"s3://{bucket}/")
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix=folder)["Contents"]]
    for number, key in enumerate(keys, 1):
        s3.delete_object(Bucket=bucket, Key=key)
        events = _register_landed(registration, sqs, queue)
        assert [e["detail-type"] for e in events] == ["Object Deleted"]
        left = glue.get_partitions(DatabaseName="fleet", TableName="health")["Partitions"]
        assert len(left) == (0 if number == len(keys) else 1)
    assert glue.get_partitions(DatabaseName="fleet", TableName="counts")["Partitions"]  # the other table's stay


def _parquet_rows(placed) -> list[str]:
    """The rows of the Parquet objects, each as JSON text (its columns' values)."""
    import pyarrow.parquet as pq

    return [json.dumps(row) for path, _, _ in placed for row in pq.read_table(path).to_pylist()]


def _spoilt(message: dict, **changes: object) -> str:
    """A real message with what the test breaks in it (a key set to ``None`` is removed), as one line."""
    spoilt = {k: v for k, v in {**message, **changes}.items() if v is not None}
    return json.dumps(spoilt, separators=(",", ":"))


def test_every_kind_of_malformed_line_is_named_and_none_changes_a_total_or_a_gap(tmp_path):
    """The real device's crossings (each delivered twice) and health, in both tables, beside one line of each way a
    message can be unreadable, each made from a real message: cut short, another message type on the stream, a
    required field gone, a seq that is no integer, an event_id of another seq, an unknown direction; in health an
    fps that is no number (in a report that says seq 9), a counts.seq that is no number, a cut line, a counts that
    is no object (its column a struct: Firehose cannot convert the record), a report with no thing (Firehose cannot
    partition it: the cut lines neither). The balance is
    the device's exactly, no gap is made up (the spoilt reports are the newest: read, they would speak for the
    stream), and malformed_records names every bad line, once, with its reason: every line counted or named."""
    from odctl.ledger_local import run_query
    from tests.rehearsal.ledger_objects import land_lines
    from tests.rehearsal.outbox_device import OutboxDevice

    device = OutboxDevice(tmp_path / "device")
    device.cross(6)
    device.deliver()
    report = device.health()
    crossings = [json.dumps(r["message"], separators=(",", ":")) for r in device.delivered()]
    first, second = (json.loads(c) for c in crossings[:2])
    unpartitioned, unconverted = "Firehose could not partition it", "Firehose could not convert it"
    bad_counts = {
        crossings[0][:-9]: unpartitioned,
        json.dumps(report, separators=(",", ":")): "type is not crossing",
        _spoilt(first, **{"class": None}): "missing or mistyped: class",
        _spoilt(second, seq=2.5): "missing or mistyped: seq",
        _spoilt(second, event_id=f"{device.counter.stream}-7"): "event_id is not <stream>-<seq>",
        _spoilt(first, direction="sideways"): "direction is neither in nor out",
    }
    later = report["timestamp"].replace(report["timestamp"][:4], str(int(report["timestamp"][:4]) + 1), 1)
    ahead = {**report["counts"], "seq": 9}  # were it read, seq 7-9 would be reported missing
    bad_health = {
        _spoilt(report, counts=ahead, fps="fast", timestamp=later): "missing or mistyped: fps",
        _spoilt(report, counts={**report["counts"], "seq": "six"}, timestamp=later): "missing or mistyped: counts.seq",
        json.dumps(report)[:-20]: unpartitioned,
        _spoilt(report, thing=None, timestamp=later): unpartitioned,
        _spoilt(report, counts="six", timestamp=later): unconverted,  # a struct's column
    }
    dt = "2026/12/05/09"
    lines = {
        "counts": [*crossings, *crossings, *bad_counts],
        "health": [*(json.dumps(r["message"]) for r in device.reports), *bad_health],
    }
    tables = land_lines(tmp_path / "bucket", lines, datetime(2026, 12, 5, 9, 30, tzinfo=UTC))
    folders = {unpartitioned: "partitioning-failed", unconverted: "format-conversion-failed"}
    holder = {
        (table.name, reason): f"s3://ledger/{table.rejected_prefix}{folders[reason]}/{dt}/object-1"
        if reason in folders
        else f"s3://ledger/{table.prefix}{dt}/{report['thing']}/object-1"
        for table in TABLES
        for reason in [*bad_counts.values(), *bad_health.values()]
    }
    balance = run_query("net_balance", period_parameters(*ALL_TIME), tables)
    door = report["counts"]["lines"]["door"]
    assert {(r["class"], r["crossed_in"], r["crossed_out"]) for r in balance} == {
        (c, door["in"].get(c, 0), door["out"].get(c, 0)) for c in {*door["in"], *door["out"]}
    }
    assert sum(r["crossed_in"] + r["crossed_out"] for r in balance) == device.counter.seq == 6
    assert run_query("crossing_gaps", gap_parameters(ALL_TIME[1]), tables) == []
    named = run_query("malformed_records", [dt, dt, dt], tables)
    assert sorted((r["ledger"], r["reason"].split(" (")[0], r["source"]) for r in named) == sorted(
        [("counts", reason, holder["counts", reason]) for reason in bad_counts.values()]
        + [("health", reason, holder["health", reason]) for reason in bad_health.values()]
    )
    for row in named:  # the record as sent, where Firehose rejected it; else the fields the table holds
        sent = [line for line in {**bad_counts, **bad_health} if row["body"] == line + "\n"]
        assert sent if row["reason"].split(" (")[0] in folders else f"thing={report['thing']}" in row["body"], row
    stored = len(_parquet_rows(tables.parquet["counts"]))
    refused = sum(len(path.read_text().splitlines()) for path, _, _ in tables.rejected["counts"])
    assert stored + refused == 2 * 6 + len(bad_counts)  # each: counted (sent twice) or named


def test_every_crossings_query_counts_a_crossings_first_copy_in_its_period_and_filters_alike(tmp_path):
    """Each crossings query reads the one ``{crossings}`` relation: a crossing once, its first copy to arrive, then
    the period and the filters applied to that copy. Two copies of one event that disagree (line, time) count it
    once, where the first says, in the balance, the hourly counts, the corrected balance's counted side and the
    review alike; an hour or a line that only the later copy names holds nothing."""
    from odctl.ledger_local import run_query
    from tests.rehearsal.ledger_objects import land_lines

    def crossing(line: str, hour: int) -> str:
        message = {"thing": "cam-1", "type": "crossing", "event_id": "s-1", "seq": 1, "line": line, "class": "car"}
        return json.dumps({**message, "direction": "in", "timestamp": f"2026-11-20T{hour:02d}:30:00Z"})

    first = land_lines(tmp_path, {"counts": [crossing("door", 9)]}, datetime(2026, 11, 20, 9, tzinfo=UTC))
    tables = land_lines(
        tmp_path, {"counts": [crossing("gate", 11)]}, datetime(2026, 11, 20, 11, tzinfo=UTC), into=first
    )
    since = datetime(2026, 11, 20, tzinfo=UTC)
    day = (since, since + timedelta(days=1))
    for line, counted in (("", 1), ("door", 1), ("gate", 0)):
        parameters = period_parameters(*day, "", line)
        assert sum(r["crossed_in"] for r in run_query("net_balance", parameters, tables)) == counted
        assert sum(r["crossings"] for r in run_query("crossings_by_hour", parameters, tables)) == counted
        assert (
            sum(r["counted_in"] for r in run_query("corrected_balance", corrected_parameters(*day, "", line), tables))
            == counted
        )
        assert len(run_query("crossings_for_review", review_parameters(*day, "", line), tables)) == counted
    (hourly,) = run_query("crossings_by_hour", period_parameters(*day), tables)
    assert (hourly["line"], hourly["period"].hour) == ("door", 9)
    later_hour = period_parameters(since + timedelta(hours=11), since + timedelta(hours=12))
    assert run_query("net_balance", later_hour, tables) == []


EMF_UNITS = {"Count", "Count/Second", "None", "Seconds", "Milliseconds", "Percent", "Bytes"}


def _emf_problems(record: dict) -> list[str]:
    """CloudWatch's Embedded Metric Format specification (the "Specification" page of the CloudWatch user guide):
    ``_aws`` with an integer ``Timestamp`` (ms) and ``CloudWatchMetrics``: directives of a Namespace, DimensionSets
    of at most 30 keys each naming a string member of the root, and Metrics whose names are numeric root members."""
    problems = []
    meta = record.get("_aws")
    if not isinstance(meta, dict) or not isinstance(meta.get("Timestamp"), int):
        return ["_aws.Timestamp: an integer of milliseconds"]
    for directive in meta.get("CloudWatchMetrics", []):
        if not isinstance(directive.get("Namespace"), str) or not 1 <= len(directive["Namespace"]) <= 1024:
            problems.append("Namespace")
        for dimension_set in directive.get("Dimensions", []):
            if len(dimension_set) > 30 or not all(isinstance(record.get(k), str) for k in dimension_set):
                problems.append(f"Dimensions {dimension_set}")
        for metric in directive.get("Metrics", []):
            value = record.get(metric.get("Name"))
            if not isinstance(value, int | float) or isinstance(value, bool) or metric.get("Unit") not in EMF_UNITS:
                problems.append(f"Metric {metric}")
    return problems


def _produced(messages: list[tuple[str, dict]]) -> set[tuple[str, str, tuple[str, ...]]]:
    """(namespace, metric, dimension names) of every datum the metrics rules' EMF makes of these messages (their
    SQL, which the stack deploys, evaluated on each: tests/rehearsal/iot_sql.py)."""
    produced = set()
    for topic, message in messages:
        for metric_set in (HEALTH_METRICS, CROSSING_METRICS):
            if _matches(metric_set.topic_filter, topic):
                record = iot_sql.select(rule_sql(metric_set), message, 1764000000000)  # the SQL text deployed
                assert _emf_problems(record) == [], record
                for directive in record["_aws"]["CloudWatchMetrics"]:
                    for dims in directive["Dimensions"]:
                        for metric in directive["Metrics"]:
                            produced.add((directive["Namespace"], metric["Name"], tuple(sorted(dims))))
    return produced


def _alarm_metrics(alarm: dict) -> list[dict]:
    """The metrics an alarm reads: its own, or each of its math expression's."""
    if "MetricName" in alarm:
        return [{k: alarm[k] for k in ("Namespace", "MetricName", "Dimensions") if k in alarm}]
    return [m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m]


def _emitted_elsewhere(template, metric: dict) -> bool:
    """Firehose's own delivery metrics of one of the stack's streams, the partition registration's (its function's
    errors, its dead-letter queue's messages), or the rule errors' metric filter's."""
    streams = set(_resources(template, "AWS::KinesisFirehose::DeliveryStream"))
    owned = {
        "AWS/Lambda": ("Errors", "FunctionName"),
        "AWS/SQS": ("ApproximateNumberOfMessagesVisible", "QueueName"),
        "AWS/Events": ("MatchedEvents", "RuleName"),
    }
    if metric["Namespace"] in owned:
        (dimension,) = metric["Dimensions"]
        kind = {"AWS/Lambda": "AWS::Lambda::Function", "AWS/SQS": "AWS::SQS::Queue", "AWS/Events": "AWS::Events::Rule"}[
            metric["Namespace"]
        ]
        logical = dimension["Value"]["Ref"] if "Ref" in dimension["Value"] else dimension["Value"]["Fn::GetAtt"][0]
        return (metric["MetricName"], dimension["Name"]) == owned[metric["Namespace"]] and logical in _resources(
            template, kind
        )
    if metric["Namespace"] == "AWS/Firehose":
        (dimension,) = metric["Dimensions"]
        return (
            metric["MetricName"] in FIREHOSE_METRICS
            and dimension["Name"] == "DeliveryStreamName"
            and dimension["Value"]["Ref"] in streams
        )
    filters = _resources(template, "AWS::Logs::MetricFilter").values()
    made = {(t["MetricNamespace"], t["MetricName"]) for f in filters for t in f["MetricTransformations"]}
    return not metric.get("Dimensions") and (metric["Namespace"], metric["MetricName"]) in made


@pytest.fixture(scope="module")
def alarmed(tmp_path_factory) -> dict:
    """The template with camera-07 among the devices that get alarms of their own."""
    from tests.infra.conftest import synth

    return synth(tmp_path_factory.mktemp("alarmed"), **{"edge-od:fleetAlarms": ALARMS})[1]


@pytest.mark.integration
def test_every_alarm_and_panel_reads_a_metric_that_is_emitted(device_messages, alarmed):
    """The EMF of the real loop's messages is valid; every alarm's metric (its namespace, name and dimensions) is
    one that EMF produces, or Firehose's own for one of the stack's streams, or the rule errors' metric filter's;
    so is every dashboard panel's. The alarms the ledger needs are all there."""
    template = alarmed
    produced = _produced([(t, json.loads(p)) for t, p in device_messages])
    assert {name for _, name, _ in produced} >= {"HealthReports", "FPS", "Crossings", "CountsLost", "OutboxPending"}
    rules = [r["TopicRulePayload"]["Sql"] for r in _resources(template, "AWS::IoT::TopicRule").values()]
    assert rule_sql(HEALTH_METRICS) in rules and rule_sql(CROSSING_METRICS) in rules
    (errors,) = _resources(template, "AWS::Logs::MetricFilter").values()
    assert errors["FilterPattern"] == '{ $.ruleName = "*" }'  # every error action message names its rule
    alarms = {k.removeprefix("FleetMonitoring")[:-8]: a for k, a in _alarms(template).items()}  # less the hash
    for alarm in alarms.values():
        assert alarm["AlarmActions"] and alarm["OKActions"]
        for metric in _alarm_metrics(alarm):
            dims = tuple(sorted(d["Name"] for d in metric.get("Dimensions", [])))
            assert (metric["Namespace"], metric["MetricName"], dims) in produced or _emitted_elsewhere(
                template, metric
            ), alarm
    tables = [t.name for t in TABLES]
    assert set(alarms) == {
        "FleetSilent", "CountsLost", "OutboxFilling", "RuleErrors", "Silentcamera07", "LowFpscamera07",
        "CountsLostcamera07", "OutboxFillingcamera07", "CameraFault", "CameraFaultcamera07",
        *(f"Ledger{w}{t}" for w in ("Stale", "DeliveryFailing", "Rejected", "PartitionsExceeded") for t in tables),
        "LedgerPartitionErrors", "LedgerPartitionsUnregistered", "LedgerRefused",
    }  # fmt: skip
    _check_dashboard(template, produced)


def _alarms(template) -> dict[str, dict]:
    return _resources(template, "AWS::CloudWatch::Alarm")


def _check_dashboard(template, produced) -> None:
    (dashboard,) = _resources(template, "AWS::CloudWatch::Dashboard").values()
    parts = dashboard["DashboardBody"]["Fn::Join"][1]
    body = json.loads("".join(p if isinstance(p, str) else json.dumps(p).replace('"', "'") for p in parts))
    titles = " ".join(w["properties"]["title"] for w in body["widgets"])
    assert "deliveries" in titles and "Crossings lost" in titles and "Outbox" in titles and "Firehose" in titles
    for widget in body["widgets"]:
        for metric in widget["properties"]["metrics"]:
            if "expression" in metric[-1]:
                schema, name = re.match(r"SEARCH\('\{([^}]+)\} MetricName=\"(\w+)\"", metric[-1]["expression"]).groups()
                namespace, *dims = schema.split(",")
                assert (namespace, name, tuple(sorted(dims))) in produced and namespace == NAMESPACE
            else:
                namespace, name, *dims = [m for m in metric if not isinstance(m, dict)]
                assert namespace in ("AWS/Firehose", NAMESPACE) and (name in FIREHOSE_METRICS or not dims), metric


def _value(cloudwatch, metric: dict, stat: dict, moment: datetime) -> float | None:
    """The alarm's statistic of ``metric`` over the period holding ``moment``, as CloudWatch gives it."""
    from datetime import timedelta

    period = timedelta(seconds=stat["Period"])
    start = moment - timedelta(seconds=moment.timestamp() % stat["Period"])
    points = cloudwatch.get_metric_statistics(
        Namespace=metric["Namespace"],
        MetricName=metric["MetricName"],
        Dimensions=metric.get("Dimensions", []),
        StartTime=start,
        EndTime=start + period,
        Period=stat["Period"],
        Statistics=[stat["Stat"]],
    )["Datapoints"]
    return max((p[stat["Stat"]] for p in points), default=None)


def _breaching(cloudwatch, alarm: dict, moment: datetime) -> bool:
    """Whether the alarm's metric (a MAX expression's, the greatest of its metrics) crosses its threshold then."""
    if "MetricName" in alarm:
        reads = [(_alarm_metrics(alarm)[0], {"Period": alarm["Period"], "Stat": alarm["Statistic"]})]
    else:
        (expression,) = [m["Expression"] for m in alarm["Metrics"] if "Expression" in m]
        assert expression.startswith("MAX(")
        reads = [(m["MetricStat"]["Metric"], m["MetricStat"]) for m in alarm["Metrics"] if "MetricStat" in m]
    values = [v for v in (_value(cloudwatch, metric, stat, moment) for metric, stat in reads) if v is not None]
    assert values, f"no data where the alarm reads: {reads}"  # its namespace, name and dimensions are emitted
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    return max(values) >= alarm["Threshold"]


@pytest.mark.integration
def test_a_device_that_lost_crossings_and_filled_its_outbox_sets_its_alarms_off(alarmed, aws, tmp_path):
    """The real device's health, through the stack's health rule (EMF) into CloudWatch (moto), read as each alarm
    reads it: a device that kept every crossing sets off neither CountsLost nor OutboxFilling (its own or the
    fleet's); one whose outbox overflowed (capacity 2, six crossings with the broker away: two lost) sets off all
    four."""
    import boto3

    from tests.rehearsal.device_health import report
    from tests.rehearsal.outbox_device import OutboxDevice

    cloudwatch = boto3.client("cloudwatch")
    healthy, overflowing = (OutboxDevice(tmp_path / n, capacity=c) for n, c in (("ok", 100), ("full", 2)))
    healthy.cross(4)
    healthy.deliver()
    overflowing.cross(6)
    calm, later = datetime(2026, 12, 5, 9, 2, tzinfo=UTC), datetime(2026, 12, 5, 11, 2, tzinfo=UTC)
    report([healthy.health()], at=calm.timestamp())
    full = overflowing.health()
    assert full["counts_lost"] == 2 and full["counts"]["outbox"]["full"] and full["counts"]["outbox"]["nearly_full"]
    report([full], at=later.timestamp())
    watched = {k: a for k, a in _alarms(alarmed).items() if any(n in k for n in ("CountsLost", "OutboxFilling"))}
    assert len(watched) == 4
    for alarm in watched.values():
        assert not _breaching(cloudwatch, alarm, calm), alarm["AlarmDescription"]
        assert _breaching(cloudwatch, alarm, later), alarm["AlarmDescription"]
