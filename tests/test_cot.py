"""Cursor-on-Target: every alert's XML validates against the CoT base event schema, each kind
and class has its type, and a TAK-style receiver parses all it gets."""

from __future__ import annotations

import socket
import socketserver
import threading
import xml.etree.ElementTree as ET

import pytest
from alert_scenes import T0, alerts_of
from cot_scenes import RULES, close_of, every_kind

from vigil.alerts.channels import CotChannel
from vigil.alerts.cot import (
    EMERGENCY_TYPES,
    CotError,
    alert_event,
    schema_errors,
    track_event,
    validate_event,
)
from vigil.alerts.engine import AlertEngine
from vigil.config import load_default
from vigil.ingest.schema import Alert, AlertAction


@pytest.fixture(scope="module")
def alerts() -> list[Alert]:
    """Alerts of every kind and state from a scripted scene."""
    site = load_default().site
    engine = AlertEngine(site, RULES)
    out = []
    for message in every_kind(site):
        out += engine.handle(message)
    first = alerts_of(out)[0]
    out += engine.handle(
        AlertAction(alert_id=first.alert_id, time=T0 + 99, action="acknowledge", by="c")
    )
    out += engine.handle(close_of(first.alert_id, T0 + 120))
    found = alerts_of(out)
    assert {a.kind for a in found} == set(KIND_TYPES)
    assert {a.state for a in found} >= {"new", "updated", "acknowledged", "closed"}
    return found


#: The CoT type each alert kind must have while open (alerts/cot.py says why); written out
#: here, not imported, so that a change of mapping fails this test.
KIND_TYPES = {
    "crossing": "b-a-g",
    "zone_entry": "b-a-g",
    "sensor_cue": "b-d",
    "track_lost": "b-m-p-s-m",
    "sensor_health": "b-l-o-tbl-s-a",
}
#: The CoT type of a track of each class.
CLASS_TYPES = {
    "person": "a-u-G-U-C-I",
    "vehicle": "a-u-G-E-V",
    "animal": "a-n-G",
    "unknown": "a-u-G",
}


def test_every_alert_validates(alerts: list[Alert]) -> None:
    for a in alerts:
        raw = alert_event(a, "tucson")
        assert schema_errors(raw) == []
        event = validate_event(raw)
        point = event.find("point")
        assert float(point.get("lat")) == pytest.approx(a.lat, abs=1e-7)
        assert float(point.get("lon")) == pytest.approx(a.lon, abs=1e-7)
        want = "t-x-d-d" if a.state == "closed" else KIND_TYPES[a.kind]
        assert event.get("type") == want, (a.kind, a.state)
        assert event.get("type") not in EMERGENCY_TYPES
        assert event.get("uid") == f"vigil.tucson.alert.{a.alert_id}"
        if a.state == "closed":  # the delete names the alert it takes off the map
            link = event.find("detail/link[@relation='none']")
            assert link is not None and link.get("uid") == event.get("uid")
            assert event.find("detail/__forcedelete") is not None


@pytest.mark.parametrize("cls", sorted(CLASS_TYPES))
def test_track_event_is_typed_by_class(cls: str) -> None:
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
        class_guess=cls,
    )
    raw = track_event(t, "tucson", stale_s=15.0, uid_prefix="east")
    event = validate_event(raw)
    assert event.get("type") == CLASS_TYPES[cls]
    assert event.get("uid") == "east.tucson.track.k9"
    assert event.get("stale") == "2026-06-01T00:00:15.000Z"
    assert event.find("point").get("lat") == "31.3312345"


def test_alert_stale_time_is_the_setting(alerts: list[Alert]) -> None:
    a = alerts[0]
    event = validate_event(alert_event(a, "tucson", stale_s=120.0))
    from vigil.alerts.cot import cot_time

    assert event.get("stale") == cot_time(a.time + 120.0)


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda e: e.find("point").set("lat", "91.0000000"), "lat"),
        (lambda e: e.find("point").set("ce", "-1"), "ce"),
        (lambda e: e.remove(e.find("point")), "point"),
        (lambda e: e.set("type", "B A O"), "type"),
        (lambda e: e.set("how", ""), "how"),
        (lambda e: e.set("stale", "2026-06-01T00:00:00"), "stale"),
        (lambda e: e.append(ET.Element("extra")), "extra"),
        (lambda e: e.set("colour", "red"), "colour"),
    ],
    ids=["lat-range", "ce-negative", "no-point", "type", "how", "stale-not-utc", "child", "attr"],
)
def test_schema_refuses_what_the_base_event_does_not_allow(
    alerts: list[Alert], mutate, words: str
) -> None:
    event = ET.fromstring(alert_event(alerts[0], "tucson"))
    mutate(event)
    errors = schema_errors(ET.tostring(event))
    assert errors and words in " ".join(errors), errors
    with pytest.raises(CotError, match="not a CoT base event"):
        validate_event(ET.tostring(event))


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
