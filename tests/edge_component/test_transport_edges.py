"""The transports' edges (issue 34): a hung nucleus fails a publish in time instead of silencing the device, only
detections are copied to the local topic, an MQTT crossing not confirmed in time is waited for again (never a new
copy in flight), and paho's queue is bounded. Against awsiotsdk's real IPC client and a real MQTT broker."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest

from odedge.config import EdgeConfig
from odedge.outbox import Entry, Outbox
from odedge.publishers import (
    MQTT_MAX_QUEUED,
    BufferedPublisher,
    IpcTransport,
    MqttTransport,
    OutboxSender,
    create_transport,
)
from odedge.telemetry import Counters
from tests.edge_component.conftest import Broker
from tests.edge_component.ipc_socket import NucleusSocket
from tests.edge_component.relay import Relay
from tests.edge_component.test_publishers import _subscriber, _wait

pytestmark = pytest.mark.integration
PUBLISH, LOCAL = "aws.greengrass#PublishToIoTCore", "aws.greengrass#PublishToTopic"


@pytest.fixture
def nucleus(monkeypatch):
    folder = Path(tempfile.mkdtemp(prefix="gg-ipc-"))  # short path: Unix socket paths are limited to ~100 bytes
    server = NucleusSocket(folder / "ipc.socket", token="svcuid-123")
    monkeypatch.setenv("AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT", str(server.path))
    monkeypatch.setenv("SVCUID", "svcuid-123")
    yield server
    server.hang.clear()
    server.close()
    shutil.rmtree(folder, ignore_errors=True)


def test_a_hung_nucleus_fails_the_publish_in_time_and_the_crossing_waits_its_turn(nucleus, tmp_path):
    """The nucleus takes the requests and never answers: each publish fails within the timeout (the old client
    waited for ever, silencing crossings and health); the crossing stays in the outbox and goes once it answers."""
    transport = IpcTransport(timeout=0.5)
    nucleus.hang.set()
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="did not answer"):
        transport.deliver("od/t/counts", b'{"seq":1}')
    with pytest.raises(TimeoutError):
        transport.send("od/t/health", b'{"type":"health"}')
    assert time.monotonic() - started < 5
    counters = Counters()
    outbox = Outbox(str(tmp_path / "outbox"), 100, counters)
    outbox.put(Entry(1, "od/t/counts", b'{"seq":1}'), {"seq": 1})
    sender = OutboxSender(outbox, transport, counters)
    assert _wait(lambda: counters.get("publish_retries") >= 1, 10)
    assert len(outbox) == 1  # not confirmed: kept
    nucleus.hang.clear()
    assert sender.flush(20)
    sender.close()
    assert counters.get("counts_delivered") == 1 and not list((tmp_path / "outbox").iterdir())
    # retried and then delivered: a blip, no harm (a canary's maxPublishErrors reads only what was given up)
    assert counters.get("delivery_failures") == 0 and counters.get("counts_lost") == 0


def test_only_detections_are_copied_to_the_local_topic(nucleus):
    transport = create_transport(
        "ipc", EdgeConfig(model_dir="unused", thing_name="t", local_topic="od/local/detections")
    )
    assert isinstance(transport, IpcTransport)
    transport.send("od/t/detections", b'{"detections":[]}')
    transport.send("od/t/health", b'{"type":"health"}')
    transport.deliver("od/t/counts", b'{"type":"crossing"}')
    transport.close()
    sent = [(op, request.get("topicName") or request.get("topic")) for op, request in nucleus.requests]
    assert sent == [
        (PUBLISH, "od/t/detections"),
        (LOCAL, "od/local/detections"),
        (PUBLISH, "od/t/health"),
        (PUBLISH, "od/t/counts"),
    ]


@contextmanager
def _paused(broker: Broker) -> Iterator[None]:
    """The broker process stopped (SIGSTOP): the connection stays up, nothing is answered."""
    assert broker.process is not None
    os.kill(broker.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(broker.process.pid, signal.SIGCONT)


def _connected(port: int, name: str) -> MqttTransport:
    transport = MqttTransport("127.0.0.1", port, name)
    assert _wait(transport.client.is_connected, 10)
    return transport


def test_an_unconfirmed_crossing_is_waited_for_again_not_sent_again(broker):
    """No PUBACK within the timeout, twice: the retries wait on the same message, so the broker gets one copy
    (a new publish per retry put one more copy in flight each time)."""
    client, got = _subscriber(broker.port, "od/t/counts")
    transport = _connected(broker.port, "retry-test")
    transport.confirm_timeout = 0.5
    payload = json.dumps({"event_id": "s-1", "seq": 1}).encode()
    with _paused(broker):
        for _ in range(3):
            with pytest.raises(ConnectionError, match="no PUBACK"):
                transport.deliver("od/t/counts", payload)
    transport.confirm_timeout = 10.0
    transport.deliver("od/t/counts", payload)  # the same message, now confirmed
    time.sleep(1.0)  # a second copy, were there one, would have arrived by now
    client.loop_stop()
    transport.close()
    assert [m["event_id"] for _, m in got] == ["s-1"]


def test_a_crossing_published_as_the_connection_drops_is_waited_for_not_published_again(broker):
    """The connection goes between the transport's check and paho's publish (is_connected said yes; paho has no
    socket): paho answers NO_CONN but keeps the QoS 1 message and sends it once connected. The retries wait on that
    message instead of queueing a new copy each, so the broker gets one copy (the device's network path is a relay
    that refuses it until the test opens it)."""
    relay = Relay(broker.port)
    client, got = _subscriber(broker.port, "od/t/counts")
    transport = MqttTransport("127.0.0.1", relay.port, "race-test")
    transport.confirm_timeout = 0.3
    payload = json.dumps({"event_id": "s-1", "seq": 1}).encode()
    try:
        with mock.patch.object(transport.client, "is_connected", return_value=True):  # the check passed, then the drop
            for _ in range(3):
                with pytest.raises(ConnectionError):
                    transport.deliver("od/t/counts", payload)
        assert len(transport.client._out_messages) == 1  # paho holds the one copy it will send
        relay.open.set()
        transport.confirm_timeout = 20.0
        transport.deliver("od/t/counts", payload)  # the same message, confirmed once connected
        time.sleep(1.0)  # a second copy, were there one, would have arrived by now
    finally:
        client.loop_stop()
        transport.close()
        relay.close()
    assert [m["event_id"] for _, m in got] == ["s-1"]


def test_detections_published_as_the_connection_drops_go_once_each(broker):
    """The same race for the best-effort path: paho keeps what it answered NO_CONN to, so the buffer hands it over
    once instead of retrying it (each retry was one more copy at the broker)."""
    relay = Relay(broker.port)
    client, got = _subscriber(broker.port, "od/t/detections")
    transport = MqttTransport("127.0.0.1", relay.port, "race-buffer-test")
    counters = Counters()
    publisher = BufferedPublisher(transport, counters, capacity=100)
    try:
        with mock.patch.object(transport.client, "is_connected", return_value=True):  # the check passed, then the drop
            for index in range(3):
                publisher.publish("od/t/detections", json.dumps({"n": index}).encode())
            assert publisher.flush(5)
        relay.open.set()
        assert _wait(lambda: len(got) >= 3, 30)
        time.sleep(1.0)  # a second copy, were there one, would have arrived by now
    finally:
        publisher.close()
        client.loop_stop()
        relay.close()
    assert [m["n"] for _, m in got] == [0, 1, 2] and counters.get("publish_retries") == 0


def test_pahos_queue_is_bounded_and_what_it_refuses_is_kept_and_sent_later(broker):
    """The broker stops answering: paho takes MQTT_MAX_QUEUED messages and refuses the next (its default has no
    bound: memory grew with every message); the buffer in front keeps the refused ones and sends them all later."""
    client, got = _subscriber(broker.port, "od/t/detections")
    transport = _connected(broker.port, "queue-test")
    counters = Counters()
    publisher = BufferedPublisher(transport, counters, capacity=1000)
    total = MQTT_MAX_QUEUED + 50
    with _paused(broker):
        for index in range(total):
            publisher.publish("od/t/detections", json.dumps({"n": index}).encode())
        assert _wait(lambda: counters.get("publish_retries") >= 1, 10)  # refused past the bound, kept
        assert len(transport.client._out_messages) == MQTT_MAX_QUEUED
    assert _wait(lambda: len(got) >= total, 60)
    publisher.close()
    client.loop_stop()
    assert [m["n"] for _, m in got] == list(range(total)) and counters.get("publish_dropped") == 0
    assert counters.get("delivery_failures") == 0


def test_a_blip_is_a_retry_and_what_is_given_up_a_delivery_failure(nucleus):
    """Detections and health through the real IPC client: the nucleus hangs once and answers again, and the
    message goes on the retry (publish_retries, no delivery failure); then it hangs for good while the buffer
    overflows and the component stops: those messages are given up (delivery_failures), each counted once."""
    counters = Counters()
    publisher = BufferedPublisher(IpcTransport(timeout=0.3), counters, capacity=2)
    nucleus.hang.set()
    publisher.publish("od/t/health", b'{"n":0}')
    assert _wait(lambda: counters.get("publish_retries") >= 1, 10)
    nucleus.hang.clear()
    assert publisher.flush(10)
    assert {p for t, p in nucleus.published() if t == "od/t/health"} == {b'{"n":0}'}  # the hung try, the retry
    assert counters.get("delivery_failures") == 0 and counters.get("published") == 1
    nucleus.hang.set()
    for index in range(1, 5):  # two wait in the buffer, the two oldest are dropped
        publisher.publish("od/t/health", json.dumps({"n": index}).encode())
    assert counters.get("delivery_failures") == 2 and counters.get("publish_dropped") == 2
    publisher.close(timeout=2.0)  # the nucleus never answers: what is left is given up at stop
    assert counters.get("delivery_failures") == 4 and counters.get("published") == 1
