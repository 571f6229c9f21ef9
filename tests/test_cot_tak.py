"""Issue 19 item 3: CoT to a real TAK server. Alerts of every kind, a close, and tracks of every
class go from the alert service through the channel the deployment's ``[cot]`` section builds,
to taky (a TAK server, ``.tak/``), which relays them to a subscribed TAK client (a TCP client
that announced itself with its own position report, as ATAK does). The client must get every
event with the type of its kind or class (never an emergency type), and every event, as Vigil
sent it and as the client got it, must validate against the CoT base event schema.
"""

from __future__ import annotations

import time

import pytest
from cot_scenes import RULES, close_of, every_kind
from tak_server import Listener, Taky, taky_path

from vigil.alerts.channels import CotChannel, cot_channels_from
from vigil.alerts.cot import EMERGENCY_TYPES, alert_event, cot_time, schema_errors, track_event
from vigil.alerts.cot_settings import CotSettings
from vigil.alerts.engine import AlertEngine
from vigil.alerts.service import AlertService
from vigil.config import load_default
from vigil.ingest.bus import InProcessBus
from vigil.ingest.schema import Alert, Track, topic_for

#: What each alert kind and track class must be typed as (alerts/cot.py says why); written
#: out, not imported, so that a change of mapping fails here.
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


def run_scene(settings: CotSettings, tmp_path) -> tuple[list[Alert], list[Track], list]:
    """The scripted sector through an alert service whose channels come from ``settings``:
    every kind of alert, then an operator's close of the first. Returns the alerts and tracks
    the service handled and its channels (flushed, still open)."""
    site = load_default().site
    sector = site.sector.name
    t0 = float(int(time.time()))
    bus = InProcessBus(sector, clock=lambda: t0 + 7000.0)  # the scene's messages are not ahead
    channels = cot_channels_from(settings, sector, tmp_path)
    AlertService(AlertEngine(site, RULES), bus, channels)
    alerts: list[Alert] = []
    bus.subscribe(f"vigil/v1/{sector}/alerts", lambda _t, m: alerts.append(m))
    messages = every_kind(site, t0)
    for m in messages:
        bus.publish(topic_for(sector, m), m)
    first = alerts[0]
    close = close_of(first.alert_id, t0 + 6000)
    bus.publish(topic_for(sector, close), close)
    for ch in channels:
        assert ch.flush(20.0), dict(ch.counts)
    return alerts, [m for m in messages if isinstance(m, Track)], channels


@pytest.fixture
def taky(tmp_path):
    exe = taky_path()
    if exe is None:
        pytest.skip("taky (make test installs it in .tak/) is not installed")
    t = Taky(exe, tmp_path / "taky")
    try:
        yield t
    finally:
        t.close()


def test_every_kind_reaches_a_subscribed_tak_client_through_taky(taky, tmp_path):
    settings = CotSettings(
        enabled=True,
        protocol="tcp",
        host="127.0.0.1",
        port=taky.port,
        tracks=True,
        alert_stale_s=1800.0,
        track_stale_s=90.0,
        uid_prefix="vigiltest",
    )
    alerts, tracks, channels = run_scene(settings, tmp_path)
    try:
        sector = load_default().sector
        assert {a.kind for a in alerts} == set(KIND_TYPES)
        closed = [a for a in alerts if a.state == "closed"]
        assert len(closed) == 1
        # what Vigil sent (the channel builds the same bytes from the same alert and settings)
        for a in alerts:
            sent = alert_event(a, sector, stale_s=1800.0, uid_prefix="vigiltest")
            assert schema_errors(sent) == [], (a.kind, a.state)
        for t in tracks:
            sent = track_event(t, sector, stale_s=90.0, uid_prefix="vigiltest")
            assert schema_errors(sent) == [], t.class_guess

        # what the subscribed TAK client got from taky: the close went last, so once it is
        # in, everything is (one TCP stream from Vigil, relayed in order)
        first = closed[0]
        taky.wait(lambda e: e.get("uid") == f"vigiltest.{sector}.alert.{first.alert_id}"
                  and e.get("type") == "t-x-d-d")  # fmt: skip
        with taky.reader._lock:  # noqa: SLF001
            received = list(zip(taky.reader.events, taky.reader.raw, strict=True))
        ours = [(e, raw) for e, raw in received if e.get("uid", "").startswith("vigiltest.")]
        assert len(ours) == len(alerts) + len(tracks)
        for _, raw in ours:
            assert schema_errors(raw) == [], raw[:300]
        types_of: dict[str, list[str]] = {}
        for e, _ in ours:
            types_of.setdefault(e.get("uid"), []).append(e.get("type"))
        for a in alerts:
            want = "t-x-d-d" if a.state == "closed" else KIND_TYPES[a.kind]
            assert want in types_of[f"vigiltest.{sector}.alert.{a.alert_id}"], (a.kind, a.state)
        for a in {a.alert_id: a for a in alerts}.values():
            got = types_of[f"vigiltest.{sector}.alert.{a.alert_id}"]
            assert set(got) <= {KIND_TYPES[a.kind], "t-x-d-d"}, (a.kind, got)
        last_of = {t.track_id: t for t in tracks}
        assert {t.class_guess for t in last_of.values()} == set(CLASS_TYPES)
        for tid, t in last_of.items():
            got = types_of[f"vigiltest.{sector}.track.{tid}"]
            assert set(got) == {CLASS_TYPES[t.class_guess]}, (tid, t.class_guess, got)

        assert not [e.get("type") for e, _ in ours if e.get("type") in EMERGENCY_TYPES]
        # the alert's stale time is the setting's, after the alert's own time
        crossing = next(a for a in alerts if a.kind == "crossing" and a.state == "new")
        event, _ = taky.wait(
            lambda e: e.get("uid") == f"vigiltest.{sector}.alert.{crossing.alert_id}"
        )
        assert event.get("stale") == cot_time(crossing.time + 1800.0)
        assert channels[0].counts["sent"] == len(alerts) + len(tracks)
        assert channels[0].counts["errors"] == 0
    finally:
        for ch in channels:
            ch.close()


def test_track_classes_and_disabled_section(tmp_path):
    """Only the classes ``[cot] track_classes`` names go out (the others counted); a section
    that is not enabled builds no channel."""
    listener = Listener()
    try:
        settings = CotSettings(
            enabled=True,
            port=listener.port,
            tracks=True,
            track_classes=("person", "vehicle"),
        )
        alerts, tracks, channels = run_scene(settings, tmp_path)
        channels[0].close()
        sent = {t.track_id for t in tracks if t.class_guess in ("person", "vehicle")}
        skipped = [t for t in tracks if t.class_guess not in ("person", "vehicle")]
        assert skipped and channels[0].counts["tracks_skipped"] == len(skipped)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            got = listener.reader.events if listener.reader else []
            if len(got) >= len(alerts) + len(tracks) - len(skipped):
                break
            time.sleep(0.05)
        uids = {e.get("uid") for e in listener.reader.events}
        assert {u.rsplit(".", 1)[-1] for u in uids if ".track." in u} == sent
    finally:
        listener.close()
    assert cot_channels_from(CotSettings(port=listener.port), "tucson", tmp_path) == []
    assert cot_channels_from(None, "tucson", tmp_path) == []


def test_tls_files_resolve_against_the_deployment_folder(tmp_path):
    (tmp_path / "tak").mkdir()
    for name in ("vigil.pem", "vigil.key", "ca.pem"):
        (tmp_path / "tak" / name).write_text("-----BEGIN-----\n")
    settings = CotSettings(
        enabled=True,
        protocol="tls",
        host="tak.example",
        port=8089,
        cert_file="tak/vigil.pem",
        key_file="tak/vigil.key",
        ca_file=str(tmp_path / "tak" / "ca.pem"),
        reconnect_s=60.0,
    )
    (channel,) = cot_channels_from(settings, "tucson", tmp_path)
    try:
        assert isinstance(channel, CotChannel)
        assert channel.url == "tls://tak.example:8089"
        assert channel._config["PYTAK_TLS_CLIENT_CERT"] == str(tmp_path / "tak" / "vigil.pem")  # noqa: SLF001
        assert channel._config["PYTAK_TLS_CLIENT_CAFILE"] == str(tmp_path / "tak" / "ca.pem")  # noqa: SLF001
    finally:
        channel.close()  # nothing queued: it never tries tak.example
    missing = CotSettings(
        enabled=True, protocol="tls", cert_file="tak/none.pem", key_file="tak/vigil.key"
    )
    with pytest.raises(ValueError, match=r"\[cot\] cert_file = 'tak/none.pem': no such file"):
        cot_channels_from(missing, "tucson", tmp_path)


def test_emergency_types_are_not_vigils():
    """No kind maps to an ATAK emergency (911, Ring The Bell, Troops In Contact, cancel)."""
    assert {"b-a-o-tbl", "b-a-o-pan", "b-a-o-opn", "b-a-o-can"} == EMERGENCY_TYPES
    assert not set(KIND_TYPES.values()) & EMERGENCY_TYPES
