"""The metrics rules' SQL text, evaluated by tests/rehearsal/iot_sql.py with IoT SQL's rules for what a message
lacks: the evaluation the fleet tests feed CloudWatch with."""

from __future__ import annotations

import json

import pytest

from odedge.messages import health_message
from odshared.fleet.metrics import HEALTH_METRICS, MODEL_DIMENSION, rule_sql
from tests.rehearsal.iot_sql import select


def test_a_health_message_without_counts_or_model_version_gives_zeros_and_none():
    """A device's health with no lines (no ``counts``) and no model component version: each metric of an absent
    field is 0 (its CASE tests isUndefined first), a flag of an absent field 0, the version dimension "none"; the
    message's own fields ride along and ``_aws`` is stamped with the arrival time."""
    message = json.loads(health_message("camera-07", "m", {"publish_retries": 2}, 9.5, {}, 10.0))
    record = select(rule_sql(HEALTH_METRICS), message, 1_764_000_000_000)
    assert record["thing"] == "camera-07" and record["FPS"] == 9.5 and record["PublishRetries"] == 2
    assert record["OutboxPending"] == 0 and record["OutboxFull"] == 0 and record["DeliveryFailures"] == 0
    assert record[MODEL_DIMENSION] == "none" and record["HealthReports"] == 1
    assert record["_aws"]["Timestamp"] == 1_764_000_000_000
    assert record["_aws"]["CloudWatchMetrics"][0]["Dimensions"][-1] == []  # the fleet's total, dimensionless


def test_a_flag_is_one_only_when_true_and_an_unknown_construct_fails_loudly():
    message = {"thing": "t", "counts": {"outbox": {"full": True, "nearly_full": False, "pending": 7}}}
    record = select(rule_sql(HEALTH_METRICS), message, 0)
    assert (record["OutboxFull"], record["OutboxNearlyFull"], record["OutboxPending"]) == (1, 0, 7)
    assert "CameraFault" in record and record["CameraFault"] == 0
    with pytest.raises(AssertionError, match="not evaluated here"):
        select("SELECT upper(thing) AS name FROM 'od/+/health'", message, 0)
