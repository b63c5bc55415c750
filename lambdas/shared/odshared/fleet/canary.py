"""Is the new model healthy on the canary devices? Judged per device, on evidence about the new model only.

A health report is evidence about a model only when it names it: devices report the model component version they
run (``model_component``), and the stack's metrics rule keeps it as the ``ModelComponent`` dimension. So the soak
reads, for each canary device, the reports of the new version alone (CloudWatch rounds GetMetricData's StartTime
down to the minute; a dimension only the new model emits keeps the old model's reports out whatever the rounding),
from the moment Greengrass says the device applied the deployment (ListEffectiveDeployments), for a full soak on
that device. The device must then still run the new version (ListInstalledComponents) and have reported all along.
A device whose canary deployment failed (a conflicting pin in another of its groups, a component that broke and
was rolled back), that never applied it, that runs another version at the end (fell back), that sent no report of
the new version (it dies on start), went silent part-way, runs slower, stopped delivering, lost its camera or sees
far more or far fewer boxes than with the previous model fails the canary; the reason names the device and why.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from odshared.core.log import log_event
from odshared.core.settings import CanarySettings
from odshared.fleet.metrics import HEALTH_METRICS, MODEL_DIMENSION, NAMESPACE

logger = logging.getLogger(__name__)
PERIOD = 60  # seconds: the finest period CloudWatch keeps for standard-resolution metrics beyond 3 hours
STATISTICS = {  # metric -> statistic read; counters since the component started are read at their maximum
    "HealthReports": "Sum",
    "FPS": "Average",
    "DeliveryFailures": "Maximum",  # messages given up; a retried publish (PublishRetries) is no harm
    "CountsLost": "Maximum",
    "SourceConnected": "Average",
    "DetectionsPerFrame": "Average",
}
assert set(STATISTICS) <= {m.name for m in HEALTH_METRICS.metrics}
# health goes at QoS 0 and a report can be lost; fewer than this share of the reports the interval promises over a
# device's soak is a device that went silent part-way
MIN_REPORT_RATIO = 0.5
APPLIED = ("SUCCEEDED", "COMPLETED")
WAITING = ("QUEUED", "IN_PROGRESS")
HEALTHY, UNHEALTHY, SOAKING = "healthy", "unhealthy", "soaking"
# the stack's CanaryThingGroup output where none is configured (CloudFormation takes no empty output; no thing group
# name holds parentheses)
NO_CANARY = "(none)"


@dataclass(frozen=True)
class CanaryRun:
    """What the canary step deployed (the deploy step's result) and how long each device must run it."""

    group: str
    deployment_id: str
    deployed_at: dt.datetime
    component: str  # the model component's name
    version: str  # the version under test
    previous_version: str | None  # the model the group ran before (None: the first deployment ever)
    soak_seconds: int
    health_interval: float
    fleet_group: str = ""  # where the version goes after the canary: no canary device may be in it too

    @classmethod
    def from_state(cls, canary: Mapping[str, Any], plan: Mapping[str, Any]) -> CanaryRun:
        name = plan["component"]["componentName"]
        before = (canary.get("previous") or {}).get(name) or {}
        return cls(
            canary["thingGroup"],
            canary["deploymentId"],
            dt.datetime.fromisoformat(canary["deployedAt"]),
            name,
            plan["component"]["componentVersion"],
            before.get("componentVersion"),
            int(plan["soakSeconds"]),
            float(canary.get("healthIntervalSeconds") or PERIOD),
            str(plan.get("thingGroup") or ""),
        )


@dataclass
class DeviceVerdict:
    state: str
    problems: list[str] = field(default_factory=list)
    wait_seconds: float = 0.0
    evidence: dict[str, Any] = field(default_factory=dict)


def canary_things(iot: Any, group: str) -> list[str]:
    things: list[str] = []
    for page in iot.get_paginator("list_things_in_thing_group").paginate(thingGroupName=group, recursive=True):
        things += page.get("things", [])
    return sorted(things)


def in_both_groups(
    iot: Any, canary_group: str, fleet_group: str, canary_devices: Sequence[str] | None = None
) -> list[str]:
    """Canary devices that are in the fleet group too. Greengrass sends such a device both groups' deployments;
    the two pins of the model component conflict, the device fails the canary's and keeps the fleet's model, so
    its soak says nothing about the new one: refused on sight, with what to do, instead of found out at the end.
    ``canary_devices``: the canary group's devices where the caller has listed them already."""
    if not canary_group or not fleet_group or canary_group == fleet_group:
        return []
    canary = canary_things(iot, canary_group) if canary_devices is None else canary_devices
    return sorted(set(canary) & set(canary_things(iot, fleet_group)))


def both_groups_reason(things: Sequence[str], canary_group: str, fleet_group: str) -> str:
    """The same words for the canary's verdict and ``odctl model approve``'s warning."""
    return (
        f"{', '.join(things)} in both the canary group {canary_group} and the fleet group {fleet_group}: such a "
        "device gets both groups' deployments and keeps the fleet's model, so its canary proves nothing; take it "
        f"out of one (aws iot remove-thing-from-thing-group --thing-group-name {fleet_group} --thing-name "
        f"{things[0]}), then approve the version again (odctl model approve VERSION --override)"
    )


def _queries(thing: str, model: str) -> list[dict[str, Any]]:
    dimensions = [{"Name": "thing", "Value": thing}, {"Name": MODEL_DIMENSION, "Value": model}]
    return [
        {
            "Id": metric.lower(),
            "MetricStat": {
                "Metric": {"Namespace": NAMESPACE, "MetricName": metric, "Dimensions": dimensions},
                "Period": PERIOD,
                "Stat": stat,
            },
            "ReturnData": True,
        }
        for metric, stat in STATISTICS.items()
    ]


def read_window(
    cloudwatch: Any, thing: str, model: str, start: dt.datetime, end: dt.datetime
) -> dict[str, float | None]:
    """metric -> the window's value for the device's reports as ``model`` (a sum of sums, a mean of averages, a
    maximum of maxima), None where it sent none; ``LastReport``: the start of the last period holding one."""
    points: dict[str, list[tuple[dt.datetime, float]]] = {}
    kwargs: dict[str, Any] = {"MetricDataQueries": _queries(thing, model), "StartTime": start, "EndTime": end}
    while True:
        page = cloudwatch.get_metric_data(**kwargs)
        for result in page.get("MetricDataResults", []):
            pairs = zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
            points.setdefault(result["Id"], []).extend((t, float(v)) for t, v in pairs)
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    window: dict[str, float | None] = {}
    for metric, stat in STATISTICS.items():
        values = [v for _, v in points.get(metric.lower(), [])]
        if not values:
            window[metric] = None
        elif stat == "Sum":
            window[metric] = sum(values)
        elif stat == "Maximum":
            window[metric] = max(values)
        else:
            window[metric] = sum(values) / len(values)
    stamps = [t for t, _ in points.get("healthreports", [])]
    window["LastReport"] = max(stamps).timestamp() if stamps else None
    return window


def _first(call: Any, items: str, match: Callable[[Any], bool], **kwargs: Any) -> dict[str, Any] | None:
    """The first item of a Greengrass listing (``items`` of each page, followed by ``nextToken``) ``match`` accepts."""
    while True:
        page = call(**kwargs)
        for item in page.get(items, []):
            if match(item):
                return dict(item)
        if not page.get("nextToken"):
            return None
        kwargs["nextToken"] = page["nextToken"]


def _effective(greengrass: Any, thing: str, deployment_id: str) -> dict[str, Any] | None:
    """The device's own record of the deployment (None: it has not been sent it, or it is no core device yet)."""
    try:
        return _first(
            greengrass.list_effective_deployments,
            "effectiveDeployments",
            lambda item: item.get("deploymentId") == deployment_id,
            coreDeviceThingName=thing,
        )
    except greengrass.exceptions.ResourceNotFoundException:
        return None


def _installed(greengrass: Any, thing: str, component: str) -> dict[str, Any] | None:
    return _first(
        greengrass.list_installed_components,
        "installedComponents",
        lambda item: item.get("componentName") == component,
        coreDeviceThingName=thing,
        topologyFilter="ALL",
    )


def _applied(thing: str, run: CanaryRun, greengrass: Any, now: dt.datetime) -> DeviceVerdict | dt.datetime:
    """When the device applied the canary deployment, or the verdict that it has not (yet)."""
    effective = _effective(greengrass, thing, run.deployment_id)
    status = (effective or {}).get("coreDeviceExecutionStatus", "not received")
    if effective is None or status in WAITING:
        deadline = run.deployed_at + dt.timedelta(seconds=run.soak_seconds)  # as long to apply as to soak
        if now < deadline:
            return DeviceVerdict(SOAKING, wait_seconds=min(PERIOD, (deadline - now).total_seconds()))
        return DeviceVerdict(
            UNHEALTHY, [f"{thing}: never applied the canary deployment ({status} {run.soak_seconds} s after it)"]
        )
    if status not in APPLIED:
        reason = effective.get("reason") or ", ".join((effective.get("statusDetails") or {}).get("errorTypes", []))
        return DeviceVerdict(UNHEALTHY, [f"{thing}: the canary deployment {status} on the device: {reason}"])
    installed = _installed(greengrass, thing, run.component)
    running = (installed or {}).get("componentVersion")
    if running != run.version:
        return DeviceVerdict(UNHEALTHY, [f"{thing}: runs model {running or 'none'}, not {run.version} (fell back)"])
    state = (installed or {}).get("lifecycleState")
    if state in ("ERRORED", "BROKEN"):
        return DeviceVerdict(UNHEALTHY, [f"{thing}: model {run.version} is {state}"])
    modified = effective["modifiedTimestamp"]
    return modified if isinstance(modified, dt.datetime) else dt.datetime.fromtimestamp(float(modified), dt.UTC)


def _reporting(thing: str, run: CanaryRun, soak: Mapping[str, float | None], since: float, now: float) -> list[str]:
    """Reports of the new version all through the device's soak: some, enough, and recent."""
    reports = soak["HealthReports"] or 0.0
    if not reports:
        return [f"{thing}: no health report as model {run.version} since it switched (it dies on start?)"]
    expected = (now - since) / run.health_interval
    if reports < MIN_REPORT_RATIO * expected:
        return [f"{thing}: {reports:g} health reports as {run.version}, of about {expected:.0f} expected (silent)"]
    allowed = max(2 * run.health_interval, 2 * PERIOD)  # the last period holding a report starts up to PERIOD early
    if soak["LastReport"] is not None and now - soak["LastReport"] > allowed:
        return [f"{thing}: silent for the last {now - soak['LastReport']:.0f} s of its soak"]
    return []


def _problems(
    thing: str, now: Mapping[str, float | None], before: Mapping[str, float | None], b: CanarySettings
) -> list[str]:
    problems = []
    fps, fps_before = now["FPS"] or 0.0, before["FPS"]
    if fps_before and fps < b.min_fps_ratio * fps_before:
        problems.append(f"{thing}: FPS {fps:.2f}, {fps / fps_before:.0%} of the {fps_before:.2f} before (minFpsRatio)")
    undelivered = (now["DeliveryFailures"] or 0.0) + (now["CountsLost"] or 0.0)
    if undelivered > b.max_publish_errors:
        problems.append(
            f"{thing}: {undelivered:g} messages never delivered (DeliveryFailures + CountsLost; maxPublishErrors "
            f"{b.max_publish_errors:g})"
        )
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


def device_verdict(
    thing: str, run: CanaryRun, bounds: CanarySettings, greengrass: Any, cloudwatch: Any, now: dt.datetime
) -> DeviceVerdict:
    """One canary device: applied, still on the new version, soaked for ``soak_seconds`` on it, within bounds
    against its own reports of the previous model over as long before it switched."""
    switched = _applied(thing, run, greengrass, now)
    if isinstance(switched, DeviceVerdict):
        return switched
    soaked = (now - switched).total_seconds()
    if soaked < run.soak_seconds:
        evidence: dict[str, Any] = {"switched": switched.isoformat()}
        return DeviceVerdict(SOAKING, wait_seconds=run.soak_seconds - soaked, evidence=evidence)
    soak = read_window(cloudwatch, thing, run.version, switched, now)
    empty = dict.fromkeys(STATISTICS)
    old = run.previous_version
    before = read_window(cloudwatch, thing, old, switched - (now - switched), switched) if old else empty
    problems = _reporting(thing, run, soak, switched.timestamp(), now.timestamp())
    problems += [] if problems else _problems(thing, soak, before, bounds)
    evidence = {"switched": switched.isoformat(), "soak": soak, "before": before}
    return DeviceVerdict(UNHEALTHY if problems else HEALTHY, problems, evidence=evidence)


def check_canary(
    run: CanaryRun, bounds: CanarySettings, iot: Any, greengrass: Any, cloudwatch: Any, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The canary's verdict: ``unhealthy`` as soon as one device fails, ``soaking`` (check again after
    ``waitSeconds``) while a device has not soaked long enough, ``healthy`` when every device passed."""
    at = now or dt.datetime.now(dt.UTC)
    things = canary_things(iot, run.group)
    if not things:
        return _verdict(run, UNHEALTHY, [f"the canary group {run.group} has no devices"], 0, {})
    both = in_both_groups(iot, run.group, run.fleet_group, things)
    if both:
        return _verdict(run, UNHEALTHY, [both_groups_reason(both, run.group, run.fleet_group)], 0, {})
    verdicts = {thing: device_verdict(thing, run, bounds, greengrass, cloudwatch, at) for thing in things}
    problems = [p for v in verdicts.values() for p in v.problems]
    soaking = [v.wait_seconds for v in verdicts.values() if v.state == SOAKING]
    state = UNHEALTHY if problems else (SOAKING if soaking else HEALTHY)
    wait = math.ceil(max(1.0, min(soaking))) if soaking and not problems else 0
    devices = {t: {"state": v.state, **v.evidence} for t, v in verdicts.items()}
    return _verdict(run, state, problems, wait, devices, len(things))


def _verdict(
    run: CanaryRun, state: str, problems: Sequence[str], wait: int, devices: dict[str, Any], count: int = 0
) -> dict[str, Any]:
    reason = "; ".join(problems) or (
        f"{count} canary devices ran model {run.version} for {run.soak_seconds} s each within bounds"
        if state == HEALTHY
        else f"soaking: {wait} s more"
    )
    verdict = {
        "state": state,
        "healthy": state == HEALTHY,
        "waitSeconds": wait,
        "reason": reason,
        "devices": devices,
        "version": run.version,
    }
    log_event(logger, "canary.checked", group=run.group, state=state, version=run.version, reason=reason)
    return verdict
