"""Cursor-on-Target: every alert's XML validates, and a TAK-style receiver parses all it gets."""

from __future__ import annotations

import socket
import socketserver
import threading
import xml.etree.ElementTree as ET

import pytest
from alert_scenes import T0, Scene, alerts_of

from vigil.alerts.channels import CotChannel
from vigil.alerts.cot import CotError, alert_event, track_event, validate_event
from vigil.alerts.engine import AlertEngine
from vigil.config import load_default
from vigil.ingest.schema import Alert, AlertAction, SensorEvent, SensorStatus


@pytest.fixture(scope="module")
def alerts() -> list[Alert]:
    """Alerts of every kind and state from a scripted scene."""
    site = load_default().site
    engine = AlertEngine(site)
    s = Scene(engine)
    out = []
    out += s.walk_across("k1", 14_500.0, T0)
    for i in range(30):
        x, y = s.border_point(14_500.0, 40.0 + 2 * i)
        out += s.track("k1", x, y, T0 + 10 + i)
    out += engine.handle(
        SensorEvent(sensor=site.sensors[0].id, time=T0, modality="seismic", strength=1.0)
    )
    out += engine.handle(
        SensorStatus(sensor="u010", time=T0, battery=0.5, tamper=True, last_heard=T0)
    )
    first = alerts_of(out)[0]
    out += engine.handle(
        AlertAction(alert_id=first.alert_id, time=T0 + 99, action="acknowledge", by="c")
    )
    out += engine.handle(
        AlertAction(alert_id=first.alert_id, time=T0 + 120, action="close", by="c")
    )
    found = alerts_of(out)
    assert {a.kind for a in found} >= {"crossing", "sensor_cue", "sensor_health"}
    assert {a.state for a in found} >= {"new", "updated", "acknowledged", "closed"}
    return found


def test_every_alert_validates(alerts: list[Alert]) -> None:
    for a in alerts:
        event = validate_event(alert_event(a, "tucson"))
        point = event.find("point")
        assert float(point.get("lat")) == pytest.approx(a.lat, abs=1e-7)
        assert float(point.get("lon")) == pytest.approx(a.lon, abs=1e-7)
        assert event.get("type") == ("b-a-o-can" if a.state == "closed" else event.get("type"))
        assert event.get("uid") == f"vigil.tucson.alert.{a.alert_id}"


def test_track_event_validates() -> None:
    from vigil.ingest.schema import Track

    t = Track(
        track_id="k9",
        time=T0,
        lat=31.3312345,
        lon=-110.9,
        vx=1,
        vy=1,
        cov=(9, 0, 0, 4),
        state="confirmed",
    )
    event = validate_event(track_event(t, "tucson"))
    assert event.get("type") == "a-u-G"
    assert event.find("point").get("lat") == "31.3312345"


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda e: e.attrib.pop("uid"), "uid"),
        (lambda e: e.set("stale", e.get("start")), "stale"),
        (lambda e: e.find("point").set("lat", "31.33"), "7 decimals"),
        (lambda e: e.remove(e.find("detail")), "detail"),
        (lambda e: e.set("time", "yesterday"), "time"),
    ],
    ids=["uid", "stale", "precision", "detail", "time"],
)
def test_validator_catches_what_tak_needs(alerts: list[Alert], mutate, words: str) -> None:
    event = ET.fromstring(alert_event(alerts[0], "tucson"))
    mutate(event)
    with pytest.raises(CotError, match=words):
        validate_event(ET.tostring(event))


class _Receiver(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self) -> None:
        self.events: list[ET.Element] = []
        self.errors: list[str] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:  # a TAK-style stream: concatenated <event> documents
        buf = b""
        while chunk := self.request.recv(65536):
            buf += chunk
            while b"</event>" in buf:
                end = buf.index(b"</event>") + len(b"</event>")
                doc, buf = buf[:end], buf[end:]
                try:
                    self.server.events.append(validate_event(doc.strip()))
                except CotError as exc:
                    self.server.errors.append(str(exc))


def test_tak_receiver_over_tcp_parses_every_event(alerts: list[Alert]) -> None:
    server = _Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address
    channel = CotChannel(f"tcp://{host}:{port}", "tucson")
    try:
        for a in alerts:
            channel.send_alert(a)
        assert channel.flush(10.0)
        channel.close()
        import time

        deadline = time.monotonic() + 5
        while len(server.events) < len(alerts) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        server.shutdown()
        server.server_close()
    assert server.errors == []
    assert len(server.events) == len(alerts) == channel.counts["sent"]
    uids = [e.get("uid") for e in server.events]
    assert uids == [f"vigil.tucson.alert.{a.alert_id}" for a in alerts]


def test_send_only_udp(alerts: list[Alert]) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5.0)
    port = sock.getsockname()[1]
    channel = CotChannel(f"udp+wo://127.0.0.1:{port}", "tucson")
    try:
        for a in alerts[:3]:
            channel.send_alert(a)
        got = [validate_event(sock.recv(65536)) for _ in range(3)]
    finally:
        channel.close()
        sock.close()
    assert [g.get("uid") for g in got] == [f"vigil.tucson.alert.{a.alert_id}" for a in alerts[:3]]
