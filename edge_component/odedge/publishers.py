"""Where messages go: Greengrass IPC (IoT Core and local pub/sub), an MQTT broker, or JSON Lines.

Two ways through a transport, each drained by its own thread so the loop never blocks:
- detections and health: a bounded buffer in memory (``BufferedPublisher``); when the broker or the nucleus is
  unreachable they wait, and when the buffer is full the oldest are dropped and counted (best effort: under
  Greengrass they go at QoS 0, which the nucleus's spooler does not keep while offline);
- crossings: the on-disk outbox (``OutboxSender``), oldest first, each removed only once the transport confirmed
  it (``deliver``: the nucleus accepted the QoS 1 publish into its spooler; the broker's PUBACK), never dropped for
  detection traffic.

Two counters keep a blip apart from harm: ``publish_retries`` counts attempts the transport refused that are tried
again (the message kept: delivered later), ``delivery_failures`` the detections and health messages given up (past
the full buffer, or still queued when the transport refuses at stop). A crossing is never given up here; one the
outbox could not keep or send is ``counts_lost``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .outbox import Outbox
from .telemetry import Counters, log_event

logger = logging.getLogger(__name__)
CONFIRM_TIMEOUT_S = 10.0  # a PUBACK later than this: the delivery is waited for again (the same message)
IPC_TIMEOUT_S = 10.0  # the nucleus answers a publish within this, or the publish is retried: a hung nucleus never
# holds the crossings' and the health's threads for ever
MQTT_MAX_QUEUED = 200  # messages paho holds unacknowledged (its default is no bound); past it a publish is refused
MQTT_MAX_INFLIGHT = 20  # of those, sent and awaiting their PUBACK


class Transport:
    """Sends one message; raises on failure (the buffer keeps the message and retries)."""

    def send(self, topic: str, payload: bytes) -> None:
        raise NotImplementedError

    def deliver(self, topic: str, payload: bytes) -> None:
        """Send and return only once the other side has it (QoS 1 confirmed); raises otherwise."""
        self.send(topic, payload)

    def subscribe(self, topic: str, callback: Callable[[str, bytes], None]) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot subscribe")

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class JsonlTransport(Transport):
    """One JSON object per line with its topic, to a file or stdout (debugging, the demo's record)."""

    def __init__(self, path: str) -> None:
        self.handle = sys.stdout if path in ("-", "") else open(path, "a", encoding="utf-8")  # noqa: SIM115
        self.lock = threading.Lock()

    def send(self, topic: str, payload: bytes) -> None:
        line = json.dumps({"topic": topic, "message": json.loads(payload)}, separators=(",", ":"))
        with self.lock:
            self.handle.write(line + "\n")
            self.handle.flush()

    def close(self) -> None:
        if self.handle is not sys.stdout:
            self.handle.close()


class MqttTransport(Transport):
    """paho-mqtt to a broker, QoS 1, reconnecting in the background. paho's queue of unacknowledged messages is
    bounded (a refused publish is kept and retried by the caller's buffer or outbox), and a crossing not confirmed
    in time is waited for again, not published again: paho still holds the first copy and sends it after a
    reconnect, so each retry with a new publish would put one more copy in flight."""

    def __init__(self, host: str, port: int, client_id: str) -> None:
        import paho.mqtt.client as mqtt

        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.max_inflight_messages_set(MQTT_MAX_INFLIGHT)
        self.client.max_queued_messages_set(MQTT_MAX_QUEUED)
        self.confirm_timeout = CONFIRM_TIMEOUT_S
        self.in_flight: tuple[str, bytes, Any] | None = None  # the delivery awaiting its PUBACK: topic, payload, info
        self.subscriptions: dict[str, Callable[[str, bytes], None]] = {}
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.connect_async(host, port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any = None) -> None:
        for topic in self.subscriptions:
            client.subscribe(topic, qos=1)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        callback = self.subscriptions.get(message.topic)
        if callback is not None:
            try:
                callback(message.topic, message.payload)
            except Exception:  # a callback must never break the network thread
                logger.exception("mqtt.callback_failed")

    def send(self, topic: str, payload: bytes) -> Any:
        """QoS 1, handed to paho (which sends it, after a reconnect if need be); raises when paho refused it."""
        return self._queue(topic, payload)

    def deliver(self, topic: str, payload: bytes) -> None:
        """QoS 1 and wait for the PUBACK; the retry of a message not confirmed in time waits on the same one."""
        pending = self.in_flight
        if pending is not None and pending[0] == topic and pending[1] == payload:
            info = pending[2]
        else:
            info = self._queue(topic, payload)
            self.in_flight = (topic, payload, info)
        info.wait_for_publish(self.confirm_timeout)
        if not info.is_published():  # paho still holds it and sends it after a reconnect: waited for next time
            raise ConnectionError(f"no PUBACK within {self.confirm_timeout:g} s")
        self.in_flight = None

    def _queue(self, topic: str, payload: bytes) -> Any:
        """A QoS 1 publish, as paho holds it. The connection can go between the check and the publish: paho then
        answers NO_CONN but keeps the message and sends it once connected, so it counts as handed over and, for a
        delivery, is the one to wait on (raising there had each retry queue one more copy); its info would say
        NO_CONN for ever, so it is marked queued, and paho marks it published at its PUBACK."""
        import paho.mqtt.client as mqtt

        if not self.client.is_connected():
            raise ConnectionError("not connected to the MQTT broker")
        info = self.client.publish(topic, payload, qos=1)
        if info.rc == mqtt.MQTT_ERR_NO_CONN:
            log_event(logger, "mqtt.queued_offline", level=logging.WARNING, topic=topic, mid=info.mid)
            info.rc = mqtt.MQTT_ERR_SUCCESS
        elif info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise ConnectionError(f"publish failed (rc={info.rc})")
        return info

    def subscribe(self, topic: str, callback: Callable[[str, bytes], None]) -> None:
        self.subscriptions[topic] = callback
        if self.client.is_connected():
            self.client.subscribe(topic, qos=1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class IpcTransport(Transport):
    """Greengrass IPC: PublishToIoTCore through awsiotsdk's client, each call bounded by ``timeout`` (a nucleus
    that never answers fails the publish, which the caller retries, instead of silencing it for ever); detections
    (what is sent to ``detections_topic``) are copied to ``local_topic`` for the device's other components, health
    and crossings are not."""

    def __init__(self, local_topic: str = "", detections_topic: str = "", timeout: float = IPC_TIMEOUT_S) -> None:
        self.local_topic, self.detections_topic, self.timeout = local_topic, detections_topic, timeout
        self.client = self._connect()

    def _connect(self) -> Any:
        """The one place the IPC client is created (the seam tests replace the socket behind)."""
        from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

        return GreengrassCoreIPCClientV2()

    def send(self, topic: str, payload: bytes) -> None:
        """Best effort: QoS 0, which the nucleus's spooler drops while offline (keepQos0WhenOffline false) instead
        of filling the room the crossings need."""
        from awsiot.greengrasscoreipc.model import QOS

        self._publish(topic, payload, QOS.AT_MOST_ONCE)

    def deliver(self, topic: str, payload: bytes) -> None:
        """QoS 1: the call returns once the nucleus accepted the message into its spooler."""
        from awsiot.greengrasscoreipc.model import QOS

        self._publish(topic, payload, QOS.AT_LEAST_ONCE)

    def _publish(self, topic: str, payload: bytes, qos: Any) -> None:
        from awsiot.greengrasscoreipc.model import BinaryMessage, PublishMessage

        self._wait(self.client.publish_to_iot_core_async(topic_name=topic, qos=qos, payload=payload), topic)
        if self.local_topic and topic == self.detections_topic:
            message = PublishMessage(binary_message=BinaryMessage(message=payload))
            try:  # the copy is best effort: its failure never sends the IoT Core publish again
                self._wait(self.client.publish_to_topic_async(topic=self.local_topic, publish_message=message), topic)
            except Exception as exc:
                log_event(logger, "ipc.local_failed", level=logging.WARNING, topic=self.local_topic, error=str(exc))

    def _wait(self, future: Any, topic: str) -> None:
        """The operation's answer within ``timeout``; raises TimeoutError otherwise (the caller keeps the message)."""
        import concurrent.futures

        try:
            future.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"the nucleus did not answer the publish to {topic} within {self.timeout:g} s") from None

    def subscribe(self, topic: str, callback: Callable[[str, bytes], None]) -> None:
        def on_event(event: Any) -> None:
            try:
                callback(event.message.topic_name, event.message.payload)
            except Exception:  # never let an exception escape into the IPC thread
                logger.exception("ipc.callback_failed")

        from awsiot.greengrasscoreipc.model import QOS

        self.client.subscribe_to_iot_core(topic_name=topic, qos=QOS.AT_LEAST_ONCE, on_stream_event=on_event)

    def close(self) -> None:
        self.client.close()


class BufferedPublisher:
    """A bounded queue in front of a transport, drained by a thread that retries with backoff."""

    def __init__(self, transport: Transport, counters: Counters, capacity: int = 1000, name: str = "publisher") -> None:
        self.transport = transport
        self.counters = counters
        self.queue: deque[tuple[str, bytes]] = deque()
        self.capacity = capacity
        self.cond = threading.Condition()
        self.closing = False
        self.thread = threading.Thread(target=self._drain, name=name, daemon=True)
        self.thread.start()

    def publish(self, topic: str, payload: bytes) -> None:
        with self.cond:
            if len(self.queue) >= self.capacity:
                self.queue.popleft()
                self.counters.add("publish_dropped")
                self.counters.add("delivery_failures")
            self.queue.append((topic, payload))
            self.cond.notify()

    def _drain(self) -> None:
        backoff = 0.2
        while True:
            with self.cond:
                while not self.queue and not self.closing:
                    self.cond.wait(0.5)
                if not self.queue and self.closing:
                    return
                topic, payload = self.queue[0]
            try:
                self.transport.send(topic, payload)
            except Exception as exc:  # the transport is down: keep the message, back off, retry
                if self.closing:  # stopping: what is still queued is given up, not retried
                    self._give_up(topic, exc)
                    return
                self.counters.add("publish_retries")
                log_event(
                    logger, "publish.failed", level=logging.WARNING, topic=topic, error=str(exc), retry_in_s=backoff
                )
                time.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.2
            with self.cond:
                if self.queue and self.queue[0][1] is payload:
                    self.queue.popleft()
            self.counters.add("published")

    def _give_up(self, topic: str, exc: Exception) -> None:
        """A retry is no harm, a message never delivered is: counted apart, so a canary's bound can tell them."""
        with self.cond:
            lost = len(self.queue)
            self.queue.clear()
        self.counters.add("delivery_failures", lost)
        log_event(logger, "publish.given_up", level=logging.ERROR, topic=topic, error=str(exc), lost=lost)

    def flush(self, timeout: float = 2.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.cond:
                if not self.queue:
                    return True
            time.sleep(0.02)
        return False

    def close(self, timeout: float = 2.0) -> None:
        self.flush(timeout)
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        self.thread.join(timeout)
        self.transport.close()


class OutboxSender:
    """Sends the outbox's entries oldest first, one at a time, each removed once the transport confirmed it; a
    failure keeps the entry and retries it with backoff, so the order holds across an outage and a restart."""

    def __init__(self, outbox: Outbox, transport: Transport, counters: Counters) -> None:
        self.outbox, self.transport, self.counters = outbox, transport, counters
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._drain, name="outbox", daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        backoff = 0.2
        while not self.closing.is_set():
            entry = self.outbox.oldest(0.5)
            if entry is None:
                continue
            try:
                self.transport.deliver(entry.topic, entry.payload)
            except Exception as exc:  # down: the entry stays first in line (lost only as counts_lost)
                self.counters.add("publish_retries")
                log_event(
                    logger,
                    "outbox.send_failed",
                    level=logging.WARNING,
                    seq=entry.seq,
                    error=str(exc),
                    pending=len(self.outbox),
                    retry_in_s=backoff,
                )
                self.closing.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.2
            self.outbox.remove(entry.seq)
            self.counters.add("counts_delivered")

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.outbox) and time.monotonic() < deadline:
            time.sleep(0.02)
        return not len(self.outbox)

    def close(self, timeout: float = 2.0) -> None:
        """Deliver what can be in ``timeout``; what is left stays in the outbox (on disk: for the next start)."""
        delivered = self.flush(timeout)
        self.closing.set()
        self.thread.join(timeout)
        if not delivered:  # what is on disk waits for the next start; what is only in memory is lost now
            lost = self.outbox.abandon()
            level = logging.ERROR if lost else logging.WARNING
            log_event(logger, "outbox.pending_at_stop", level=level, pending=len(self.outbox), lost=lost)


def create_transport(kind: str, config: Any) -> Transport:
    if kind == "auto":
        kind = (
            "ipc"
            if os.environ.get("AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT")
            else ("jsonl" if config.jsonl else "mqtt")
        )
    if kind == "ipc":
        return IpcTransport(config.local_topic, config.topic(config.publish_topic))
    if kind == "mqtt":
        return MqttTransport(config.mqtt_host, config.mqtt_port, f"odedge-{config.thing_name}-{os.getpid()}")
    return JsonlTransport(config.jsonl or "-")
