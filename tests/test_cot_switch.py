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
import ssl
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from broker import SECTOR, SERVICE_USER, Broker, free_port, missing_reason, service_acl

from vigil.alerts.cot import ALERT_STALE_S, CANCEL_TYPE, cot_time, validate_event
from vigil.ingest.schema import AlertAction, SensorStatus, decode, encode, topic_for

REPO = Path(__file__).resolve().parents[1]
SENSOR, GATEWAY = "u001", "g1"


def taky_path() -> str | None:
    made = str(REPO / ".tak" / "bin" / "taky")  # make test installs it there
    for p in (os.environ.get("VIGIL_TAKY"), shutil.which("taky"), made):
        if p and os.access(p, os.X_OK):
            return p
    return None


class EventReader:
    """Reads CoT events from a TCP stream in a thread (events end with ``</event>``)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.events: list[ET.Element] = []
        self.raw: list[bytes] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"</event>" in buf:
                one, buf = buf.split(b"</event>", 1)
                one = one[one.find(b"<event") :] + b"</event>"
                with self._lock:
                    self.raw.append(one)
                    self.events.append(ET.fromstring(one))

    def wait(self, pred, timeout: float = 30.0) -> tuple[ET.Element, bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for e, raw in zip(self.events, self.raw, strict=True):
                    if pred(e):
                        return e, raw
            time.sleep(0.05)
        with self._lock:
            seen = [(e.get("uid"), e.get("type")) for e in self.events]
        raise AssertionError(f"no matching CoT event in {timeout} s; saw {seen}")


class Listener:
    """A plain TCP endpoint that takes CoT (what a TAK client's TCP input is)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.url = f"tcp://127.0.0.1:{self.port}"
        self.reader: EventReader | None = None
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        conn, _ = self.server.accept()
        self.reader = EventReader(conn)

    def wait(self, pred, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while self.reader is None:
            assert time.monotonic() < deadline, "vigil run never connected to the CoT listener"
            time.sleep(0.05)
        return self.reader.wait(pred, deadline - time.monotonic())

    def close(self) -> None:
        self.server.close()


def make_certificates(folder: Path) -> dict[str, Path]:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate (openssl)."""
    folder.mkdir(parents=True, exist_ok=True)
    f = {n: folder / n for n in ("ca.key", "ca.crt", "srv.key", "srv.crt", "cli.key", "cli.crt")}

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
        "-keyout", str(f["ca.key"]), "-out", str(f["ca.crt"]))  # fmt: skip
    for name, cn, ext in (("srv", "127.0.0.1", "subjectAltName=IP:127.0.0.1"),
                          ("cli", "vigil-tucson", "extendedKeyUsage=clientAuth")):  # fmt: skip
        csr = folder / f"{name}.csr"
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
            "-keyout", str(f[f"{name}.key"]), "-out", str(csr))  # fmt: skip
        (folder / f"{name}.ext").write_text(ext + "\n")
        run("x509", "-req", "-in", str(csr), "-CA", str(f["ca.crt"]), "-CAkey", str(f["ca.key"]),
            "-CAcreateserial", "-days", "2", "-extfile", str(folder / f"{name}.ext"),
            "-out", str(f[f"{name}.crt"]))  # fmt: skip
    return f


class TlsListener(Listener):
    """A TLS endpoint that, like a TAK server's streaming port, requires a client certificate
    signed by its CA."""

    def __init__(self, folder: Path) -> None:
        self.certs = make_certificates(folder)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.certs["srv.crt"], self.certs["srv.key"])
        ctx.load_verify_locations(self.certs["ca.crt"])
        ctx.verify_mode = ssl.CERT_REQUIRED
        self.ctx = ctx
        super().__init__()
        self.url = f"tls://127.0.0.1:{self.port}"
        self.args = ["--cot-cert", str(self.certs["cli.crt"]), "--cot-key",
                     str(self.certs["cli.key"]), "--cot-ca", str(self.certs["ca.crt"])]  # fmt: skip

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            try:
                tls = self.ctx.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):
                conn.close()  # a client without a good certificate
                continue
            self.peer = tls.getpeercert()
            self.reader = EventReader(tls)
            return


class UdpListener:
    """A UDP endpoint that takes CoT datagrams (one event each)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"udp://127.0.0.1:{self.port}"
        self.events: list[tuple[ET.Element, bytes]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            self.events.append((ET.fromstring(data), data))

    def wait(self, pred, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e, raw in list(self.events):
                if pred(e):
                    return e, raw
            time.sleep(0.05)
        raise AssertionError(f"no matching CoT datagram; saw {len(self.events)}")

    def close(self) -> None:
        self.sock.close()


class Taky:
    """A taky TAK server on a free port, and a TAK client connected to it that reads events."""

    def __init__(self, exe: str, folder: Path) -> None:
        self.port = free_port()
        self.url = f"tcp://127.0.0.1:{self.port}"
        folder.mkdir(parents=True, exist_ok=True)
        conf = folder / "taky.conf"
        conf.write_text(
            f"[taky]\nhostname = localhost\nnode_id = TEST\nbind_ip = 127.0.0.1\n"
            f"root_dir = {folder}\n\n[cot_server]\nport = {self.port}\n\n[ssl]\nenabled = false\n"
        )
        self.log = folder / "taky.log"
        self.proc = subprocess.Popen(
            [exe, "-c", str(conf)], cwd=folder, stdout=self.log.open("wb"), stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=1)
                break
            except OSError:
                assert self.proc.poll() is None, self.log.read_text()
                assert time.monotonic() < deadline, "taky did not listen"
                time.sleep(0.2)
        sock.settimeout(None)
        now = time.time()
        # a TAK client announces itself (ATAK's position report) before it is routed to
        sock.sendall(
            f'<?xml version="1.0"?><event version="2.0" uid="test-watcher" type="a-f-G-U-C" '
            f'how="h-e" time="{cot_time(now)}" start="{cot_time(now)}" '
            f'stale="{cot_time(now + 3600)}"><point lat="31.3" lon="-110.9" hae="0" ce="10" '
            f'le="10"/><detail><contact callsign="watcher"/>'
            f'<__group name="Cyan" role="Team Member"/></detail></event>'.encode()
        )
        self.reader = EventReader(sock)

    def wait(self, pred, timeout: float = 30.0):
        return self.reader.wait(pred, timeout)

    def close(self) -> None:
        self.reader.sock.close()
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def broker():
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    users = {SERVICE_USER: "pw", f"{SERVICE_USER}-out": "pw"}
    acl = service_acl(SECTOR, SERVICE_USER) + service_acl(SECTOR, f"{SERVICE_USER}-out")
    b = Broker(users, acl)
    try:
        b.start()
        yield b
    finally:
        b.cleanup()


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


def test_vigil_run_with_cot_sends_alerts_as_cot_events(broker, tak, tmp_path):
    state = tmp_path / "state"
    log = tmp_path / "run.log"
    env = dict(os.environ, VIGIL_MQTT_USER=SERVICE_USER, VIGIL_MQTT_PASSWORD="pw")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vigil.cli", "run", "--broker", f"{broker.host}:{broker.port}",
         "--state-dir", str(state), "--hold", "0", "--idle", "1",
         "--cot", tak.url, *getattr(tak, "args", [])],
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
        uid = f"vigil.{SECTOR}.alert.{alert.alert_id}"
        event, raw = tak.wait(lambda e: e.get("uid") == uid)
        assert event.get("type") == "b-a-o-pan"  # sensor health: a panic/alarm point
        assert event.get("time") == cot_time(alert.time)
        assert event.get("stale") == cot_time(alert.time + ALERT_STALE_S)
        point = event.find("point")
        assert abs(float(point.get("lat")) - alert.lat) < 1e-6
        assert abs(float(point.get("lon")) - alert.lon) < 1e-6
        assert "tamper" in event.find("detail/remarks").text
        if isinstance(tak, TlsListener):  # the service showed its client certificate
            assert ((("commonName", "vigil-tucson"),)) in tak.peer["subject"]
        if not isinstance(tak, Taky):
            validate_event(raw)  # exactly what vigil sent (taky rewrites the XML)

        close = AlertAction(alert_id=alert.alert_id, time=time.time(), action="close", by="ops")
        c.publish(topic_for(SECTOR, close), encode(close), qos=1)
        event, _ = tak.wait(lambda e: e.get("uid") == uid and e.get("type") == CANCEL_TYPE)
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
        for a in alerts:
            channel.send_alert(a)
        time.sleep(1.0)  # about 20 failed tries
        assert channel.counts["dropped"] == 2 and channel.counts["errors"] >= 5
        failed = [r for r in caplog.records if "failed" in r.getMessage()]
        assert len(failed) == 1, [r.getMessage() for r in failed]
        listener = Listener.__new__(Listener)
        listener.server = socket.create_server(("127.0.0.1", port))
        listener.port, listener.reader = port, None
        threading.Thread(target=listener._accept, daemon=True).start()
        want = [f"vigil.tucson.alert.{a.alert_id}" for a in alerts[2:]]
        listener.wait(lambda e: e.get("uid") == want[-1])
        assert [e.get("uid") for e in listener.reader.events] == want
        assert any("sent again" in r.getMessage() for r in caplog.records)
    finally:
        channel.close()
        if listener is not None:
            listener.close()
