"""The camera alarms (issue 36): the device's own camera health, through the stack's health rule (EMF) into
CloudWatch (moto), read as each alarm reads it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from odedge.camera_health import REFERENCE_FILE, CameraHealth
from odedge.messages import health_message
from tests.edge_component.camera_scenes import Fault, Scene
from tests.infra.test_fleet_data import _alarms, _breaching, alarmed  # noqa: F401  (alarmed: the fixture)

CALM = datetime(2026, 12, 5, 9, 0, 10, tzinfo=UTC)


def _health(kind: str | None, folder) -> dict:
    """camera-07's health message after 30 s of the generated scene, covered from 12 s (or not at all)."""
    health = CameraHealth(folder / REFERENCE_FILE)
    for image, now in Scene("synth", Fault(kind, 12.0, 60.0), seconds=30, fps=5.0).frames():
        health.watch(image, now)
    return json.loads(health_message("camera-07", "m", {}, 5.0, {}, 1.0, camera=health.summary()))


@pytest.mark.integration
def test_a_covered_camera_sets_off_its_alarms_and_a_calm_or_passing_one_none(alarmed, aws, tmp_path):  # noqa: F811
    """Health every 60 s (the recipe's default). A calm camera's two-minute window sets off neither camera alarm;
    a window where it was covered for one report of two does not set off its own (every report must say so); two
    windows in a row covered throughout set off its own and the fleet's."""
    import boto3

    from tests.rehearsal.device_health import report

    cloudwatch = boto3.client("cloudwatch")
    calm = _health(None, tmp_path / "calm")
    covered = _health("covered", tmp_path / "covered")
    assert calm["camera_fault"] == 0 and covered["camera_fault"] == 1 and covered["camera"]["state"] == "covered"
    window = timedelta(minutes=2)
    reports = [calm, calm, calm, covered, covered, covered, covered, covered]  # windows: calm, passing, covered x2
    for minute, message in enumerate(reports):
        report([message], at=(CALM + timedelta(minutes=minute)).timestamp())
    own, fleet = _camera_alarms(alarmed)
    assert own["Period"] == fleet["Period"] == window.total_seconds() and fleet["EvaluationPeriods"] == 2
    assert "covered" in own["AlarmDescription"] and "covered" in fleet["AlarmDescription"]
    windows = [CALM + window * n for n in range(4)]
    assert [_breaching(cloudwatch, own, t) for t in windows] == [False, False, True, True]
    # the fleet's alarm goes off when its last two windows both breach: the third and fourth
    assert [_breaching(cloudwatch, fleet, t) for t in windows] == [False, True, True, True]


def _camera_alarms(template) -> tuple[dict, dict]:
    """camera-07's own camera alarm, and the fleet's."""
    alarms = {k: a for k, a in _alarms(template).items() if "CameraFault" in k}
    (own,) = [a for k, a in alarms.items() if "camera07" in k]
    (fleet,) = [a for k, a in alarms.items() if "camera07" not in k]
    return own, fleet
