"""Publishing through a real MQTT broker; buffering and reconnection when it is away."""

from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from odedge.app import run
from odedge.config import EdgeConfig
from odedge.publishers import BufferedPublisher, MqttTransport
from odedge.telemetry import Counters

pytestmark = pytest.mark.integration


def _subscriber(port: int, topic: str) -> tuple[mqtt.Client, list]:
    got: list = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, message: got.append((message.topic, json.loads(message.payload)))
    client.connect("127.0.0.1", port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    time.sleep(0.3)
    return client, got


def _wait(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_loop_publishes_over_mqtt(scene, broker, tmp_path):
    client, got = _subscriber(broker.port, "od/#")
    config = EdgeConfig.from_mapping(
        {
            "model_dir": str(scene["package"]),
            "source": str(scene["video"]),
            "publisher": "mqtt",
            "mqtt_port": str(broker.port),
            "max_frames": "30",
            "thing_name": "dev-1",
            "publish_empty": "true",
            "health_interval": "3600",
        }
    )
    result = run(config, install_signals=False)
    assert _wait(lambda: len(got) >= 31)
    client.loop_stop()
    detections = [m for topic, m in got if topic == "od/dev-1/detections"]
    assert len(detections) == 30 == result.frames
    assert [m["frame"] for m in detections] == list(range(30))
    assert any(topic == "od/dev-1/health" for topic, _ in got)


def test_broker_away_buffers_then_delivers(broker_factory):
    server = broker_factory()
    counters = Counters()
    publisher = BufferedPublisher(MqttTransport("127.0.0.1", server.port, "buffer-test"), counters, capacity=5)
    for index in range(8):
        publisher.publish("od/t/detections", json.dumps({"n": index}).encode())
    time.sleep(0.5)
    assert counters.get("publish_dropped") == 3  # bounded: the 3 oldest went, counted
    server.start()
    client, got = _subscriber(server.port, "od/#")
    assert _wait(lambda: len(got) == 5, 30)  # the transport reconnected by itself and drained the buffer
    assert [m["n"] for _, m in got] == [3, 4, 5, 6, 7]
    client.loop_stop()
    publisher.close()


def test_request_mode_answers_on_the_result_topic(scene, broker, tmp_path):
    import cv2

    image = tmp_path / "request.jpg"
    capture = cv2.VideoCapture(str(scene["video"]))
    for _ in range(40):
        ok, frame = capture.read()
    cv2.imwrite(str(image), frame)
    client, got = _subscriber(broker.port, "od/dev-2/results")
    stop = threading.Event()
    config = EdgeConfig.from_mapping(
        {
            "model_dir": str(scene["package"]),
            "source": "request",
            "publisher": "mqtt",
            "mqtt_port": str(broker.port),
            "thing_name": "dev-2",
            "health_interval": "3600",
        }
    )
    worker = threading.Thread(target=run, args=(config, stop), kwargs={"install_signals": False}, daemon=True)
    worker.start()
    time.sleep(1.0)
    sender = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sender.connect("127.0.0.1", broker.port)
    sender.loop_start()
    sender.publish("od/dev-2/requests", json.dumps({"image": str(image)}), qos=1).wait_for_publish(5)
    assert _wait(lambda: len(got) == 1, 20)
    stop.set()
    worker.join(10)
    answer = got[0][1]
    assert answer["source"] == str(image) and answer["detections"]
    sender.loop_stop()
    client.loop_stop()
