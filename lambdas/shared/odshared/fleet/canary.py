"""Is the new model healthy on the canary devices? Each device's health metrics over the soak, read from
CloudWatch (odshared.fleet.metrics), against bounds and against the same device's soak-long window before the
deployment (the previous model): a device that stopped reporting, runs slower, fails to publish, lost its camera
or sees far more or far fewer boxes than before fails the canary, and the reason names the device and the signal.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from odshared.core.log import log_event
from odshared.fleet.metrics import HEALTH_METRICS, NAMESPACE

logger = logging.getLogger(__name__)
PERIOD = 60  # seconds: the finest period CloudWatch keeps for standard-resolution metrics beyond 3 hours
STATISTICS = {  # metric -> statistic read; counters since the component started are read at their maximum
    "HealthReports": "Sum",
    "FPS": "Average",
    "PublishErrors": "Maximum",
    "SourceConnected": "Average",
    "DetectionsPerFrame": "Average",
}
assert set(STATISTICS) <= {m.name for m in HEALTH_METRICS.metrics}


@dataclass(frozen=True)
class CanaryBounds:
    """cdk.json ``edge-od:promotion`` ``canary``."""

    min_fps_ratio: float
    max_publish_errors: float
    min_source_connected: float
    min_detections_ratio: float
    max_detections_ratio: float

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> CanaryBounds:
        return cls(
            float(raw["minFpsRatio"]),
            float(raw["maxPublishErrors"]),
            float(raw["minSourceConnected"]),
            float(raw["minDetectionsRatio"]),
            float(raw["maxDetectionsRatio"]),
        )


def canary_things(iot: Any, group: str) -> list[str]:
    things: list[str] = []
    for page in iot.get_paginator("list_things_in_thing_group").paginate(thingGroupName=group, recursive=True):
        things += page.get("things", [])
    return sorted(things)


def _queries(things: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {
            "Id": f"m{index}_{metric.lower()}",
            "MetricStat": {
                "Metric": {
                    "Namespace": NAMESPACE,
                    "MetricName": metric,
                    "Dimensions": [{"Name": "thing", "Value": thing}],
                },
                "Period": PERIOD,
                "Stat": stat,
            },
            "ReturnData": True,
        }
        for index, thing in enumerate(things)
        for metric, stat in STATISTICS.items()
    ]


def read_window(
    cloudwatch: Any, things: Sequence[str], start: dt.datetime, end: dt.datetime
) -> dict[str, dict[str, float | None]]:
    """thing -> metric -> the window's value (a sum of sums, a mean of averages, a maximum of maxima), None where
    the device sent nothing in the window."""
    values: dict[str, list[float]] = {}
    queries = _queries(things)
    for first in range(0, len(queries), 500):  # GetMetricData takes at most 500 queries
        kwargs: dict[str, Any] = {"MetricDataQueries": queries[first : first + 500], "StartTime": start, "EndTime": end}
        while True:
            page = cloudwatch.get_metric_data(**kwargs)
            for result in page.get("MetricDataResults", []):
                values.setdefault(result["Id"], []).extend(float(v) for v in result.get("Values", []))
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    window: dict[str, dict[str, float | None]] = {}
    for index, thing in enumerate(things):
        window[thing] = {}
        for metric, stat in STATISTICS.items():
            points = values.get(f"m{index}_{metric.lower()}", [])
            if not points:
                window[thing][metric] = None
            elif stat == "Sum":
                window[thing][metric] = sum(points)
            elif stat == "Maximum":
                window[thing][metric] = max(points)
            else:
                window[thing][metric] = sum(points) / len(points)
    return window


def _problems(
    thing: str, now: Mapping[str, float | None], before: Mapping[str, float | None], b: CanaryBounds
) -> list[str]:
    if not now["HealthReports"]:
        return [f"{thing}: no health report since the deployment (HealthReports)"]
    problems = []
    fps, fps_before = now["FPS"] or 0.0, before["FPS"]
    if fps_before and fps < b.min_fps_ratio * fps_before:
        problems.append(f"{thing}: FPS {fps:.2f}, {fps / fps_before:.0%} of the {fps_before:.2f} before (minFpsRatio)")
    if (now["PublishErrors"] or 0.0) > b.max_publish_errors:
        problems.append(f"{thing}: {now['PublishErrors']:g} publish errors (maxPublishErrors {b.max_publish_errors:g})")
    connected = now["SourceConnected"] if now["SourceConnected"] is not None else 0.0
    if connected < b.min_source_connected:
        problems.append(f"{thing}: camera connected {connected:.0%} of the soak (minSourceConnected)")
    per_frame, per_frame_before = now["DetectionsPerFrame"] or 0.0, before["DetectionsPerFrame"]
    if per_frame_before:
        ratio = per_frame / per_frame_before
        if not b.min_detections_ratio <= ratio <= b.max_detections_ratio:
            problems.append(
                f"{thing}: {per_frame:.2f} detections per frame against {per_frame_before:.2f} with the previous "
                f"model (DetectionsPerFrame ratio {ratio:.2f}, outside "
                f"{b.min_detections_ratio:g}-{b.max_detections_ratio:g})"
            )
    return problems


def check_canary(
    group: str, deployed_at: str, bounds: CanaryBounds, iot: Any, cloudwatch: Any, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The canary's verdict over [deployed_at, now], compared with the window of the same length before."""
    end = now or dt.datetime.now(dt.UTC)
    start = dt.datetime.fromisoformat(deployed_at)
    things = canary_things(iot, group)
    if not things:
        return {"healthy": False, "reason": f"the canary group {group} has no devices", "devices": {}}
    after = read_window(cloudwatch, things, start, end)
    before = read_window(cloudwatch, things, start - (end - start), start)
    problems = [p for thing in things for p in _problems(thing, after[thing], before[thing], bounds)]
    verdict = {
        "healthy": not problems,
        "reason": "; ".join(problems) if problems else f"{len(things)} canary devices within bounds",
        "devices": {t: {"soak": after[t], "before": before[t]} for t in things},
        "window": {"start": start.isoformat(), "end": end.isoformat()},
    }
    log_event(logger, "canary.checked", group=group, healthy=verdict["healthy"], reason=verdict["reason"])
    return verdict
