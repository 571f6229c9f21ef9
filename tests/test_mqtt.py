"""The MQTT bus against a real Mosquitto: delivery, quarantine, ACL, outbox, broker crashes."""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path

import msgspec
import pytest
from broker import SECTOR, SERVICE_USER, Broker

from vigil.ingest.journal import Journal
from vigil.ingest.mqtt import MqttBus, MqttSettings
from vigil.ingest.quarantine import read_quarantine
from vigil.ingest.schema import SensorEvent, encode

pytestmark = pytest.mark.broker

EVENTS = f"vigil/v1/{SECTOR}/ugs/u117/events"


def settings(b: Broker, user: str, **kw) -> MqttSettings:
    """Settings for one of the fixture broker's users (password ``pw-{user}``)."""
    base = {"reconnect_min_delay_s": 0.05, "reconnect_max_delay_s": 0.5, "connect_timeout_s": 5.0}
    base.update(kw)
    return MqttSettings(host=b.host, port=b.port, username=user, password=f"pw-{user}", **base)


def event(i: int, now: float) -> SensorEvent:
    """The i-th test event; ``strength`` carries i so arrivals can be counted."""
    return SensorEvent(sensor="u117", time=now, modality="seismic", strength=float(i))


def service(b: Broker, tmp_path: Path, journal: Journal | None = None, **kw) -> MqttBus:
    """The sector service's bus, with a journal, an outbox and a quarantine file."""
    return MqttBus(
        SECTOR,
        settings(b, SERVICE_USER, **kw),
        "svc-tucson",
        tmp_path / "svc-outbox.sqlite",
        tmp_path / "quarantine.jsonl",
        journal,
    )


def device(b: Broker, tmp_path: Path, name: str = "u117", **kw) -> MqttBus:  # noqa
    """A device's publishing bus with its outbox."""
    return MqttBus(SECTOR, settings(b, name, **kw), f"dev-{name}", tmp_path / f"{name}.sqlite")


def wait_for(condition, timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_settings_check_values_hide_the_password_and_read_the_environment() -> None:
    with pytest.raises(ValueError, match="port = 0"):
        MqttSettings(port=0)
    with pytest.raises(ValueError, match="session_expiry_s = 0"):
        MqttSettings(session_expiry_s=0)
    s = MqttSettings(username="svc", password="secret")
    assert "secret" not in repr(s)
    env = {"VIGIL_MQTT_HOST": "broker.local", "VIGIL_MQTT_PORT": "8883", "VIGIL_MQTT_TLS": "true"}
    env |= {"VIGIL_MQTT_USER": "svc", "VIGIL_MQTT_PASSWORD": "pw"}
    s = MqttSettings.from_env(env)
    assert (s.host, s.port, s.tls, s.username, s.password) == (
        "broker.local",
        8883,
        True,
        "svc",
        "pw",
    )
    with pytest.raises(ValueError, match="VIGIL_MQTT_PORT = 'x'"):
        MqttSettings.from_env({"VIGIL_MQTT_PORT": "x"})


def test_wrong_password_is_refused_with_the_reason(broker: Broker, tmp_path: Path) -> None:
    s = MqttSettings(host=broker.host, port=broker.port, username="u117", password="nope")
    bus = MqttBus(SECTOR, s, "dev-u117", tmp_path / "o.sqlite")
    try:
        with pytest.raises(ConnectionError, match="Not authorized|Bad user name"):
            bus.connect(timeout=1.5)
    finally:
        bus.close()


def test_messages_arrive_in_order_and_bad_ones_are_quarantined(
    broker: Broker, tmp_path: Path
) -> None:
    now = time.time()
    journal = Journal(tmp_path / "journal.sqlite")
    svc = service(broker, tmp_path, journal)
    got: list[float] = []
    svc.subscribe(f"vigil/v1/{SECTOR}/#", lambda t, m: got.append(m.strength))
    svc.connect(5)
    dev = device(broker, tmp_path).connect(5)
    for i in range(50):
        dev.publish(EVENTS, event(i, now))
    bad = encode(event(99, now)).replace(b"seismic", b"sonar")
    dev.publish(EVENTS, b"\xff\x00garbage")
    dev.publish(EVENTS, bad)
    assert dev.flush(10)
    # the broker has them; it forwards them in its own time (seconds on a loaded machine)
    assert wait_for(lambda: len(got) >= 50 and sum(svc.quarantine_counts.values()) >= 2, 20)
    assert svc.wait_idle(10)
    assert got == [float(i) for i in range(50)]
    assert svc.counts["accepted"] == 50
    assert dict(svc.quarantine_counts) == {"not_json": 1, "wrong_type": 1}
    records = read_quarantine(tmp_path / "quarantine.jsonl")
    assert [r.reason for r in records] == ["not_json", "wrong_type"]
    assert records[0].raw == b"\xff\x00garbage"
    assert base64.b64decode(records[1].raw_b64) == bad
    assert records[1].field == "modality" and records[0].topic == EVENTS
    # the reports went out on the quarantine topic too, and came back to the service once each
    assert wait_for(lambda: svc.counts["quarantine_reports_seen"] == 2)
    assert journal.count("accepted") == 50 and journal.count("quarantined") == 2
    assert journal.done_seq("svc-tucson") >= 50
    dev.close()
    svc.close()
    journal.close()


def test_a_device_publishing_as_another_is_refused_by_the_acl(
    broker: Broker, tmp_path: Path
) -> None:
    now = time.time()
    svc = service(broker, tmp_path)
    sensors: list[str] = []
    svc.subscribe(f"vigil/v1/{SECTOR}/#", lambda t, m: sensors.append(f"{t}:{m.sensor}"))
    svc.connect(5)
    u118 = device(broker, tmp_path, "u118").connect(5)
    forged = SensorEvent(sensor="u117", time=now, modality="pir", strength=1.0)
    u118.publish(EVENTS, forged)  # u118 claiming to be u117
    own = f"vigil/v1/{SECTOR}/ugs/u118/events"
    u118.publish(own, SensorEvent(sensor="u118", time=now, modality="pir", strength=1.0))
    assert u118.flush(10)
    assert svc.wait_idle(10)
    assert wait_for(lambda: len(sensors) == 1)
    time.sleep(0.1)
    assert sensors == [f"{own}:u118"]
    assert u118.counts["refused"] == 1
    assert dict(u118.refused_counts) == {"Not authorized": 1}
    assert len(u118.outbox) >= 1  # the accepted one stays for the replay window
    u118.close()
    svc.close()


def test_outbox_keeps_messages_while_the_broker_is_away_and_flushes_them_in_order(
    broker: Broker, tmp_path: Path
) -> None:
    now = time.time()
    journal = Journal(tmp_path / "journal.sqlite")
    svc = service(broker, tmp_path, journal)
    got: list[float] = []
    svc.subscribe(f"vigil/v1/{SECTOR}/ugs/#", lambda t, m: got.append(m.strength))
    svc.connect(5)
    dev = device(broker, tmp_path).connect(5)
    dev.publish(EVENTS, event(0, now))
    assert dev.flush(5) and svc.wait_idle(5)
    broker.stop()
    for i in range(1, 40):
        dev.publish(EVENTS, event(i, now))
    assert dev.outbox.unacked() == 39
    broker.start()
    assert dev.flush(15), dev.last_error
    assert wait_for(lambda: len(set(got)) == 40, 15)
    assert svc.wait_idle(10)
    assert got == [float(i) for i in range(40)]
    dev.close()
    svc.close()
    journal.close()


def test_outbox_survives_the_publisher_process(broker: Broker, tmp_path: Path) -> None:
    now = time.time()
    svc = service(broker, tmp_path, Journal(tmp_path / "journal.sqlite"))
    got: list[float] = []
    svc.subscribe(f"vigil/v1/{SECTOR}/ugs/#", lambda t, m: got.append(m.strength))
    svc.connect(5)
    # A publisher that never reaches the broker, then goes away with its messages on disk.
    away = MqttSettings(host="127.0.0.1", port=1, reconnect_min_delay_s=0.05)
    lost = MqttBus(SECTOR, away, "dev-u117", tmp_path / "u117.sqlite").start()
    for i in range(10):
        lost.publish(EVENTS, event(i, now))
    lost.close()
    dev = device(broker, tmp_path).connect(5)
    assert dev.flush(10)
    assert wait_for(lambda: len(got) == 10)
    assert got == [float(i) for i in range(10)]
    dev.close()
    svc.close()


def test_broker_sigkill_mid_stream_loses_and_duplicates_nothing(
    broker: Broker, tmp_path: Path
) -> None:
    """Publisher with outbox, subscriber with persistent session and journal; kill -9 the
    broker mid-stream, restart it, and count every message against what was sent."""
    n = 3000
    now = time.time()
    journal = Journal(tmp_path / "journal.sqlite")
    svc = service(broker, tmp_path, journal)
    got: list[int] = []
    svc.subscribe(f"vigil/v1/{SECTOR}/ugs/#", lambda t, m: got.append(int(m.strength)))
    svc.connect(5)
    dev = device(broker, tmp_path).connect(5)
    broker.wait_saved()  # the sessions autosaved once, as a long-running broker's would be

    def publish_all() -> None:
        for i in range(n):
            dev.publish(EVENTS, event(i, now))
            if i % 100 == 0:
                time.sleep(0.01)

    sender = threading.Thread(target=publish_all)
    sender.start()
    assert wait_for(lambda: len(got) >= n // 3, 20)
    broker.kill()
    killed_at = len(got)
    time.sleep(0.3)
    broker.start()
    sender.join(30)
    assert dev.flush(30), dev.last_error
    assert wait_for(lambda: len(set(got)) >= n, 30), (len(set(got)), svc.counts, dev.counts)
    assert svc.wait_idle(10)
    assert killed_at < n  # the kill really happened mid-stream
    assert dev.counts["connected"] >= 2 and svc.counts["connected"] >= 2
    assert sorted(got) == list(range(n)), "each message handled exactly once"
    assert journal.count("accepted") == n
    assert svc.counts["accepted"] == n
    # the journal, and so the handlers, saw the stream in the order it was sent
    order = [int(msgspec.json.decode(e.payload)["strength"]) for e in journal.replay()]
    assert order == list(range(n))
    dev.close()
    svc.close()
    journal.close()


@pytest.mark.parametrize("resend", [False, True], ids=["dropped", "sent-again"])
def test_messages_no_session_took_are_sent_again_until_one_does(
    broker: Broker, tmp_path: Path, resend: bool
) -> None:
    """A broker that has no session subscribed (restarted from a save that missed the
    service's) accepts a device's messages with "no matching subscribers" and drops them;
    with ``resend_unrouted`` the device sends them again, in order, until the service is
    back."""
    now = time.time()
    dev = device(broker, tmp_path, resend_unrouted=resend).connect(5)
    for i in range(20):
        dev.publish(EVENTS, event(i, now))
    assert wait_for(lambda: dev.counts["acked_no_subscribers"] >= 1, 10)
    journal = Journal(tmp_path / "journal.sqlite")
    svc = service(broker, tmp_path, journal)
    got: list[int] = []
    svc.subscribe(f"vigil/v1/{SECTOR}/ugs/#", lambda t, m: got.append(int(m.strength)))
    svc.connect(5)
    if resend:
        assert wait_for(lambda: len(got) >= 20, 20), (got, dev.counts)
        assert dev.flush(10) and svc.wait_idle(10)
        assert got == list(range(20))
        assert dev.counts["unrouted_resends"] >= 1
    else:
        assert dev.flush(5)
        time.sleep(1.0)
        assert got == []  # acknowledged, and gone
    dev.close()
    svc.close()
    journal.close()


@pytest.mark.parametrize(
    ("window_s", "down_s"),
    [(0.0, 0.0), (5.0, 0.0), (1.0, 2.5)],
    ids=["no-replay-window", "replay-window", "down-longer-than-the-window"],
)
def test_acked_messages_a_killed_broker_forgot_are_sent_again(
    tmp_path: Path, window_s: float, down_s: float
) -> None:
    """Messages queued for an offline service, acknowledged by the broker and lost with it.

    Mosquitto autosaves rarely here, so SIGKILL loses what it queued; only the publisher's
    replay window brings those messages back (without it, the test shows them lost). The
    window counts back from when the connection fell, not from the reconnect, so a broker
    that takes longer than the window to come back loses nothing either.
    """
    from broker import missing_reason, sector_broker

    if missing_reason():
        pytest.skip(missing_reason())
    b = sector_broker(autosave_interval_s=3600)
    try:
        b.start()
        now = time.time()
        journal = Journal(tmp_path / "journal.sqlite")
        svc = service(b, tmp_path, journal)
        svc.subscribe(f"vigil/v1/{SECTOR}/ugs/#", lambda t, m: None)
        svc.connect(5)
        svc.close()
        b.restart()  # a clean stop saves the service's session and subscription
        dev = device(b, tmp_path, replay_window_s=window_s).connect(5)
        for i in range(200):
            dev.publish(EVENTS, event(i, now))
        assert dev.flush(10)  # acknowledged by the broker, queued for the offline service
        b.kill()
        time.sleep(down_s)
        b.start()
        assert wait_for(lambda: dev.connected and dev.counts["connected"] >= 2)
        assert dev.flush(10)
        svc = service(b, tmp_path, journal)
        got: list[int] = []
        svc.subscribe(f"vigil/v1/{SECTOR}/ugs/#", lambda t, m: got.append(int(m.strength)))
        svc.connect(5)
        wait_for(lambda: len(got) >= 200, 20 if window_s else 1.5)
        assert svc.wait_idle(5)
        if window_s:
            assert got == list(range(200))
        else:
            assert got == []  # Mosquitto's loss, which the replay window exists to cover
        dev.close()
        svc.close()
        journal.close()
    finally:
        b.cleanup()


SERVICE_CHILD = """
import sys, time
from pathlib import Path
from vigil.ingest.journal import Journal
from vigil.ingest.mqtt import MqttBus, MqttSettings
port, out = int(sys.argv[1]), Path(sys.argv[2])
journal = Journal(out / "journal.sqlite")
settings = MqttSettings(port=port, username="vigil-tucson", password="pw-vigil-tucson",
                        reconnect_min_delay_s=0.05, reconnect_max_delay_s=0.5)
bus = MqttBus("tucson", settings, "svc-tucson", out / "svc-outbox.sqlite", None, journal)
handled = open(out / "handled.txt", "a")
def handle(topic, msg):
    time.sleep(0.0005)  # a handler slower than the wire
    handled.write(f"{int(msg.strength)}\\n")
    handled.flush()
bus.subscribe("vigil/v1/tucson/ugs/#", handle)
print("resumed", bus.resume(), flush=True)
bus.connect(10)
print("ready", flush=True)
while True:
    time.sleep(1)
"""


def test_service_killed_mid_stream_resumes_from_its_journal(broker: Broker, tmp_path: Path) -> None:
    """kill -9 the sector service mid-stream; the restarted one resumes from the journal and
    the broker's persistent session: every message journaled exactly once, handled at least
    once."""
    import os
    import subprocess
    import sys

    n = 1500
    now = time.time()
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(repo))

    def start_service() -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVICE_CHILD, str(broker.port), str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for line in proc.stdout:
            if line.startswith("ready"):
                return proc
        raise AssertionError(f"service did not start: status {proc.wait()}")

    child = start_service()
    dev = device(broker, tmp_path).connect(5)

    def stream() -> None:
        # paced (about 3 s in all), so that the kill lands while the device is still sending:
        # the batched service journals a burst of 1,500 faster than the test can poll
        for i in range(n):
            dev.publish(EVENTS, event(i, now))
            time.sleep(0.002)

    sender = threading.Thread(target=stream, daemon=True)
    sender.start()
    journal = Journal(tmp_path / "journal.sqlite")
    assert wait_for(lambda: journal.count() >= n // 3, 20)
    child.kill()
    child.wait()
    at_kill = journal.count()
    assert at_kill < n, "the service must die mid-stream for this test to mean anything"
    sender.join(30)
    assert dev.flush(10)
    child = start_service()
    try:
        assert wait_for(lambda: journal.count() >= n, 20), journal.count()
        assert wait_for(lambda: journal.done_seq("svc-tucson") >= journal.last_seq, 20)
        time.sleep(0.2)
        assert journal.count("accepted") == n
        order = [int(msgspec.json.decode(e.payload)["strength"]) for e in journal.replay()]
        assert order == list(range(n))
        handled = [int(x) for x in (tmp_path / "handled.txt").read_text().split()]
        assert set(handled) == set(range(n))
    finally:
        child.kill()
        child.wait()
        dev.close()
        journal.close()


def test_a_slow_handler_does_not_hold_back_journaling_and_acks(
    broker: Broker, tmp_path: Path
) -> None:
    now = time.time()
    journal = Journal(tmp_path / "journal.sqlite")
    svc = service(broker, tmp_path, journal)
    release = threading.Event()
    got: list[int] = []

    def slow(topic: str, msg) -> None:
        release.wait(10)
        got.append(int(msg.strength))

    svc.subscribe(f"vigil/v1/{SECTOR}/ugs/#", slow)
    svc.connect(5)
    dev = device(broker, tmp_path).connect(5)
    for i in range(100):
        dev.publish(EVENTS, event(i, now))
    # all journaled and acknowledged while the handler is still stuck on the first message
    assert wait_for(lambda: journal.count() == 100, 10)
    assert dev.flush(10)
    assert got == []
    release.set()
    assert svc.wait_idle(10)
    assert got == list(range(100))
    assert journal.done_seq("svc-tucson") == journal.last_seq
    dev.close()
    svc.close()
    journal.close()


def test_tls_listener_with_the_ca_from_settings(tmp_path: Path) -> None:
    import shutil

    from broker import DEVICES, device_acl, missing_reason

    if missing_reason() or shutil.which("openssl") is None:
        pytest.skip(missing_reason() or "openssl is not installed")
    b = Broker({"u117": "pw-u117"}, device_acl(SECTOR, DEVICES["u117"], "u117"), tls=True)
    try:
        b.start()
        now = time.time()
        tls = settings(b, "u117", tls=True, ca_file=str(b.ca_file))
        bus = MqttBus(SECTOR, tls, "dev-u117", tmp_path / "o.sqlite").connect(5)
        bus.publish(EVENTS, event(1, now))
        assert bus.flush(5) and bus.counts["acked"] == 1
        bus.close()
        plain = MqttBus(SECTOR, settings(b, "u117"), "plain", None)
        with pytest.raises(ConnectionError):
            plain.connect(1.0)
        plain.close()
    finally:
        b.cleanup()
