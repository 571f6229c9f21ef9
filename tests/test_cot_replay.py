"""CoT end to end through the field service: eight recorded minutes of a live demo
(``tests/data/core_replay_8min.vrec``: detections, ground-sensor hits, telemetry) replayed with
``vigil replay`` through a real Mosquitto into ``vigil run``, whose deployment's ``[cot]``
points at a real TAK server (taky); a subscribed TAK client gets every alert the service
publishes (crossings, zone entries, sensor cues; a tamper report adds sensor health) and the
tracks, each with the type of its kind or class, none an emergency, all valid CoT base events.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import paho.mqtt.client as mqtt
import pytest
from broker import SECTOR, SERVICE_USER, service_broker
from tak_server import REPO, Taky, deployment_with_cot, taky_path

from vigil.alerts.cot import EMERGENCY_TYPES, schema_errors
from vigil.ingest.schema import Alert, SensorStatus, decode, encode

pytestmark = [pytest.mark.broker, pytest.mark.slow]

RECORDING = REPO / "tests" / "data" / "core_replay_8min.vrec"
#: What each alert kind and track class must be typed as (alerts/cot.py), written out.
KIND_TYPES = {
    "crossing": "b-a-g",
    "zone_entry": "b-a-g",
    "sensor_cue": "b-d",
    "track_lost": "b-m-p-s-m",
    "sensor_health": "b-l-o-tbl-s-a",
}
CLASS_TYPES = {
    "person": "a-u-G-U-C-I",
    "vehicle": "a-u-G-E-V",
    "animal": "a-n-G",
    "unknown": "a-u-G",
}


@pytest.fixture
def broker():
    with service_broker() as b:
        yield b


def _status(state) -> dict:
    try:
        return json.loads((state / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def test_replayed_sector_reaches_a_tak_client_through_vigil_run_and_taky(broker, tmp_path):
    exe = taky_path()
    if exe is None:
        pytest.skip("taky (make test installs it in .tak/) is not installed")
    taky = Taky(exe, tmp_path / "taky")
    cot = {"enabled": True, "port": taky.port, "tracks": True, "uid_prefix": "replay"}
    deployment = deployment_with_cot(tmp_path, cot)
    env = dict(os.environ, VIGIL_MQTT_USER=SERVICE_USER, VIGIL_MQTT_PASSWORD="pw")
    broker_arg = f"{broker.host}:{broker.port}"
    state, log = tmp_path / "state", tmp_path / "run.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigil.cli", "run", "--deployment", str(deployment),
         "--broker", broker_arg, "--state-dir", str(state), "--hold", "2", "--idle", "2"],
        cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    alerts: list[Alert] = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-ops", protocol=mqtt.MQTTv5)
    c.username_pw_set(SERVICE_USER, "pw")
    c.on_message = lambda cl, u, m: alerts.append(decode(m.topic, m.payload))
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        c.subscribe(f"vigil/v1/{SECTOR}/alerts", qos=1)
        deadline = time.monotonic() + 60
        while not _status(state).get("connected"):
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        replay = subprocess.run(
            [sys.executable, "-m", "vigil.cli", "replay", str(RECORDING), "--speed", "0",
             "--broker", broker_arg, "--client-id", "test-replay"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert replay.returncode == 0, replay.stdout + replay.stderr
        # a tamper report after the recording: a sensor-health alert
        t = 1_780_304_880.0
        status = SensorStatus(sensor="u001", time=t, battery=0.9, tamper=True, last_heard=t)
        c.publish(f"vigil/v1/{SECTOR}/ugs/g1/status", encode(status), qos=1)
        deadline = time.monotonic() + 300
        while not any(a.kind == "sensor_health" for a in alerts):
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, (_status(state), log.read_text()[-3000:])
            time.sleep(0.2)
        last = alerts[-1]
        last_uid = f"replay.{SECTOR}.alert.{last.alert_id}"
        taky.wait(lambda e: e.get("uid") == last_uid, timeout=120)
    finally:
        c.loop_stop()
        c.disconnect()
        proc.terminate()
        proc.wait(30)
        taky.close()
    with taky.reader._lock:  # noqa: SLF001
        received = list(zip(taky.reader.events, taky.reader.raw, strict=True))
    ours = [(e, raw) for e, raw in received if e.get("uid", "").startswith("replay.")]
    kinds = {a.kind for a in alerts}
    assert {"crossing", "zone_entry", "sensor_cue", "sensor_health"} <= kinds, kinds
    types_of: dict[str, set[str]] = {}
    for e, raw in ours:
        types_of.setdefault(e.get("uid"), set()).add(e.get("type"))
        assert schema_errors(raw) == [], raw[:300]
    alert_events = [e for e, _ in ours if f"replay.{SECTOR}.alert." in e.get("uid")]
    assert len(alert_events) == len(alerts)  # every new alert and update, once
    for a in alerts:
        got = types_of.get(f"replay.{SECTOR}.alert.{a.alert_id}")
        assert got == {KIND_TYPES[a.kind]}, (a.alert_id, a.kind, got)
    tracks = {u: t for u, t in types_of.items() if f"replay.{SECTOR}.track." in u}
    assert len(tracks) >= 10
    for uid, types in tracks.items():
        assert types <= set(CLASS_TYPES.values()), (uid, types)
    assert not {e.get("type") for e, _ in ours} & EMERGENCY_TYPES
    out = log.read_text()
    assert f"Cursor-on-Target to {taky.url}" in out, out[-2000:]
