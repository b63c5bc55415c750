"""The fleet's CloudWatch metrics, with the device as a dimension: Embedded Metric Format written by IoT rules.

AWS IoT's ``cloudwatchMetric`` action takes no dimensions, so each metrics rule selects the message's fields plus an
``_aws`` object (EMF's metadata) and its ``cloudwatchLogs`` action writes the result to a log group; CloudWatch Logs
extracts the metrics. No function runs per message. The rules' SQL is rendered from ``METRIC_SETS`` here, and
``emf_record`` says what that SQL yields for a message, so the tests validate real messages' EMF against the
specification and the alarms and dashboard against the names and dimensions produced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

NAMESPACE = "EdgeObjectDetector/Fleet"


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    field: str | None  # the message's field (0 where a device leaves it out); None: 1 per message


@dataclass(frozen=True)
class MetricSet:
    topic_filter: str
    dimensions: tuple[str, ...]
    metrics: tuple[Metric, ...]
    fleetwide: bool = False  # also without dimensions: the fleet's total, which goes missing when all are silent


HEALTH_METRICS = MetricSet(
    "od/+/health",
    ("thing",),
    (
        Metric("HealthReports", "Count", None),
        Metric("FPS", "Count/Second", "fps"),
        Metric("DetectionsPerFrame", "None", "detections_per_frame"),  # since the previous health message
        Metric("FramesDropped", "Count", "frames_dropped"),  # since the component started
        Metric("PublishErrors", "Count", "publish_errors"),  # since the component started
        Metric("SourceConnected", "None", "source_connected"),
        Metric("CountsLost", "Count", "counts_lost"),
    ),
    fleetwide=True,
)
CROSSING_METRICS = MetricSet(
    "od/+/counts", ("thing", "line", "direction", "class"), (Metric("Crossings", "Count", None),)
)
METRIC_SETS = (HEALTH_METRICS, CROSSING_METRICS)


def _metadata(metric_set: MetricSet) -> dict[str, Any]:
    return {
        "CloudWatchMetrics": [
            {
                "Namespace": NAMESPACE,
                "Dimensions": [list(metric_set.dimensions), *([[]] if metric_set.fleetwide else [])],
                "Metrics": [{"Name": m.name, "Unit": m.unit} for m in metric_set.metrics],
            }
        ]
    }


def rule_sql(metric_set: MetricSet) -> str:
    """The rule's SELECT: the message as it is (its dimensions among its fields: ``class`` is never named in the
    SQL), each metric under its name, and EMF's ``_aws`` (IoT SQL object and array literals)."""
    metadata = json.dumps(_metadata(metric_set)).replace('"', "'")
    timestamped = "{'Timestamp': timestamp(), " + metadata[1:]
    items = ["*"]
    for metric in metric_set.metrics:
        if metric.field is None:
            items.append(f"1 AS {metric.name}")
        else:
            value = f"CASE isUndefined({metric.field}) WHEN true THEN 0 ELSE {metric.field} END"
            items.append(f"{value} AS {metric.name}")
    return f"SELECT {', '.join(items)}, {timestamped} AS _aws FROM '{metric_set.topic_filter}'"


def emf_record(metric_set: MetricSet, message: dict[str, Any], timestamp_ms: int) -> dict[str, Any]:
    """What ``rule_sql`` selects from ``message``: the log event CloudWatch Logs reads as EMF."""
    record: dict[str, Any] = dict(message)
    for metric in metric_set.metrics:
        record[metric.name] = 1 if metric.field is None else message.get(metric.field, 0)
    return {**record, "_aws": {"Timestamp": timestamp_ms, **_metadata(metric_set)}}
