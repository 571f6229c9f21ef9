"""Issue 18 H2, M1, M6 (and issue 17 item 1) against real Mosquitto, the sector service and the
live map server: who may say what on the wire, and how much.

The broker has the sector service, the map and one ground-sensor device ``u117`` whose ACL lets
it write anything under its own prefix ``vigil/v1/tucson/ugs/u117/#`` (as the penetration test
had it). ``u117`` is not a sensor of the Tucson deployment. The attacks:

- H2: ``u117`` forges, under its own prefix, a "close" of a real alert, a track, a priority-1
  alert, an aircraft, a tower pointing and 520 fake alerts: the map must show none of them and
  keep the real alert open;
- M1: ``u117`` reports a person on sensor ``u001`` (another gateway's sensor) and tampering on
  itself: the service must raise no alert and turn no tower, and quarantine both with reasons;
- M6: ``u117`` sends a 10 MB message: the service's state folder grows by less than 1 MB.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from broker import SERVICE_USER, Broker, device_acl, missing_reason, service_acl
from live_client import FAST_HASH, PASSWORDS, Client

from vigil.config import load_default
from vigil.ingest.bus import InProcessBus
from vigil.ingest.mqtt import MqttBus, MqttSettings
from vigil.ingest.schema import (
    Alert,
    AlertAction,
    CameraCommand,
    SensorEvent,
    SensorStatus,
    Telemetry,
    Track,
    encode,
    topic_for,
)
from vigil.maps.live import AuditLog, LiveMapApp, ServerThread, UserStore
from vigil.service import SectorService

SECTOR = "tucson"
BASE = f"vigil/v1/{SECTOR}"
MAP_USER = "vigil-tucson-map"
DEVICE = "u117"
PREFIX = f"{BASE}/ugs/{DEVICE}"

needs_broker = pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))


def wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


@pytest.fixture
def trust_broker():
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    users = {
        SERVICE_USER: f"pw-{SERVICE_USER}",
        f"{SERVICE_USER}-out": f"pw-{SERVICE_USER}",
        MAP_USER: f"pw-{MAP_USER}",
        DEVICE: f"pw-{DEVICE}",
    }
    acl = service_acl(SECTOR, SERVICE_USER) + service_acl(SECTOR, f"{SERVICE_USER}-out")
    acl += [
        f"user {MAP_USER}",
        f"topic read {BASE}/#",
        f"topic write {BASE}/alerts/actions/{MAP_USER}",
    ]
    acl += device_acl(SECTOR, "ugs", DEVICE)
    b = Broker(users, acl)
    try:
        yield b.start()
    finally:
        b.cleanup()


def settings(b: Broker, user: str) -> MqttSettings:
    pw = b.users[user]
    return MqttSettings(host=b.host, port=b.port, username=user, password=pw)


class Raw:
    """A plain paho client, as a device's own software would publish: raw bytes, QoS 1."""

    def __init__(self, b: Broker, user: str, client_id: str) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.received: list[tuple[str, bytes]] = []
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5
        )
        self.client.username_pw_set(user, b.users[user])
        self.client.on_message = lambda _c, _u, m: self.received.append((m.topic, m.payload))
        self.client.connect(b.host, b.port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes | object) -> None:
        data = payload if isinstance(payload, bytes) else encode(payload)  # type: ignore[arg-type]
        info = self.client.publish(topic, data, qos=1)
        info.wait_for_publish(30.0)

    def subscribe(self, pattern: str) -> None:
        self.client.subscribe(pattern, qos=1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def alert(alert_id: str, t: float, priority: int = 2) -> Alert:
    return Alert(
        alert_id=alert_id, time=t, kind="crossing", priority=priority, lat=31.33, lon=-110.9
    )


def users_file(tmp: Path) -> UserStore:
    users = UserStore(tmp / "users.sqlite", hasher=FAST_HASH)
    users.add("cmd", "commander", PASSWORDS["cmd"])
    return users


# -- H2: the map trusts only the service's topics and deployed devices ----------------------------


@needs_broker
def test_h2_device_cannot_forge_map_content(trust_broker: Broker, tmp_path: Path) -> None:
    site = load_default().site
    map_bus = MqttBus(SECTOR, settings(trust_broker, MAP_USER), "vigil-tucson-map-test")
    users = users_file(tmp_path)
    app = LiveMapApp(site, map_bus, users, AuditLog(tmp_path / "audit.sqlite"), tick_s=0.05)
    map_bus.connect(15.0)
    server = ServerThread(app).start()
    service = Raw(trust_broker, SERVICE_USER, "service-test")
    device = Raw(trust_broker, DEVICE, DEVICE)
    try:
        now = time.time()
        service.publish(f"{BASE}/alerts", alert("A-real", now))
        assert wait_for(lambda: "A-real" in app.live.alerts, 10.0)
        tower = site.towers[0].id
        forged = [
            ("actions", AlertAction(alert_id="A-real", time=now, action="close", by="cmd")),
            ("tracks", Track(track_id="FAKE-T1", time=now, lat=31.34, lon=-110.9, vx=0.0,
                             vy=1.0, cov=(4.0, 0.0, 0.0, 4.0), state="confirmed")),
            ("alerts", alert("FAKE-P1", now, priority=1)),
            ("telemetry", Telemetry(aircraft="uas-fake", time=now, lat=31.35, lon=-110.9,
                                    alt_m=2000.0)),
            ("telemetry", Telemetry(aircraft="uas1", time=now, lat=31.35, lon=-110.9,
                                    alt_m=2000.0)),
            ("commands", CameraCommand(camera=tower, time=now, pan_deg=10.0, tilt_deg=1.0,
                                       reason="forged")),
            ("status", SensorStatus(sensor=DEVICE, time=now, battery=0.5, tamper=True,
                                    last_heard=now)),
            ("crossings", b'{"type":"crossing","crossing_id":"FAKE-X","track_id":"FAKE-T1",'
             b'"time":%f,"segment_id":"tucson-0003","direction":"northbound","lat":31.33,'
             b'"lon":-110.9}' % now),
        ]  # fmt: skip
        for leaf, msg in forged:
            device.publish(f"{PREFIX}/{leaf}", msg)
        for i in range(520):  # the flood that filled the old 500-alert cap
            device.publish(f"{PREFIX}/alerts", alert(f"FAKE-{i:04d}", now, priority=1))
        service.publish(f"{BASE}/alerts", alert("A-sentinel", now + 1))
        assert wait_for(lambda: "A-sentinel" in app.live.alerts, 15.0)
        time.sleep(0.5)

        cmd = Client(server.url)
        assert cmd.login("cmd", PASSWORDS["cmd"]).status == 303
        snap = cmd.request("GET", "/api/snapshot").json()
        alerts = {a["id"]: a for a in snap["alerts"]}
        assert "A-real" in alerts and alerts["A-real"]["state"] == "new"
        assert not [a for a in alerts if a.startswith("FAKE")]
        assert [t[0] for t in snap["tracks"]] == []
        assert snap["uas"] == []
        assert {t["id"]: t["reason"] for t in snap["towers"]}[tower] == ""
        assert snap["segments"] == {}
        assert snap["sensors"] == []
        # the map hears only the topics it draws; of the forgeries only the status is on one
        # of them, and u117 is no sensor of the deployment
        assert app.live.counts["refused_unknown_device"] == 1
    finally:
        device.close()
        service.close()
        server.stop()
        app.close()
        map_bus.close()
        users.close()


def test_open_alerts_are_never_evicted_the_overflow_is_counted_and_shown() -> None:
    from vigil.maps.live.state import MAX_ALERTS, LiveState

    live = LiveState(load_default().site)
    t0 = time.time()
    for i in range(MAX_ALERTS + 20):
        a = alert(f"A{i:04d}", t0 + i)
        live.apply(topic_for(SECTOR, a), a)
    snap = live.snapshot()
    assert len(snap["alerts"]) == MAX_ALERTS + 20  # the oldest, A0000, included
    assert "A0000" in {a["id"] for a in snap["alerts"]}
    assert snap["alert_overflow"] == 20
    assert live.take_changes()["alert_overflow"] == 20
    assert live.counts["alerts_over_cap"] == 20
    for i in range(25):  # closed ones leave: the queue is within its size again
        act = AlertAction(alert_id=f"A{i:04d}", time=t0, action="close", by="cmd")
        live.apply(topic_for(SECTOR, act), act)
    assert live.snapshot()["alert_overflow"] == 0


# -- issue 17 item 1: an action does not move the map's clock ---------------------------------


def test_acknowledge_keeps_the_map_on_the_sector_clock(tmp_path: Path) -> None:
    site = load_default().site
    bus = InProcessBus(SECTOR)
    users = users_file(tmp_path)
    app = LiveMapApp(site, bus, users, AuditLog(tmp_path / "audit.sqlite"), tick_s=0.05)
    published: list[AlertAction] = []
    bus.subscribe(f"{BASE}/alerts/actions/+", lambda _t, m: published.append(m))
    sim_t = time.time() - 3 * 86400.0  # a demo's simulated clock, days from the wall's
    for msg in (
        Track(track_id="T1", time=sim_t, lat=31.34, lon=-110.9, vx=0.0, vy=1.0,
              cov=(4.0, 0.0, 0.0, 4.0), state="confirmed"),
        alert("A1", sim_t),
    ):  # fmt: skip
        bus.publish(topic_for(SECTOR, msg), msg)
    try:
        with ServerThread(app) as server:
            cmd = Client(server.url)
            assert cmd.login("cmd", PASSWORDS["cmd"]).status == 303
            for action in ("acknowledge", "assign", "close"):
                body = {"unit": site.units[0].id} if action == "assign" else {}
                reply = cmd.act("A1", action, body)
                if action != "close":
                    assert reply.status == 200, reply.body
                    snap = cmd.request("GET", "/api/snapshot").json()
                    assert [t[0] for t in snap["tracks"]] == ["T1"], action
                    assert snap["now"] == pytest.approx(sim_t, abs=1e-3)
        assert [m.time for m in published[:2]] == [pytest.approx(sim_t)] * 2
        assert app.live.now == pytest.approx(sim_t)
    finally:
        app.close()
        users.close()


# -- M1 and M6: the service -----------------------------------------------------------------------


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@pytest.fixture
def service_and_device(trust_broker: Broker, tmp_path: Path):
    site = load_default().site
    service = SectorService(
        site, settings(trust_broker, SERVICE_USER), tmp_path / "state", hold_s=0.5, idle_s=0.5
    )
    service.start(15.0)
    watcher = Raw(trust_broker, SERVICE_USER, "watcher")
    watcher.subscribe(f"{BASE}/alerts")
    watcher.subscribe(f"{BASE}/cam/+/commands")
    device = Raw(trust_broker, DEVICE, DEVICE)
    try:
        yield service, device, watcher
    finally:
        device.close()
        watcher.close()
        service.close(5.0)


def status(service: SectorService) -> dict:
    try:
        return service.status()
    except (OSError, ValueError):
        return {}


@needs_broker
def test_m1_a_device_speaks_only_for_itself_and_only_if_deployed(service_and_device) -> None:
    service, device, watcher = service_and_device
    now = time.time()
    hit = SensorEvent(sensor="u001", time=now, modality="seismic", strength=5.0,
                      class_guess="person", class_confidence=0.9, count=3)  # fmt: skip
    device.publish(f"{PREFIX}/events", hit)  # another gateway's sensor, near tower t01
    tamper = SensorStatus(sensor=DEVICE, time=now, battery=0.9, tamper=True, last_heard=now)
    device.publish(f"{PREFIX}/status", tamper)  # a sensor the deployment does not have
    assert wait_for(lambda: status(service).get("handled", 0) >= 2, 15.0)
    time.sleep(3.0)  # released (idle 0.5 s), ticked, alerted and sent if it were going to be
    assert watcher.received == []
    q = status(service)["quarantine"]
    assert q.get("wrong_source") == 1 and q.get("unknown_device") == 1, q
    records = [
        json.loads(line)
        for line in (service.state_dir / "quarantine.jsonl").read_text().splitlines()
    ]
    assert {r["reason"] for r in records} == {"wrong_source", "unknown_device"}


@needs_broker
def test_m6_a_10_mb_message_grows_the_state_folder_by_under_1_mb(service_and_device) -> None:
    service, device, _ = service_and_device
    state = service.state_dir
    time.sleep(1.0)
    before = folder_bytes(state)
    pad = b"A" * (10 * 1024 * 1024)
    payload = b'{"type":"sensor_event","sensor":"u117","note":"' + pad + b'"}'
    device.publish(f"{PREFIX}/events", payload)
    assert wait_for(lambda: status(service).get("quarantine", {}).get("too_large") == 1, 20.0)
    time.sleep(1.5)  # status, outboxes and the journal's WAL settle
    grown = folder_bytes(state) - before
    assert grown < 1024 * 1024, f"state folder grew by {grown} bytes"
    (record,) = [json.loads(x) for x in (state / "quarantine.jsonl").read_text().splitlines()]
    assert record["reason"] == "too_large" and record["size"] == len(payload)
    assert len(record["raw_b64"]) < 8192
