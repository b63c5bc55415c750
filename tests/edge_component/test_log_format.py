"""One JSON log shape for the whole fleet: the device writes its lines as odshared does (the same field names, the
same ISO 8601 UTC time), though it may not import odshared, so one query reads the component log and the cloud's."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime

from odedge.telemetry import JsonFormatter as DeviceFormatter
from odshared.core.log import JsonFormatter as CloudFormatter


def _record(**fields: object) -> logging.LogRecord:
    record = logging.LogRecord("odedge.outbox", logging.WARNING, __file__, 1, "outbox.not_kept", None, None)
    record.created = 1_764_950_400.1234  # a fraction past the millisecond: both round it the same way
    record.fields = fields
    return record


def test_the_device_and_the_cloud_write_the_same_line() -> None:
    record = _record(seq=7, reason="full", note="sent from memory")
    device, cloud = json.loads(DeviceFormatter().format(record)), json.loads(CloudFormatter().format(record))
    assert device == cloud
    assert list(device) == list(cloud) == ["ts", "level", "logger", "event", "seq", "reason", "note"]
    assert device["ts"] == "2025-12-05T16:00:00.123+00:00"
    assert datetime.fromisoformat(device["ts"]).utcoffset() is not None  # ISO text with its zone, not epoch seconds


def test_an_exception_rides_in_the_same_field() -> None:
    try:
        raise RuntimeError("disk gone")
    except RuntimeError:
        record = _record(path="/outbox")
        record.exc_info = sys.exc_info()
    device, cloud = json.loads(DeviceFormatter().format(record)), json.loads(CloudFormatter().format(record))
    assert device == cloud
    assert "RuntimeError: disk gone" in device["exception"]
