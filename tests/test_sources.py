"""Who may say what (issue 18, build item 2): :func:`vigil.ingest.sources.check_source`, the
identifier and length caps of the wire schema, the deployment's gateway binding, bounded
quarantine records and the sensor-health rule's refusal of unknown sensors."""

from __future__ import annotations

import re
import time

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.alerts.engine import AlertEngine
from vigil.config import ConfigError, load_default, parse
from vigil.geo import site as geo_site
from vigil.ingest.bus import QUARANTINE_RAW_BYTES, InProcessBus
from vigil.ingest.quarantine import QuarantineRecord
from vigil.ingest.schema import (
    IDENT_PATTERN,
    MAX_TEXT,
    Alert,
    AlertAction,
    CameraCommand,
    CameraDetection,
    MessageError,
    SensorEvent,
    SensorStatus,
    Telemetry,
    Track,
    check,
    decode,
    encode,
    topic_for,
)
from vigil.ingest.sources import Devices, check_source, device_ids

B = "vigil/v1/tucson"
NOW = time.time()


@pytest.fixture(scope="module")
def deployment():
    return load_default()


@pytest.fixture(scope="module")
def devices(deployment) -> Devices:
    return Devices.of_site(deployment.site)


def ev(sensor: str) -> SensorEvent:
    return SensorEvent(sensor=sensor, time=NOW, modality="seismic", strength=1.0)


def alert(aid: str = "A1", summary: str = "") -> Alert:
    return Alert(
        alert_id=aid, time=NOW, kind="crossing", priority=1, lat=31.3, lon=-110.9, summary=summary
    )


TRACK = Track(
    track_id="T1", time=NOW, lat=31.3, lon=-110.9, vx=0, vy=0, cov=(1, 0, 0, 1), state="confirmed"
)
DET = CameraDetection(camera="t01", time=NOW, lat=31.3, lon=-110.9, cov=(1, 0, 0, 1))
TEL = Telemetry(aircraft="uas1", time=NOW, lat=31.3, lon=-110.9, alt_m=2000.0)
ACT = AlertAction(alert_id="A1", time=NOW, action="close", by="cmd")
MAP_ACT = AlertAction(alert_id="A1", time=NOW, action="close", by="ana@vigil-tucson-map-1")
CMD = CameraCommand(camera="t01", time=NOW, pan_deg=10.0, tilt_deg=1.0)

CASES = [
    # (topic, message, reason or None)
    (f"{B}/ugs/u001/events", ev("u001"), None),
    (f"{B}/ugs/g1/events", ev("u001"), None),  # the gateway the deployment binds u001 to
    (f"{B}/ugs/g1/events", ev("u011"), "wrong_source"),  # g2's sensor
    (f"{B}/ugs/g2/events", ev("u001"), "wrong_source"),
    (f"{B}/ugs/u117/events", ev("u001"), "wrong_source"),  # M1: a device speaking for another
    (f"{B}/ugs/u117/events", ev("u117"), "unknown_device"),
    (f"{B}/ugs/u001/status", ev("u001"), "wrong_source"),  # an event on the status topic
    (f"{B}/cam/t01/detections", DET, None),
    (f"{B}/cam/t02/detections", DET, "wrong_source"),
    (f"{B}/uas/uas1/telemetry", TEL, None),
    (f"{B}/ugs/uas1/telemetry", TEL, "wrong_source"),
    (f"{B}/tracks", TRACK, None),
    (f"{B}/ugs/u117/tracks", TRACK, "wrong_source"),  # H2: a device's fake track
    (f"{B}/alerts", alert(), None),
    (f"{B}/ugs/u117/alerts", alert(), "wrong_source"),
    (f"{B}/alerts/actions/cmd", ACT, None),
    # issue 18: each identity acts on its own topic, and ``by`` names that identity
    (f"{B}/alerts/actions", ACT, "wrong_source"),  # the old shared topic
    (f"{B}/alerts/actions/vigil-tucson-agent-p01", ACT, "wrong_source"),  # by another
    (f"{B}/alerts/actions/vigil-tucson-map-1", MAP_ACT, None),
    (f"{B}/alerts/actions/vigil-tucson-agent-p01", MAP_ACT, "wrong_source"),  # forged by
    (f"{B}/alerts/actions/vigil-tucson-map-1/x", MAP_ACT, "wrong_source"),
    (f"{B}/ugs/u117/actions", ACT, "wrong_source"),  # H2: a device's forged close
    (f"{B}/cam/t01/commands", CMD, None),
    (f"{B}/ugs/u117/commands", CMD, "wrong_source"),
    (f"{B}/cam/t99/commands", CameraCommand(camera="t99", time=NOW, pan_deg=1, tilt_deg=1),
     "unknown_device"),
    # the service's retained state: the kind and the id its topic names
    (f"{B}/state/alerts/A1", alert("A1"), None),
    (f"{B}/state/alerts/A2", alert("A1"), "wrong_source"),
    (f"{B}/state/alerts/A1", TRACK, "wrong_source"),
    (f"{B}/state/sensors/u001", SensorStatus(sensor="u001", time=NOW, battery=1.0,
                                             last_heard=NOW), None),
    (f"{B}/state/sensors/u117", SensorStatus(sensor="u117", time=NOW, battery=1.0,
                                             last_heard=NOW), "unknown_device"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("topic", "msg", "reason"), CASES, ids=[f"{c[0][len(B) + 1 :]}-{c[2]}" for c in CASES]
)
def test_check_source(devices: Devices, topic: str, msg, reason: str | None) -> None:
    if reason is None:
        assert check_source(topic, msg, devices) is msg
    else:
        with pytest.raises(MessageError) as exc:
            check_source(topic, msg, devices)
        assert exc.value.reason == reason


def test_without_a_device_table_the_topic_must_still_fit() -> None:
    assert check_source(f"{B}/ugs/u117/events", ev("u117")) is not None
    with pytest.raises(MessageError, match="wrong_source|sensor"):
        check_source(f"{B}/ugs/u117/events", ev("u001"))


def test_every_topic_for_fits_its_message(devices: Devices) -> None:
    for msg in (ev("u001"), DET, TEL, TRACK, alert(), ACT, CMD):
        check_source(topic_for("tucson", msg), msg, devices)


# -- the schema's caps ------------------------------------------------------------------------


def test_the_wire_identifier_is_the_deployments() -> None:
    (meta,) = [m for m in geo_site.Ident.__metadata__ if isinstance(m, msgspec.Meta)]
    assert meta.pattern == IDENT_PATTERN


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("sensor", "<img src=x onerror=alert(1)>", "bad_id"),
        ("sensor", "u" * 65, "bad_id"),
        ("sensor", "a/b", "bad_id"),
        ("sensor", "", "bad_id"),
    ],
    ids=["markup", "too-long", "slash", "empty"],
)
def test_identifiers_are_refused_on_decode_and_check(field: str, value: str, reason: str) -> None:
    raw = encode(ev("u001")).replace(b'"u001"', msgspec.json.encode(value))
    with pytest.raises(MessageError) as exc:
        decode(f"{B}/ugs/u001/events", raw)
    assert (exc.value.reason, exc.value.field) == (reason, field)
    with pytest.raises(MessageError) as exc:
        check(f"{B}/ugs/u001/events", ev(value))
    assert exc.value.reason == reason


def test_free_text_is_capped_and_legitimate_text_passes() -> None:
    ok = alert(summary="northbound crossing on tucson-0012")
    assert decode(f"{B}/alerts", encode(ok)) == ok
    long = alert(summary="x" * (MAX_TEXT + 1))
    for attempt in (
        lambda: decode(f"{B}/alerts", encode(long)),
        lambda: check(f"{B}/alerts", long),
    ):
        with pytest.raises(MessageError) as exc:
            attempt()
        assert (exc.value.reason, exc.value.field) == ("too_long", "summary")


def test_lists_are_capped() -> None:
    many = Alert(
        alert_id="A1", time=NOW, kind="crossing", priority=1, lat=31.3, lon=-110.9,
        units=[f"p{i}" for i in range(1000)],
    )  # fmt: skip
    for attempt in (
        lambda: decode(f"{B}/alerts", encode(many)),
        lambda: check(f"{B}/alerts", many),
    ):
        with pytest.raises(MessageError) as exc:
            attempt()
        assert exc.value.reason == "too_long"


def test_alert_actor_may_be_an_email_like_user_name() -> None:
    act = AlertAction(alert_id="A1", time=NOW, action="acknowledge", by="ana.ruiz@cbp")
    assert decode(f"{B}/alerts/actions/cbp", encode(act)) == act


# -- the deployment's gateways ------------------------------------------------------------------


def test_shipped_deployment_binds_every_sensor_to_one_gateway(devices: Devices) -> None:
    assert devices.sensors and all(g is not None for g in devices.sensors.values())
    assert devices.gateway_sensors("g1")[:2] == ["u001", "u002"]
    assert "g1" in device_ids(devices) and "uas1" in devices.cameras


@pytest.mark.parametrize(
    ("old", "new", "key", "value", "words"),
    [
        ('"u010"]', '"u010", "u999"]', "gateways[0].sensors[10]", "u999", "has not"),
        ('"u011", "u012"', '"u011", "u001"', "gateways[1].sensors[1]", "u001", "already bound"),
        ('id = "g2"', 'id = "t01"', "gateways[1].id", "t01", "already used"),
        ('id = "g2"', 'id = "g 2"', "gateways[1].id", "g 2", "regex"),
    ],
    ids=["unknown-sensor", "bound-twice", "id-taken", "bad-id"],
)
def test_gateway_errors_name_key_value_and_line(deployment, old, new, key, value, words) -> None:
    assert old in deployment.text
    text = deployment.text.replace(old, new, 1)
    with pytest.raises(ConfigError) as exc:
        parse(text, "d.toml")
    e = exc.value
    assert (e.key, e.value) == (key, value) and words in e.expected
    assert e.line is not None
    assert text.splitlines()[e.line - 1].startswith(key.rsplit(".", 1)[1].split("[")[0])


# -- bounded quarantine, unknown sensors ---------------------------------------------------------


def test_a_quarantine_record_is_bounded_and_keeps_the_size() -> None:
    bus = InProcessBus("tucson")
    raw = b"{" + b"x" * 200_000
    bus.publish(f"{B}/ugs/u001/events", raw)
    (q,) = bus.quarantined
    assert len(q.raw) == QUARANTINE_RAW_BYTES and q.size == len(raw)
    assert len(q.error) <= 1024
    assert QuarantineRecord.of(q).size == len(raw)


def test_sensor_health_ignores_sensors_the_deployment_does_not_have(deployment) -> None:
    engine = AlertEngine(deployment.site)
    st = SensorStatus(sensor="u117", time=NOW, battery=0.9, tamper=True, last_heard=NOW)
    assert engine.handle(st) == []
    assert engine.tick(NOW + 3600.0) == []
    assert engine.book.counts["sensor_unknown"] == 1
    real = SensorStatus(sensor="u001", time=NOW, battery=0.9, tamper=True, last_heard=NOW)
    (a,) = engine.handle(real)
    assert a.summary == "sensor u001 reports tampering"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_a_decoded_identifier_is_always_plain(name: str) -> None:
    raw = encode(ev("u001")).replace(b'"u001"', msgspec.json.encode(name))
    try:
        msg = decode(f"{B}/ugs/u001/events", raw)
    except MessageError as err:
        assert err.reason in ("bad_id", "not_utf8")
        return
    assert re.fullmatch(IDENT_PATTERN, msg.sensor) and not set(msg.sensor) & set("<>&\"'/+#")


def test_the_payload_cap_is_a_setting() -> None:
    from vigil.ingest.mqtt import MqttBus, MqttSettings
    from vigil.ingest.mqtt_receiver import DEFAULT_MAX_PAYLOAD_BYTES

    assert MqttSettings().max_payload_bytes == DEFAULT_MAX_PAYLOAD_BYTES == 256 * 1024
    bus = MqttBus("tucson", MqttSettings(port=1, max_payload_bytes=4096), "cap-test")
    try:
        assert bus.receiver.max_payload_bytes == 4096
    finally:
        bus.close(0.1)
    with pytest.raises(ValueError, match="max_payload_bytes"):
        MqttSettings(max_payload_bytes=0)


@pytest.mark.parametrize("name", ["u001\n", "alice\n", "t01\n"])
def test_an_identifier_with_a_trailing_newline_is_refused(name: str) -> None:
    # Python's ``$`` also matches before a final newline: every anchored identifier pattern
    # must refuse it (msgspec applies patterns with re.search)
    from vigil.ingest.limits import ACTOR_PATTERN, IDENT_PATTERN
    from vigil.maps.live.auth import USER_NAME

    assert not re.search(IDENT_PATTERN, name)
    assert not re.search(ACTOR_PATTERN, name)
    assert not USER_NAME.match(name)
    raw = encode(ev("u001")).replace(b'"u001"', msgspec.json.encode(name))
    with pytest.raises(MessageError) as err:
        decode(f"{B}/ugs/u001/events", raw)
    assert err.value.reason == "bad_id"
