"""The IPC publisher through awsiotsdk's real GreengrassCoreIPCClientV2; only the nucleus's socket is ours."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from odedge.publishers import BufferedPublisher, IpcTransport, create_transport
from odedge.telemetry import Counters
from tests.edge_component.ipc_socket import NucleusSocket

pytestmark = pytest.mark.integration


@pytest.fixture
def nucleus(monkeypatch):
    folder = Path(tempfile.mkdtemp(prefix="gg-ipc-"))  # short path: Unix socket paths are limited to ~100 bytes
    server = NucleusSocket(folder / "ipc.socket", token="svcuid-123")
    monkeypatch.setenv("AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT", str(server.path))
    monkeypatch.setenv("SVCUID", "svcuid-123")
    yield server
    server.close()
    shutil.rmtree(folder, ignore_errors=True)


def test_publish_to_iot_core_and_local_topic(nucleus):
    transport = IpcTransport(local_topic="od/local/detections", detections_topic="od/t/detections")
    payload = json.dumps({"thing": "t", "detections": []}).encode()
    transport.send("od/t/detections", payload)
    transport.close()
    assert nucleus.authenticated
    assert nucleus.published() == [("od/t/detections", payload)]
    operations = [op for op, _ in nucleus.requests]
    assert operations == ["aws.greengrass#PublishToIoTCore", "aws.greengrass#PublishToTopic"]
    publish = nucleus.requests[0][1]
    assert publish["qos"] == "0"  # AT_MOST_ONCE: best effort, the spooler keeps no detection while offline
    local = nucleus.requests[1][1]
    assert local["topic"] == "od/local/detections" and "binaryMessage" in local["publishMessage"]


def test_crossings_go_at_least_once_and_leave_the_outbox_once_the_nucleus_accepted(nucleus, tmp_path):
    from odedge.outbox import Entry, Outbox
    from odedge.publishers import OutboxSender

    counters = Counters()
    outbox = Outbox(str(tmp_path / "outbox"), 100, counters)
    for seq in (1, 2, 3):
        outbox.put(Entry(seq, "od/t/counts", json.dumps({"seq": seq}).encode()), {"seq": seq})
    sender = OutboxSender(outbox, IpcTransport(), counters)
    assert sender.flush(10)
    sender.close()
    assert [json.loads(p)["seq"] for _, p in nucleus.published()] == [1, 2, 3]
    assert {request["qos"] for _, request in nucleus.requests} == {"1"}  # AT_LEAST_ONCE: spooled
    assert not list((tmp_path / "outbox").iterdir()) and counters.get("counts_delivered") == 3


def test_auto_chooses_ipc_under_greengrass_and_buffers(nucleus):
    from odedge.config import EdgeConfig

    transport = create_transport("auto", EdgeConfig(model_dir="unused"))
    assert isinstance(transport, IpcTransport)
    counters = Counters()
    publisher = BufferedPublisher(transport, counters)
    for index in range(20):
        publisher.publish("od/t/detections", json.dumps({"n": index}).encode())
    assert publisher.flush(10)
    publisher.close()
    deadline = time.monotonic() + 5
    while len(nucleus.published()) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [json.loads(p)["n"] for _, p in nucleus.published()] == list(range(20))
    assert counters.get("published") == 20
