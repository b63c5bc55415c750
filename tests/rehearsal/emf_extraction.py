"""What CloudWatch Logs does with an Embedded Metric Format record written to a log group: each metric of each
directive, once per dimension set, becomes a metric datum (moto's CloudWatch stores it). The record is what the IoT
rule's SQL makes of a device message, evaluated from the SQL text the stack deploys (tests/rehearsal/iot_sql.py;
the records are checked against the specification by tests/infra/test_fleet_data.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3


def metric_data(record: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(namespace, datum) for each metric value the record carries."""
    metadata = record["_aws"]
    timestamp = dt.datetime.fromtimestamp(metadata["Timestamp"] / 1000, dt.UTC)
    out = []
    for directive in metadata["CloudWatchMetrics"]:
        for dimensions in directive["Dimensions"]:
            for metric in directive["Metrics"]:
                datum = {
                    "MetricName": metric["Name"],
                    "Dimensions": [{"Name": d, "Value": str(record[d])} for d in dimensions],
                    "Value": float(record[metric["Name"]]),
                    "Unit": metric.get("Unit", "None"),
                    "Timestamp": timestamp,
                }
                out.append((directive["Namespace"], datum))
    return out


def put_records(records: list[dict[str, Any]]) -> int:
    cloudwatch = boto3.client("cloudwatch")
    data = [item for record in records for item in metric_data(record)]
    for namespace in {n for n, _ in data}:
        ours = [d for n, d in data if n == namespace]
        for first in range(0, len(ours), 500):
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=ours[first : first + 500])
    return len(data)
