"""The sector service's input process (vigil.ingest.mqtt_process): it feeds the core in
batches, and when it dies the core takes what it journaled from the journal and starts another,
so nothing acknowledged is lost or handled twice.

Real Mosquitto (tests/broker.py), the real sector service in this process, a paho device."""

from __future__ import annotations

import json
import os
import signal
import time

import paho.mqtt.client as mqtt
import pytest
from broker import SECTOR, SERVICE_USER, service_broker

from vigil.config import load_default
from vigil.ingest.journal import Journal
from vigil.ingest.mqtt import MqttSettings
from vigil.ingest.mqtt_process import wait_for_lock
from vigil.ingest.schema import SensorStatus, encode
from vigil.service import SectorService

pytestmark = pytest.mark.broker


@pytest.fixture
def broker():
    with service_broker() as b:
        yield b


def wait_for(pred, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_input_process_killed_mid_stream_loses_and_repeats_nothing(broker, tmp_path):
    site = load_default().site
    settings = MqttSettings(
        host=broker.host, port=broker.port, username=SERVICE_USER, password="pw"
    )
    state = tmp_path / "state"
    service = SectorService(site, settings, state, hold_s=0.0, idle_s=5.0)
    dev = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="dev", protocol=mqtt.MQTTv5)
    dev.username_pw_set(SERVICE_USER, "pw")
    dev.max_inflight_messages_set(1000)
    dev.connect(broker.host, broker.port)
    dev.loop_start()
    sensors = [s.id for s in site.sensors][:5]
    topic = f"vigil/v1/{SECTOR}/ugs/g1/status"
    n = 600
    try:
        service.start(30.0)
        child = service.in_bus.pid
        now = time.time()
        infos = []
        for i in range(n):
            t = now + 0.001 * i
            s = SensorStatus(sensor=sensors[i % 5], time=t, battery=0.5, last_heard=t)
            infos.append(dev.publish(topic, encode(s), qos=1))
            if i == n // 2:  # the child dies while messages are arriving
                wait_for(lambda: service.handled > 0)
                os.kill(child, signal.SIGKILL)
        for info in infos:
            info.wait_for_publish(30)
        wait_for(lambda: service.handled >= n)
        time.sleep(0.5)  # anything handled twice would show now
        assert service.handled == n
        assert service._input_restarts == 1 and service.in_bus.pid != child
        status = json.loads((state / "status.json").read_text())
        assert status["connected"] and status["handled"] == n
    finally:
        dev.loop_stop()
        dev.disconnect()
        service.close()
    journal = Journal(state / "journal.sqlite")
    assert journal.count() == n  # each message journaled once (a redelivery is a duplicate)
    journal.close()
    assert wait_for_lock(state / "input.lock", 5.0)  # the child has gone with the service
