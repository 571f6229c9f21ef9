"""Issue 19 item 2: a camera's health (``vigil edge camera`` publishes a ``SensorStatus`` naming
the camera on ``vigil/v1/{sector}/cam/{camera}/status``) reaches the service: a camera going
offline or degraded raises a sensor-health alert at its tower, ``ok`` closes it; a camera may
speak only for itself and only a deployed tower's camera is heard (refused and counted
otherwise); the service keeps the camera's latest status retained.

In process (the demo's path: ``SectorCore`` on an ``InProcessBus``; the service's path:
``SectorRunner``), and over a real Mosquitto set up by ``vigil broker init`` with
``vigil run`` in its own process and the tower publishing as its own broker identity.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from broker import SERVICE_USER, Broker, missing_reason

from vigil.config import load_default
from vigil.core import SectorCore
from vigil.ingest.bus import InProcessBus
from vigil.ingest.schema import Alert, MessageError, SensorStatus, decode, encode
from vigil.ingest.sources import Devices, check_source
from vigil.ingest.topics import sensor_state_topic
from vigil.service import SectorRunner

REPO = Path(__file__).resolve().parents[1]
SECTOR = "tucson"
BASE = f"vigil/v1/{SECTOR}"
T0 = 1_780_304_400.0
#: A tower camera of the shipped deployment whose mast stands in zone z1 (Mariposa approach).
CAM = "t03"


def status(camera: str, t: float, state: str = "ok") -> SensorStatus:
    """A camera's health as :class:`vigil.hardware.camera_health.StreamHealth` reports it."""
    return SensorStatus(sensor=camera, time=t, battery=1.0, state=state, last_heard=t)  # type: ignore[arg-type]


def cam_topic(camera: str) -> str:
    return f"{BASE}/cam/{camera}/status"


@pytest.fixture(scope="module")
def site():
    return load_default().site


def health_alerts(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if a.kind == "sensor_health"]


# -- the source check ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "camera", "reason"),
    [
        (cam_topic("t03"), "t03", None),
        (cam_topic("t01"), "t03", "wrong_source"),  # camera t03 on t01's topic
        (cam_topic("t99"), "t99", "unknown_device"),  # no such tower
        (cam_topic("uas1"), "uas1", "unknown_device"),  # the aircraft reports no camera health
        (cam_topic("u001"), "u001", "unknown_device"),  # a ground sensor, not a camera
        (f"{BASE}/ugs/t03/status", "t03", "unknown_device"),  # a camera is no ground sensor
        (sensor_state_topic(SECTOR, "t03"), "t03", None),  # the service's retained copy
        (sensor_state_topic(SECTOR, "t99"), "t99", "unknown_device"),
    ],
    ids=["own", "other-camera", "undeployed", "aircraft", "ground-sensor-id", "ugs-topic",
         "state", "state-undeployed"],
)  # fmt: skip
def test_check_source_of_a_camera_status(site, topic, camera, reason) -> None:
    msg = status(camera, T0, "offline")
    devices = Devices.of_site(site)
    if reason is None:
        assert check_source(topic, msg, devices) is msg
        return
    with pytest.raises(MessageError) as err:
        check_source(topic, msg, devices)
    assert err.value.reason == reason


def test_without_a_device_table_the_topic_must_still_name_the_camera() -> None:
    check_source(cam_topic("t03"), status("t03", T0))
    with pytest.raises(MessageError, match="wrong_source|camera of topic"):
        check_source(cam_topic("t01"), status("t03", T0))


# -- in process: the demo's core and the service's runner ------------------------------------


def test_core_alerts_on_a_camera_offline_and_closes_it_when_ok(site) -> None:
    now = [T0]
    bus = InProcessBus(SECTOR, clock=lambda: now[0])
    core = SectorCore(site, bus)
    alerts: list[Alert] = []
    bus.subscribe(f"{BASE}/alerts", lambda topic, msg: alerts.append(msg))
    try:
        bus.publish(cam_topic(CAM), status(CAM, T0, "offline"))
        bus.publish(cam_topic(CAM), status(CAM, T0 + 30, "offline"))  # still: no second alert
        (raised,) = health_alerts(alerts)
        assert raised.state == "new" and raised.evidence.sensors == [CAM]
        assert raised.summary == f"camera {CAM} offline (tower in zone Mariposa approach (z1))"
        assert raised.zone == "z1"
        tower = next(t for t in site.towers if t.id == CAM)
        assert math.isclose(raised.lat, tower.lat, abs_tol=1e-6)
        assert math.isclose(raised.lon, tower.lon, abs_tol=1e-6)

        now[0] = T0 + 60
        bus.publish(cam_topic(CAM), status(CAM, T0 + 60, "ok"))
        closed = health_alerts(alerts)[-1]
        assert closed.alert_id == raised.alert_id and closed.state == "closed"
        assert closed.history[-1].note == f"camera {CAM} ok again"
        assert closed.history[-1].time == T0 + 60 and closed.history[-1].by is None
        assert not core.engine.open and core.engine.counts["alerts_resolved"] == 1

        # frozen picture: degraded raises a new alert; a tower outside every zone names none
        bus.publish(cam_topic("t01"), status("t01", T0 + 90, "degraded"))
        last = health_alerts(alerts)[-1]
        assert last.state == "new" and last.summary == "camera t01 degraded" and last.zone is None
        assert len(health_alerts(alerts)) == 3
    finally:
        core.close()


def test_a_ground_sensor_alert_still_waits_for_an_operator(site) -> None:
    """Only a camera's alert closes by itself: a ground sensor's stays open on ``ok``."""
    bus = InProcessBus(SECTOR, clock=lambda: T0 + 60)
    core = SectorCore(site, bus)
    alerts: list[Alert] = []
    bus.subscribe(f"{BASE}/alerts", lambda topic, msg: alerts.append(msg))
    try:
        sensor = site.sensors[0].id
        off = SensorStatus(sensor=sensor, time=T0, battery=0.9, state="offline", last_heard=T0)
        bus.publish(f"{BASE}/ugs/{sensor}/status", off)
        ok = SensorStatus(sensor=sensor, time=T0 + 30, battery=0.9, last_heard=T0 + 30)
        bus.publish(f"{BASE}/ugs/{sensor}/status", ok)
        (a,) = health_alerts(alerts)
        assert a.summary == f"sensor {sensor} offline" and len(core.engine.open) == 1
    finally:
        core.close()


def runner_alerts(r: SectorRunner) -> list[Alert]:
    return health_alerts([o.message for o in r.log if isinstance(o.message, Alert)])


def test_runner_alerts_and_clears_and_refuses_what_a_camera_may_not_say(site) -> None:
    refused: list[tuple[str, str]] = []
    r = SectorRunner(
        site,
        hold_s=0.0,
        keep_log=True,
        on_refused=lambda topic, msg, err: refused.append((topic, err.reason)),
    )
    try:
        # camera t03 speaking on t01's topic, and a tower the deployment does not have
        r.handle(cam_topic("t01"), status(CAM, T0, "offline"))
        r.handle(cam_topic("t99"), status("t99", T0 + 1, "offline"))
        r.finish()
        assert runner_alerts(r) == []
        assert refused == [(cam_topic("t01"), "wrong_source"), (cam_topic("t99"), "unknown_device")]
        assert r.counts["refused_wrong_source"] == 1 and r.counts["refused_unknown_device"] == 1
        assert r.core.engine.counts["sensor_unknown"] == 0  # refused before the rules

        r.handle(cam_topic(CAM), status(CAM, T0 + 2, "offline"))
        r.finish()
        (raised,) = runner_alerts(r)
        assert raised.evidence.sensors == [CAM] and raised.state == "new"
        r.handle(cam_topic(CAM), status(CAM, T0 + 40, "ok"))
        r.finish()
        closed = runner_alerts(r)[-1]
        assert (closed.alert_id, closed.state) == (raised.alert_id, "closed")
        assert r.counts["refused"] == 2
    finally:
        r.close()


def test_a_silent_camera_alerts_and_ok_clears_it(site) -> None:
    """A camera adapter that dies sends nothing at all: silence past ``silent_after_s`` raises
    the alert as for a ground sensor, and the camera's next ``ok`` closes it."""
    r = SectorRunner(site, hold_s=0.0, keep_log=True)
    try:
        r.handle(cam_topic(CAM), status(CAM, T0, "ok"))
        silent = r.core.engine.rules.silent_after_s
        r.advance_to(T0 + silent + 20)
        (raised,) = runner_alerts(r)
        assert raised.summary.startswith(f"camera {CAM} silent for ")
        r.handle(cam_topic(CAM), status(CAM, T0 + silent + 25, "ok"))
        r.finish()
        assert runner_alerts(r)[-1].state == "closed"
    finally:
        r.close()


# -- over Mosquitto: vigil broker init, vigil run, the tower's own identity ------------------


@pytest.fixture
def generated():
    """A Mosquitto started from a ``vigil broker init`` folder, and the folder."""
    from test_security_broker import init_folder

    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    folder, port = init_folder()
    b = Broker.from_folder(folder, port)
    try:
        b.start()
        yield b, folder
    finally:
        b.cleanup()
        shutil.rmtree(folder.parent, ignore_errors=True)


@pytest.mark.broker
def test_vigil_run_alerts_on_a_camera_offline_over_mosquitto(generated, tmp_path) -> None:
    from test_security_broker import RawClient, creds, password

    b, folder = generated
    state, log = tmp_path / "state", tmp_path / "run.log"
    env = dict(os.environ, PYTHONPATH=str(REPO), **creds(folder, SERVICE_USER))
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigil.cli", "run", "--broker", f"{b.host}:{b.port}",
         "--state-dir", str(state), "--hold", "0", "--idle", "0.5"],
        cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    map_user = f"vigil-{SECTOR}-map-1"
    watcher = RawClient(b, map_user, password(folder, map_user), "watcher")
    got: list[tuple[str, bytes, bool]] = []
    keys: set[str] = set()
    lock = threading.Lock()

    def on_message(client, userdata, m) -> None:
        # at least once: a resend carries the same vigil-key, which receivers drop
        props = dict(getattr(m.properties, "UserProperty", None) or [])
        key = props.get("vigil-key")
        with lock:
            if key is not None and key in keys:
                return
            if key is not None:
                keys.add(key)
            got.append((m.topic, m.payload, m.retain))

    watcher.client.on_message = on_message
    watcher.client.subscribe(f"{BASE}/alerts", qos=1)
    tower = RawClient(b, f"cam-{CAM}", password(folder, f"cam-{CAM}"), "tower")

    def alerts() -> list[Alert]:
        with lock:
            return [decode(t, p) for t, p, _ in got if t == f"{BASE}/alerts"]

    def wait(pred, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"{what}:\n{log.read_text()[-3000:]}"
            time.sleep(0.1)

    def connected() -> bool:
        try:
            return bool(json.loads((state / "status.json").read_text())["connected"])
        except (OSError, ValueError, KeyError):
            return False

    try:
        wait(connected, "vigil run did not connect")
        now = time.time()
        # another tower's status on t03's topic: the broker lets cam-t03 write it, the service
        # refuses it
        assert tower.publish(cam_topic(CAM), encode(status("t01", now, "offline"))) == "Success"
        assert tower.publish(cam_topic(CAM), encode(status(CAM, now + 0.5, "offline"))) == "Success"
        wait(lambda: health_alerts(alerts()), "no sensor-health alert")
        (raised,) = health_alerts(alerts())
        assert raised.evidence.sensors == [CAM] and raised.summary.startswith(f"camera {CAM}")
        assert tower.publish(cam_topic(CAM), encode(status(CAM, now + 1.0, "ok"))) == "Success"
        wait(lambda: health_alerts(alerts())[-1].state == "closed", "the alert did not close")
        assert [(a.alert_id, a.state) for a in health_alerts(alerts())] == [
            (raised.alert_id, "new"),
            (raised.alert_id, "closed"),
        ]

        def refused() -> int:
            runner = json.loads((state / "status.json").read_text())["runner"]
            return runner.get("refused_wrong_source", 0)

        wait(lambda: refused() == 1, "the status naming t01 was not refused")
        # the camera's latest status, retained for late joiners (the map's identity may read
        # it; one client per identity: the broker makes the user name the client id)
        watcher.client.subscribe(sensor_state_topic(SECTOR, CAM), qos=1)

        def held() -> list[SensorStatus]:
            topic = sensor_state_topic(SECTOR, CAM)
            with lock:
                return [decode(topic, p) for t, p, r in got if t == topic and r]

        wait(lambda: held(), "no retained camera status", timeout=15.0)
        assert held()[-1].state == "ok" and held()[-1].sensor == CAM
    finally:
        for c in (watcher, tower):
            c.close()
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
