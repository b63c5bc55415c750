"""The counts ledger: the rules, streams, tables and named queries in the template, and the device loop's real
messages through moto's Firehose into S3, where the named queries (unchanged) give the device's totals."""

from __future__ import annotations

import json
import re

import pytest

from odshared.fleet.ledger import TABLES, named_queries, period_parameters
from tests.conftest import REPO

SCHEMA_TYPES = {"string": "string", "integer": "bigint", "number": "double", "object": "struct", "boolean": "boolean"}


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


def test_the_tables_columns_are_the_messages_fields(synthesized):
    _, template = synthesized
    tables = {t["TableInput"]["Name"]: t["TableInput"] for t in _resources(template, "AWS::Glue::Table").values()}
    schemas = {"counts": "counts", "health": "health"}
    for name, schema_name in schemas.items():
        schema = json.loads((REPO / "edge_component/schemas" / f"{schema_name}.schema.json").read_text())
        columns = {c["Name"]: c["Type"] for c in tables[name]["StorageDescriptor"]["Columns"]}
        extra = schema.get("additionalProperties")
        counters = extra.get("description", "") if isinstance(extra, dict) else ""
        for column, kind in columns.items():
            field = schema["properties"].get(column)
            if field is None:  # a counter: documented among the health message's top-level numbers
                assert name == "health" and column in counters, (name, column)
                continue
            assert kind.split("<")[0] == SCHEMA_TYPES[field.get("type", "string")], (name, column, kind)
        if name == "counts":
            assert set(columns) == set(schema["properties"])
        assert tables[name]["Parameters"]["projection.enabled"] == "true"
        assert tables[name]["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    queries = _resources(template, "AWS::Athena::NamedQuery")
    assert {q["Name"] for q in queries.values()} == {q.name for q in named_queries()}


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


@pytest.mark.integration
def test_the_devices_messages_through_firehose_give_its_totals_once_each(synthesized, device_messages, bucket):
    """Each rule's action as the template states it (its topic, its stream's S3 layout, its separator) applied to
    the loop's messages in moto's Firehose; the named queries then run on what landed in S3. Every crossing sent
    twice (a redelivery) changes nothing."""
    import boto3

    from odctl.ledger_local import records_from_s3, run_query

    _, template = synthesized
    streams = _resources(template, "AWS::KinesisFirehose::DeliveryStream")
    firehose = boto3.client("firehose")
    for logical, props in streams.items():
        destination = {
            **props["ExtendedS3DestinationConfiguration"],
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
    delivered = 0
    for topic, payload in device_messages:
        for topic_filter, stream, separator in routes:
            if _matches(topic_filter, topic):
                copies = 2 if topic.endswith("/counts") else 1
                for _ in range(copies):
                    firehose.put_record(DeliveryStreamName=stream, Record={"Data": payload + separator})
                delivered += 1
    assert delivered >= 3
    tables = records_from_s3(boto3.client("s3"), bucket)
    crossings = [m for m, _ in tables["counts"]]
    assert crossings and len(crossings) == 2 * len({m["event_id"] for m in crossings})  # every one twice in S3
    from datetime import UTC, datetime

    parameters = period_parameters(datetime(2026, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC), "camera-07")
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


@pytest.mark.integration
def test_the_emf_of_real_messages_is_valid_and_feeds_the_alarms_and_dashboard(device_messages, tmp_path):
    from odshared.fleet.metrics import CROSSING_METRICS, HEALTH_METRICS, NAMESPACE, emf_record, rule_sql
    from tests.infra.conftest import synth

    produced = set()
    for topic, payload in device_messages:
        for metric_set in (HEALTH_METRICS, CROSSING_METRICS):
            if _matches(metric_set.topic_filter, topic):
                record = emf_record(metric_set, json.loads(payload), 1764000000000)
                assert _emf_problems(record) == [], record
                for directive in record["_aws"]["CloudWatchMetrics"]:
                    for dims in directive["Dimensions"]:
                        for metric in directive["Metrics"]:
                            produced.add((directive["Namespace"], metric["Name"], tuple(sorted(dims))))
    assert {name for _, name, _ in produced} >= {"HealthReports", "FPS", "Crossings", "PublishErrors"}
    alarms_config = {"silenceMinutes": 10, "fpsFloor": 2, "devices": ["camera-07"]}
    _, template = synth(tmp_path, **{"edge-od:fleetAlarms": alarms_config})
    rules = [r["TopicRulePayload"]["Sql"] for r in _resources(template, "AWS::IoT::TopicRule").values()]
    assert rule_sql(HEALTH_METRICS) in rules and rule_sql(CROSSING_METRICS) in rules
    alarms = _resources(template, "AWS::CloudWatch::Alarm")
    assert {a["AlarmDescription"].split(" ")[0] for a in alarms.values()} >= {"no", "camera-07"}
    for alarm in alarms.values():
        assert alarm["TreatMissingData"] == "breaching" and alarm["AlarmActions"]
        dims = tuple(sorted(d["Name"] for d in alarm.get("Dimensions", [])))
        assert (alarm["Namespace"], alarm["MetricName"], dims) in produced, alarm
    assert len(alarms) == 3  # the fleet's silence, and camera-07's silence and low FPS
    (dashboard,) = _resources(template, "AWS::CloudWatch::Dashboard").values()
    parts = dashboard["DashboardBody"]["Fn::Join"][1]
    body = json.loads("".join(p if isinstance(p, str) else "region" for p in parts))
    expressions = [m[0]["expression"] for w in body["widgets"] for m in w["properties"]["metrics"]]
    searches = [re.match(r"SEARCH\('\{([^}]+)\} MetricName=\"(\w+)\"", e).groups() for e in expressions]
    assert len(searches) == 4
    for schema, metric in searches:
        namespace, *dims = schema.split(",")
        assert (namespace, metric, tuple(sorted(dims))) in produced and namespace == NAMESPACE
