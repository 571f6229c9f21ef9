"""Issue 17 item 6: ``vigil run --cot URL`` sends the service's alerts as Cursor-on-Target.

End to end: a real Mosquitto, ``vigil run`` as its own process, a device's tamper report over
MQTT, and the CoT event read back (a) from a real TAK server, taky (a Python TAK server and
CoT router, https://pypi.org/project/taky/; ``make test`` installs it in ``.tak/``, and it is
also looked for on PATH and in ``$VIGIL_TAKY``), by a TAK client connected to it, and (b) from
a plain TCP listener that parses the XML (always). Nothing of pytak is mocked.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from broker import SECTOR, SERVICE_USER, free_port, service_broker
from tak_server import (
    REPO,
    Listener,
    Taky,
    TlsListener,
    UdpListener,
    deployment_with_cot,
    taky_path,
)

from vigil.alerts.cot import ALERT_STALE_S, CLOSE_TYPE, cot_time, schema_errors, validate_event
from vigil.ingest.schema import (
    AlertAction,
    SensorEvent,
    SensorStatus,
    decode,
    encode,
    topic_for,
)

SENSOR, GATEWAY = "u001", "g1"


@pytest.fixture
def broker():
    with service_broker() as b:
        yield b


@pytest.fixture(params=["taky", "tcp-listener", "udp-listener", "tls-listener"])
def tak(request, tmp_path):
    if request.param == "taky":
        exe = taky_path()
        if exe is None:
            pytest.skip("taky (pip install taky, in its own venv) is not installed")
        t = Taky(exe, tmp_path / "taky")
    elif request.param == "tls-listener":
        if shutil.which("openssl") is None:
            pytest.skip("openssl is not installed")
        t = TlsListener(tmp_path / "certs")
    elif request.param == "udp-listener":
        t = UdpListener()
    else:
        t = Listener()
    try:
        yield t
    finally:
        t.close()


def cot_arguments(via: str, tak, tmp_path) -> tuple[list[str], str, float]:
    """``vigil run``'s arguments that send CoT to ``tak`` (``--cot`` flags, or a deployment
    whose ``[cot]`` section says so, its TLS files relative to it), with the uid prefix and
    the alert stale time (s) the events must have."""
    if via == "flag":
        return ["--cot", tak.url, *getattr(tak, "args", [])], "vigil", ALERT_STALE_S
    scheme, address = tak.url.split("://")
    host, port = address.rsplit(":", 1)
    cot = {"enabled": True, "protocol": scheme, "host": host, "port": int(port),
           "uid_prefix": "site7", "alert_stale_s": 900.0}  # fmt: skip
    if isinstance(tak, TlsListener):  # its certificates are in tmp_path/certs
        cot |= {"cert_file": "certs/cli.crt", "key_file": "certs/cli.key",
                "ca_file": "certs/ca.crt"}  # fmt: skip
    return ["--deployment", str(deployment_with_cot(tmp_path, cot))], "site7", 900.0


@pytest.mark.parametrize("via", ["flag", "deployment"])
def test_vigil_run_with_cot_sends_alerts_as_cot_events(broker, tak, via, tmp_path):
    state = tmp_path / "state"
    log = tmp_path / "run.log"
    env = dict(os.environ, VIGIL_MQTT_USER=SERVICE_USER, VIGIL_MQTT_PASSWORD="pw")
    cot_args, prefix, stale_s = cot_arguments(via, tak, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigil.cli", "run", "--broker", f"{broker.host}:{broker.port}",
         "--state-dir", str(state), "--hold", "0", "--idle", "1", *cot_args],
        cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    alerts: list = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-dev", protocol=mqtt.MQTTv5)
    c.username_pw_set(SERVICE_USER, "pw")
    c.on_message = lambda cl, u, m: alerts.append(decode(m.topic, m.payload))
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        c.subscribe(f"vigil/v1/{SECTOR}/alerts", qos=1)
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                if json.loads((state / "status.json").read_text())["connected"]:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        now = time.time()
        status = SensorStatus(sensor=SENSOR, time=now, battery=0.9, tamper=True, last_heard=now)
        c.publish(f"vigil/v1/{SECTOR}/ugs/{GATEWAY}/status", encode(status), qos=1)
        deadline = time.monotonic() + 20
        while not alerts:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        alert = alerts[0]
        uid = f"{prefix}.{SECTOR}.alert.{alert.alert_id}"
        event, raw = tak.wait(lambda e: e.get("uid") == uid)
        # sensor health: MITRE's silent sensor trouble, not ATAK's Ring The Bell (b-a-o-pan)
        assert event.get("type") == "b-l-o-tbl-s-a"
        assert event.get("time") == cot_time(alert.time)
        assert event.get("stale") == cot_time(alert.time + stale_s)
        point = event.find("point")
        assert abs(float(point.get("lat")) - alert.lat) < 1e-6
        assert abs(float(point.get("lon")) - alert.lon) < 1e-6
        assert "tamper" in event.find("detail/remarks").text
        if isinstance(tak, TlsListener):  # the service showed its client certificate
            assert ((("commonName", "vigil-tucson"),)) in tak.peer["subject"]
        # exactly what vigil sent, or taky's rewrite of it: a CoT base event either way
        assert schema_errors(raw) == [], raw[:300]
        if not isinstance(tak, Taky):
            validate_event(raw)

        close = AlertAction(alert_id=alert.alert_id, time=time.time(), action="close", by="ops")
        c.publish(topic_for(SECTOR, close), encode(close), qos=1)
        event, _ = tak.wait(lambda e: e.get("uid") == uid and e.get("type") == CLOSE_TYPE)

        # a ground-sensor hit no camera has seen: a sensor cue, a detection (b-d), no bell
        hit = SensorEvent(sensor=SENSOR, time=time.time(), modality="seismic", strength=1.0)
        c.publish(f"vigil/v1/{SECTOR}/ugs/{GATEWAY}/events", encode(hit), qos=1)
        deadline = time.monotonic() + 20
        while not [a for a in alerts if a.kind == "sensor_cue"]:
            assert time.monotonic() < deadline, [a.kind for a in alerts]
            time.sleep(0.05)
        cue = next(a for a in alerts if a.kind == "sensor_cue")
        cue_uid = f"{prefix}.{SECTOR}.alert.{cue.alert_id}"
        event, raw = tak.wait(lambda e: e.get("uid") == cue_uid)
        assert event.get("type") == "b-d"
        assert schema_errors(raw) == [], raw[:300]
    finally:
        c.loop_stop()
        c.disconnect()
        proc.terminate()
        proc.wait(30)
    out = log.read_text()
    assert f"Cursor-on-Target to {tak.url}" in out, out[-2000:]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--cot", "ftp://tak:8087"], "expected a scheme of tcp, udp, udp+wo, tls"),
        (["--cot", "tcp://tak"], "expected tcp://HOST:PORT"),
        (["--cot", "tcp://tak:99999"], "expected tcp://HOST:PORT"),
        (["--cot", "tls://tak:8089"], "tls:// needs --cot-cert FILE"),
        (["--cot", "tcp://tak:8087", "--cot-cert", "pyproject.toml"], "are for tls://"),
        (["--cot", "tls://tak:8089", "--cot-cert", "no-such.pem"], "no such file"),
        (["--cot", "tls://tak:8089", "--cot-cert", "pyproject.toml"], "needs --cot-key FILE"),
    ],
)
def test_bad_cot_options_are_one_line_usage_errors(args, message, tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "vigil.cli", "run", "--insecure", "--broker", "127.0.0.1:1",
         "--state-dir", str(tmp_path / "s"), "--connect-timeout", "0.5", *args],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_tak_server_away_at_start_gets_the_newest_events_when_it_comes(monkeypatch, caplog):
    """Events wait while the TAK server cannot be reached, at most COT_QUEUE_MAX (the oldest
    go, counted); the failures are logged once, not at every retry."""
    import logging

    from vigil.alerts import channels
    from vigil.alerts.engine import AlertEngine
    from vigil.config import load_default

    site = load_default().site
    engine = AlertEngine(site)
    t0 = time.time()
    alerts = []
    for i, sensor in enumerate(site.sensors[:5]):
        st = SensorStatus(sensor=sensor.id, time=t0 + i, battery=0.5, tamper=True, last_heard=t0)
        alerts += [m for m in engine.handle(st) if m.__class__.__name__ == "Alert"]
    assert len(alerts) == 5
    monkeypatch.setattr(channels, "COT_QUEUE_MAX", 3)
    port = free_port()
    caplog.set_level(logging.WARNING, logger="vigil.alerts.channels")
    channel = channels.CotChannel(f"tcp://127.0.0.1:{port}", "tucson", reconnect_s=0.05)
    listener = None
    try:
        # the sender takes the first event and keeps trying it; only then do the others come,
        # so which event is in hand and which wait does not depend on thread timing: the
        # first in hand, 1-3 in the queue, the fourth pushes out the oldest waiting (1)
        channel.send_alert(alerts[0])
        deadline = time.monotonic() + 10.0
        while channel.counts["errors"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        for a in alerts[1:]:
            channel.send_alert(a)
        time.sleep(1.0)  # about 20 failed tries
        assert channel.counts["dropped"] == 1 and channel.counts["errors"] >= 5
        failed = [r for r in caplog.records if "failed" in r.getMessage()]
        assert len(failed) == 1, [r.getMessage() for r in failed]
        listener = Listener.__new__(Listener)
        listener.server = socket.create_server(("127.0.0.1", port))
        listener.port, listener.reader = port, None
        threading.Thread(target=listener._accept, daemon=True).start()
        want = [f"vigil.tucson.alert.{a.alert_id}" for a in [alerts[0], *alerts[2:]]]
        listener.wait(lambda e: e.get("uid") == want[-1])
        assert [e.get("uid") for e in listener.reader.events] == want
        assert any("sent again" in r.getMessage() for r in caplog.records)
    finally:
        channel.close()
        if listener is not None:
            listener.close()
