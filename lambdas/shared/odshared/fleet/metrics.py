"""The fleet's CloudWatch metrics, with the device as a dimension: Embedded Metric Format written by IoT rules.

AWS IoT's ``cloudwatchMetric`` action takes no dimensions, so each metrics rule selects the message's fields plus an
``_aws`` object (EMF's metadata) and its ``cloudwatchLogs`` action writes the result to a log group; CloudWatch Logs
extracts the metrics. No function runs per message. The rules' SQL is rendered from ``METRIC_SETS`` here; the
tests evaluate that SQL text on real messages (tests/rehearsal/iot_sql.py) and validate the EMF it makes against
the specification, and the alarms and dashboard against the names and dimensions produced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

NAMESPACE = "EdgeObjectDetector/Fleet"
MODEL_DIMENSION = "ModelComponent"  # the model component version a health report was sent by


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    field: str | None  # the message's field, dotted when nested (0 where a device leaves it out); None: 1 per message
    flag: bool = False  # a true/false field: 1 when true, else 0 (EMF's values are numbers)


@dataclass(frozen=True)
class MetricSet:
    topic_filter: str
    dimensions: tuple[str, ...]
    metrics: tuple[Metric, ...]
    fleetwide: bool = False  # also without dimensions: the fleet's total, which goes missing when all are silent
    # further dimension sets, and the values they need that a message may leave out: (name, field, default)
    extra_dimensions: tuple[tuple[str, ...], ...] = ()
    derived: tuple[tuple[str, str, str], ...] = ()


HEALTH_METRICS = MetricSet(
    "od/+/health",
    ("thing",),
    (
        Metric("HealthReports", "Count", None),
        Metric("FPS", "Count/Second", "fps"),
        Metric("DetectionsPerFrame", "None", "detections_per_frame"),  # since the previous health message
        Metric("FramesDropped", "Count", "frames_dropped"),  # since the component started
        # since the component started: attempts refused and tried again (a blip, delivered later), and detections
        # and health messages given up (harm: a canary's maxPublishErrors bound reads it, with CountsLost)
        Metric("PublishRetries", "Count", "publish_retries"),
        Metric("DeliveryFailures", "Count", "delivery_failures"),
        Metric("SourceConnected", "None", "source_connected"),
        Metric("CountsLost", "Count", "counts_lost"),  # since the component started
        # the crossings outbox (issue 34): how many await delivery; close to its bound; past it (not kept on disk)
        Metric("OutboxPending", "Count", "counts.outbox.pending"),
        Metric("OutboxNearlyFull", "None", "counts.outbox.nearly_full", flag=True),
        Metric("OutboxFull", "None", "counts.outbox.full", flag=True),
        # 1 while the camera is covered, dark, overexposed, defocused, moved or frozen (issue 36); health's
        # ``camera.state`` says which
        Metric("CameraFault", "None", "camera_fault"),
    ),
    fleetwide=True,
    # per device and model component version: a canary counts only the reports of the version it deployed (a device
    # that never switched, or switched back, sends none under it); "none" where the device does not say (older code)
    extra_dimensions=(("thing", MODEL_DIMENSION),),
    derived=((MODEL_DIMENSION, "model_component", "none"),),
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
                "Dimensions": [
                    list(metric_set.dimensions),
                    *(list(extra) for extra in metric_set.extra_dimensions),
                    *([[]] if metric_set.fleetwide else []),
                ],
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
    for name, field, default in metric_set.derived:
        items.append(f"CASE isUndefined({field}) WHEN true THEN '{default}' ELSE {field} END AS {name}")
    for metric in metric_set.metrics:
        if metric.field is None:
            items.append(f"1 AS {metric.name}")
        elif metric.flag:  # CASE of an Undefined value is Undefined (IoT SQL's Case statements): tested first
            value = f"CASE {metric.field} WHEN true THEN 1 ELSE 0 END"
            items.append(f"CASE isUndefined({metric.field}) WHEN true THEN 0 ELSE {value} END AS {metric.name}")
        else:
            value = f"CASE isUndefined({metric.field}) WHEN true THEN 0 ELSE {metric.field} END"
            items.append(f"{value} AS {metric.name}")
    return f"SELECT {', '.join(items)}, {timestamped} AS _aws FROM '{metric_set.topic_filter}'"
