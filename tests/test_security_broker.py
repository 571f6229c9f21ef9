"""Issue 18, H3 and "What to build" 3: the broker set-up ``vigil broker init`` writes, run in a
real Mosquitto; client ids of Vigil's processes; credentials required; state files 0600.

Each broker test starts Mosquitto with the generated ``mosquitto.conf`` as it is (on a free
port) and attacks it as a device would: anonymous, outside its topics, under the service's
client id.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from broker import SECTOR, SERVICE_USER, Broker, free_port, missing_reason

from vigil.broker import identities
from vigil.cli import main
from vigil.config import load_default
from vigil.ingest.mqtt import MqttBus, MqttSettings
from vigil.ingest.schema import CameraDetection, encode

REPO = Path(__file__).resolve().parents[1]
BASE = f"vigil/v1/{SECTOR}"

needs_broker = pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))


# -- helpers ------------------------------------------------------------------------------------


def init_folder(*extra: str, port: int | None = None) -> tuple[Path, int]:
    """``vigil broker init`` into a fresh folder under /tmp (Mosquitto run as root reads it as
    the ``mosquitto`` user); returns the folder and the listener's port."""
    port = port or free_port()
    folder = Path(tempfile.mkdtemp(prefix="vigil-h18-")) / "broker"
    owner = ["--owner", "mosquitto"] if os.geteuid() == 0 else []
    assert main(["broker", "init", str(folder), "--port", str(port), *owner, *extra]) == 0
    if os.geteuid() == 0:
        os.chown(folder.parent, *_mosquitto_ids())
    return folder, port


def _mosquitto_ids() -> tuple[int, int]:
    import pwd

    who = pwd.getpwnam("mosquitto")
    return who.pw_uid, who.pw_gid


def creds(folder: Path, user: str) -> dict[str, str]:
    """The variables of one identity's credentials file."""
    out = {}
    for line in (folder / "credentials" / f"{user}.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out[k] = v
    return out


def password(folder: Path, user: str) -> str:
    return creds(folder, user)["VIGIL_MQTT_PASSWORD"]


class RawClient:
    """A plain paho MQTT 5 client, as an attacker's device would use: records CONNACK,
    disconnects, PUBACK reason codes and received topics."""

    def __init__(self, b: Broker, user: str | None, pw: str | None, client_id: str) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.connack: str | None = None
        self.disconnects = 0
        self.pubacks: dict[int, str] = {}
        self.received: list[str] = []
        self._acked = threading.Condition()
        c = self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5
        )
        if user is not None:
            c.username_pw_set(user, pw)
        if b.ca_file is not None:
            c.tls_set(ca_certs=str(b.ca_file))
        c.on_connect = self._on_connect
        c.on_disconnect = lambda *a: setattr(self, "disconnects", self.disconnects + 1)
        c.on_publish = self._on_publish
        c.on_message = lambda cl, u, m: self.received.append(m.topic)
        self._connected = threading.Event()
        c.connect(b.host, b.port)
        c.loop_start()
        self._connected.wait(5.0)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connack = str(reason_code)
        self._connected.set()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._acked:
            self.pubacks[mid] = str(reason_code)
            self._acked.notify_all()

    def publish(self, topic: str, payload: bytes = b"{}") -> str:
        """Publish at QoS 1 and return the broker's PUBACK reason."""
        info = self.client.publish(topic, payload, qos=1)
        with self._acked:
            self._acked.wait_for(lambda: info.mid in self.pubacks, timeout=5.0)
        return self.pubacks.get(info.mid, "no PUBACK")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def detection(camera: str = "t03", t: float | None = None) -> CameraDetection:
    return CameraDetection(
        camera=camera, time=t or time.time(), frame=1, box=(1.0, 2.0, 3.0, 4.0), score=0.9,
        lat=31.34, lon=-110.88, cov=(25.0, 0.0, 0.0, 25.0),
    )  # fmt: skip


@pytest.fixture
def generated() -> tuple[Broker, Path]:
    """A Mosquitto started from a ``vigil broker init`` folder."""
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


def service_settings(b: Broker, folder: Path, **kw) -> MqttSettings:
    return MqttSettings(
        host=b.host, port=b.port, username=SERVICE_USER,
        password=password(folder, SERVICE_USER), reconnect_max_delay_s=0.5, **kw,
    )  # fmt: skip


# -- what broker init writes ----------------------------------------------------------------------


def test_init_writes_private_files_and_prints_no_secret(capsys) -> None:
    if missing_reason():
        pytest.skip(str(missing_reason()))
    folder, _ = init_folder("--maps", "2")
    out = capsys.readouterr()
    try:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert stat.S_IMODE((folder / "credentials").stat().st_mode) == 0o700
        files = [p for p in folder.rglob("*") if p.is_file()]
        assert {p.name for p in files} >= {"mosquitto.conf", "passwd", "acl", "vigil-tucson.env"}
        for p in files:
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
        secrets = [password(folder, p.stem) for p in (folder / "credentials").glob("*.env")]
        assert len(set(secrets)) == len(secrets) >= 10  # one random password per identity
        passwd = (folder / "passwd").read_text()
        for secret in secrets:
            assert secret not in out.out + out.err
            assert secret not in passwd and secret not in (folder / "acl").read_text()
        conf = (folder / "mosquitto.conf").read_text()
        for line in ("allow_anonymous false", "use_username_as_clientid true",
                     "max_packet_size 262144"):  # fmt: skip
            assert line in conf.splitlines()
        assert "#" not in "".join(
            ln for ln in (folder / "acl").read_text().splitlines() if ln.startswith("topic")
        ), "ACL topics are exact: no multi-level wildcard"
        # a second init into the same folder must not overwrite the passwords
        assert main(["broker", "init", str(folder)]) == 3
    finally:
        subprocess.run(["rm", "-rf", str(folder.parent)], check=True)


def test_identities_give_each_device_only_its_own_topics() -> None:
    d = load_default()
    by_user = {i.user: i for i in identities(d, maps=2)}
    t03 = by_user["cam-t03"]
    assert t03.write == (f"{BASE}/cam/t03/detections", f"{BASE}/cam/t03/status")
    assert t03.read == (f"{BASE}/cam/t03/commands",)
    assert by_user["uas-" + d.config.aircraft[0].id].write == (
        f"{BASE}/uas/{d.config.aircraft[0].id}/telemetry",
    )
    g1 = d.config.gateways[0]
    assert set(by_user[f"ugs-{g1.id}"].write) == {
        f"{BASE}/ugs/{x}/{kind}" for x in [*g1.sensors, g1.id] for kind in ("events", "status")
    }
    gateways = [i for i in by_user.values() if i.role == "gateway"]
    sensors = {s.id for s in d.config.sensors}
    written = {t.split("/")[4] for g in gateways for t in g.write}
    assert written == sensors | {g.id for g in d.config.gateways}  # each sensor, nothing else
    svc = by_user[SERVICE_USER]
    assert f"{BASE}/tracks" in svc.write and f"{BASE}/tracks" not in t03.write
    assert by_user[f"{SERVICE_USER}-out"].write == svc.write
    assert {"vigil-tucson-map-1", "vigil-tucson-map-2"} <= set(by_user)
    for i in by_user.values():
        if i.role in ("tower", "gateway", "aircraft"):
            assert not any(t.endswith(("/tracks", "/alerts", "/actions")) for t in i.write), i


def test_the_service_user_is_the_deployments_client_id(tmp_path) -> None:
    """``[broker] client_id`` names the service's stable session; the broker user (and so,
    with use_username_as_clientid, the client id) follows it."""
    from vigil.config import default_deployment_path, parse

    text = (
        default_deployment_path()
        .read_text()
        .replace("[broker]\n", '[broker]\nclient_id = "svc-nogales"\n', 1)
    )
    d = parse(text, tmp_path / "d.toml")
    users = {i.user: i for i in identities(d)}
    assert users["svc-nogales"].role == users["svc-nogales-out"].role == "service"
    assert SERVICE_USER not in users


# -- the generated broker under attack ----------------------------------------------------------


@needs_broker
def test_anonymous_and_wrong_password_are_refused(generated) -> None:
    b, folder = generated
    anon = RawClient(b, None, None, "anon-1")
    wrong = RawClient(b, "cam-t03", "not-the-password", "dev-1")
    right = RawClient(b, "cam-t03", password(folder, "cam-t03"), "dev-2")
    try:
        assert anon.connack == "Not authorized"
        assert wrong.connack in ("Not authorized", "Bad user name or password")
        assert right.connack == "Success"
    finally:
        for c in (anon, wrong, right):
            c.close()


@needs_broker
def test_a_device_cannot_publish_outside_its_topics(generated) -> None:
    b, folder = generated
    d = load_default()
    watcher = RawClient(b, "vigil-tucson-map-1", password(folder, "vigil-tucson-map-1"), "w")
    watcher.client.subscribe(f"{BASE}/#", qos=1)
    time.sleep(0.3)
    tower = RawClient(b, "cam-t03", password(folder, "cam-t03"), "t03")
    g = d.config.gateways[0]
    gateway = RawClient(b, f"ugs-{g.id}", password(folder, f"ugs-{g.id}"), "gw")
    sensor = g.sensors[0]
    other = d.config.gateways[1].sensors[0]  # another gateway's sensor
    try:
        assert tower.publish(f"{BASE}/cam/t03/detections", encode(detection())) == "Success"
        assert tower.publish(f"{BASE}/cam/t03/status") == "Success"  # its camera's health
        assert gateway.publish(f"{BASE}/ugs/{sensor}/events") == "Success"
        forbidden = [
            (tower, f"{BASE}/tracks"),
            (tower, f"{BASE}/alerts"),
            (tower, f"{BASE}/alerts/actions"),
            (tower, f"{BASE}/crossings"),
            (tower, f"{BASE}/quarantine"),
            (tower, f"{BASE}/cam/t01/detections"),
            (tower, f"{BASE}/cam/t01/status"),
            (tower, f"{BASE}/cam/t03/commands"),
            (tower, f"{BASE}/ugs/{sensor}/events"),
            (tower, "vigil/v1/other-sector/cam/t03/detections"),
            (gateway, f"{BASE}/ugs/not-a-sensor/events"),
            (gateway, f"{BASE}/ugs/{other}/events"),
            (gateway, f"{BASE}/ugs/{other}/status"),
            (gateway, f"{BASE}/alerts/actions"),
        ]
        refused = {topic: dev.publish(topic) for dev, topic in forbidden}
        assert set(refused.values()) == {"Not authorized"}, refused
        time.sleep(0.5)
        assert sorted(watcher.received) == sorted(
            [f"{BASE}/cam/t03/detections", f"{BASE}/ugs/{sensor}/events"]
        )
    finally:
        for c in (watcher, tower, gateway):
            c.close()


@needs_broker
def test_h3_a_device_cannot_take_the_service_client_id(generated, tmp_path) -> None:
    """H3: a device connecting as ``vigil-tucson`` knocked the service off the broker. With
    the generated set-up its id becomes its user name; the service stays and hears it."""
    b, folder = generated
    got: list[str] = []
    svc = MqttBus(SECTOR, service_settings(b, folder), SERVICE_USER, None, publish_quarantine=False)
    svc.subscribe(f"{BASE}/cam/+/detections", lambda topic, msg: got.append(topic))
    svc.connect(10.0)
    intruders = []
    try:
        for _ in range(5):
            dev = RawClient(b, "cam-t03", password(folder, "cam-t03"), SERVICE_USER)
            intruders.append(dev)
            assert dev.connack == "Success"
            assert dev.publish(f"{BASE}/cam/t03/detections", encode(detection())) == "Success"
        deadline = time.monotonic() + 5
        while len(got) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(got) == 5
        assert svc.counts.get("disconnected", 0) == 0, dict(svc.counts)
        assert svc.connected
        log = b.log_path.read_text()
        assert f"Client {SERVICE_USER} already connected" not in log
        assert log.count("as cam-t03 (") == 5  # the broker gave each its user name as id
    finally:
        for dev in intruders:
            dev.close()
        svc.close()


@needs_broker
def test_tls_listener_with_the_generated_ca() -> None:
    folder, port = init_folder("--tls")
    b = Broker.from_folder(folder, port)
    try:
        b.start()
        assert b.ca_file is not None
        ok = MqttBus(
            SECTOR,
            MqttSettings(
                host=b.host,
                port=port,
                tls=True,
                ca_file=str(b.ca_file),
                username="cam-t03",
                password=password(folder, "cam-t03"),
            ),  # fmt: skip
            "t03",
        )
        try:
            ok.connect(10.0)
        finally:
            ok.close()
        plain = MqttBus(
            SECTOR,
            MqttSettings(
                host=b.host,
                port=port,
                username="cam-t03",
                password=password(folder, "cam-t03"),
                connect_timeout_s=1.0,
            ),  # fmt: skip
            "t03-plain",
        )
        try:
            with pytest.raises(ConnectionError):
                plain.connect(2.0)
        finally:
            plain.close()
    finally:
        b.cleanup()
        subprocess.run(["rm", "-rf", str(folder.parent)], check=True)
