"""Issue 17 item 14: a client that connects late gets the sector's open alerts and sensor
health at once from the broker (retained state topics), and a closed alert is cleared.

Real Mosquitto (tests/broker.py), the real sector service in this process, paho clients."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
import pytest
from broker import SECTOR, SERVICE_USER, Broker, service_users, started

from vigil.config import load_default
from vigil.ingest.mqtt import MqttSettings
from vigil.ingest.schema import AlertAction, SensorStatus, decode, encode, topic_for
from vigil.ingest.topics import alert_state_topic, sensor_state_topic, state_filters
from vigil.service import SectorService

pytestmark = pytest.mark.broker

SENSOR, GATEWAY = "u001", "g1"


@pytest.fixture
def broker():
    users, acl = service_users(late="pw")
    acl += ["user late", f"topic read vigil/v1/{SECTOR}/state/#"]
    with started(users=users, acl=acl) as b:
        yield b


def client(broker: Broker, user: str, name: str) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
    c.username_pw_set(user, "pw")
    c.connect(broker.host, broker.port)
    c.loop_start()
    return c


def late_joiner(
    broker: Broker, wait_s: float = 1.5, expect: tuple[str, ...] = ()
) -> dict[str, bytes]:
    """Connect, subscribe to the state topics, and return what arrives (retained only) within
    ``wait_s`` seconds, or as soon as every topic in ``expect`` has arrived (a loaded machine
    can take longer than a fixed wait to deliver them)."""
    got: dict[str, bytes] = {}
    lock = threading.Lock()

    def on_message(c, userdata, m):
        with lock:
            if m.retain:
                got[m.topic] = m.payload

    c = client(broker, "late", f"late-{time.monotonic_ns()}")
    c.on_message = on_message
    for f in state_filters(SECTOR):
        c.subscribe(f, qos=1)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        with lock:
            if expect and all(t in got for t in expect):
                break
        time.sleep(0.05)
    c.loop_stop()
    c.disconnect()
    with lock:
        return dict(got)


def wait_for(pred, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_late_client_gets_open_alert_and_sensor_health_then_not_the_closed_alert(broker, tmp_path):
    site = load_default().site
    settings = MqttSettings(
        host=broker.host, port=broker.port, username=SERVICE_USER, password="pw"
    )
    service = SectorService(site, settings, tmp_path / "state", hold_s=0.0, idle_s=0.5)
    dev = client(broker, SERVICE_USER, "test-device")
    try:
        service.start(15.0)
        now = time.time()
        status = SensorStatus(sensor=SENSOR, time=now, battery=0.8, tamper=True, last_heard=now)
        topic = f"vigil/v1/{SECTOR}/ugs/{GATEWAY}/status"
        dev.publish(topic, encode(status), qos=1).wait_for_publish(5)
        wait_for(lambda: len(service.state.open_alerts) == 1)
        (alert,) = service.state.open_alerts.values()
        assert alert.kind == "sensor_health"
        service.out_bus.flush(5.0)

        a_topic = alert_state_topic(SECTOR, alert.alert_id)
        s_topic = sensor_state_topic(SECTOR, SENSOR)
        got = late_joiner(broker, 15.0, expect=(a_topic, s_topic))
        assert a_topic in got, got
        held = decode(a_topic, got[a_topic])
        assert held.alert_id == alert.alert_id and held.state != "closed"
        assert decode(s_topic, got[s_topic]).tamper is True

        close = AlertAction(alert_id=alert.alert_id, time=time.time(), action="close", by="ops")
        dev.publish(topic_for(SECTOR, close), encode(close), qos=1).wait_for_publish(5)
        wait_for(lambda: not service.state.open_alerts)
        time.sleep(0.5)
        got = late_joiner(broker)
        assert a_topic not in got, got[a_topic][:200]
        assert s_topic in got  # the sensor's health stays
    finally:
        dev.loop_stop()
        dev.disconnect()
        service.close()


def test_state_is_asserted_again_after_a_broker_restart_without_persistence(broker, tmp_path):
    """A broker that lost its retained messages gets them again when the service reconnects
    (state does not ride in the outbox, whose message count restarts are skipped by)."""
    site = load_default().site
    settings = MqttSettings(
        host=broker.host,
        port=broker.port,
        username=SERVICE_USER,
        password="pw",
        reconnect_max_delay_s=0.5,
    )
    service = SectorService(site, settings, tmp_path / "state", hold_s=0.0, idle_s=0.5)
    dev = client(broker, SERVICE_USER, "test-device")
    try:
        service.start(15.0)
        now = time.time()
        status = SensorStatus(sensor=SENSOR, time=now, battery=0.05, last_heard=now)
        dev.publish(f"vigil/v1/{SECTOR}/ugs/{GATEWAY}/status", encode(status), qos=1)
        wait_for(lambda: len(service.state.open_alerts) == 1)
        dev.loop_stop()
        dev.disconnect()
        published = service.out_bus.outbox.last_seq()
        asserted = service.state.counts["republished"]
        broker.kill()  # before any autosave: the retained messages are gone
        broker.persistence_path.unlink(missing_ok=True)
        broker.start()
        wait_for(lambda: service.state.counts["republished"] > asserted, timeout=20.0)
        (alert,) = service.state.open_alerts.values()
        a_topic = alert_state_topic(SECTOR, alert.alert_id)
        got = late_joiner(broker, 15.0, expect=(a_topic, sensor_state_topic(SECTOR, SENSOR)))
        assert a_topic in got
        assert sensor_state_topic(SECTOR, SENSOR) in got
        # the outbox holds the stream only: the alert, no state messages
        assert service.out_bus.outbox.last_seq() == published
    finally:
        service.close()
