"""``odctl watch``: what the fleet publishes, seen from the workstation.

Subscribes to the component's topics on AWS IoT Core (MQTT over WebSocket, signed with the operator's AWS
credentials: awsiotsdk, the AWS IoT Device SDK) or on a local MQTT broker (paho-mqtt), and writes each message as
one JSON line ``{"topic": ..., "message": ...}`` (stdout or ``--out``) until --count messages or --seconds pass.
"""

from __future__ import annotations

import json
import logging
import queue
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from odshared.core.errors import OdError
from odshared.core.log import log_event

logger = logging.getLogger(__name__)
DEFAULT_TOPICS = ("od/+/detections", "od/+/health", "od/+/counts")


class WatchError(OdError):
    """The broker cannot be reached or refused the subscription."""


@contextmanager
def local_broker(
    host: str, port: int, topics: tuple[str, ...], deliver: Callable[[str, bytes], None]
) -> Iterator[None]:
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"odctl-watch-{uuid.uuid4().hex[:8]}")
    client.on_message = lambda _c, _u, message: deliver(message.topic, message.payload)
    try:
        client.connect(host, port, keepalive=30)
    except OSError as exc:
        raise WatchError(f"MQTT broker {host}:{port}: {exc}") from None
    for topic in topics:
        client.subscribe(topic, qos=1)
    client.loop_start()
    try:
        yield
    finally:
        client.loop_stop()
        client.disconnect()


@contextmanager
def iot_core(region: str | None, topics: tuple[str, ...], deliver: Callable[[str, bytes], None]) -> Iterator[None]:
    """AWS IoT Core's ATS endpoint for the account, over WebSocket with SigV4 (needs iot:Connect, iot:Subscribe and
    iot:Receive on the topics for the operator's identity)."""
    import boto3
    from awscrt import auth, io, mqtt
    from awsiot import mqtt_connection_builder

    session = boto3.Session(region_name=region)
    if not session.region_name:
        raise WatchError("no AWS region; set AWS_DEFAULT_REGION or pass --region")
    endpoint = session.client("iot").describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    connection = mqtt_connection_builder.websockets_with_default_aws_signing(
        endpoint=endpoint,
        region=session.region_name,
        credentials_provider=auth.AwsCredentialsProvider.new_default_chain(
            io.ClientBootstrap.get_or_create_static_default()
        ),
        client_id=f"odctl-watch-{uuid.uuid4().hex[:8]}",
        clean_session=True,
        keep_alive_secs=30,
    )
    connection.connect().result(timeout=20)
    for topic in topics:
        future, _ = connection.subscribe(
            topic, mqtt.QoS.AT_LEAST_ONCE, lambda topic, payload, **_: deliver(topic, payload)
        )
        future.result(timeout=20)
    try:
        yield
    finally:
        connection.disconnect().result(timeout=10)


def watch(
    topics: tuple[str, ...] = DEFAULT_TOPICS,
    mqtt_host: str | None = None,
    mqtt_port: int = 1883,
    region: str | None = None,
    count: int = 0,
    seconds: float = 0.0,
    out: IO[str] | None = None,
) -> dict[str, Any]:
    """Write messages until ``count`` arrived or ``seconds`` passed (0: no limit; Ctrl-C ends it too)."""
    inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
    out = out or sys.stdout
    received = undecodable = 0
    connect = (
        (lambda d: local_broker(mqtt_host, mqtt_port, topics, d))
        if mqtt_host
        else (lambda d: iot_core(region, topics, d))
    )
    deadline = time.monotonic() + seconds if seconds else float("inf")
    with connect(lambda topic, payload: inbox.put((topic, payload))):
        log_event(logger, "watch.subscribed", topics=list(topics), broker=mqtt_host or "AWS IoT Core")
        try:
            while (not count or received < count) and time.monotonic() < deadline:
                try:
                    topic, payload = inbox.get(timeout=min(0.2, max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    continue
                try:
                    message = json.loads(payload)
                except ValueError:
                    undecodable += 1
                    log_event(logger, "watch.undecodable", level=logging.WARNING, topic=topic, bytes=len(payload))
                    continue
                out.write(json.dumps({"topic": topic, "message": message}) + "\n")
                out.flush()
                received += 1
        except KeyboardInterrupt:
            pass
    return {"received": received, "undecodable": undecodable, "topics": list(topics)}
