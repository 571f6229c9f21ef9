"""Wire messages: round trips, and a MessageError naming the field for each kind of bad value."""

from __future__ import annotations

import json
import time

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.ingest.schema import (
    Alert,
    AlertEvent,
    CameraDetection,
    Crossing,
    Evidence,
    MessageError,
    PredictedPosition,
    SensorEvent,
    SensorStatus,
    Telemetry,
    Track,
    check,
    decode,
    encode,
    topic_for,
)

NOW = 1_790_000_000.0
SECTOR = "tucson"


def examples() -> list:
    return [
        CameraDetection(
            camera="t03",
            time=NOW,
            frame=12,
            box=(10.0, 20.0, 14.0, 30.0),
            score=0.9,
            lat=31.33,
            lon=-110.94,
            cov=(25.0, 0.0, 0.0, 100.0),
            class_guess="person",
            class_confidence=0.7,
        ),
        SensorEvent(sensor="u117", time=NOW, modality="seismic", strength=3.5, count=2),
        SensorStatus(sensor="u117", time=NOW, battery=0.8, last_heard=NOW - 5),
        Telemetry(
            aircraft="uas1",
            time=NOW,
            lat=31.35,
            lon=-110.9,
            alt_m=2400.0,
            footprint=[(31.34, -110.91), (31.36, -110.91), (31.35, -110.89)],
        ),
        Track(
            track_id="k1",
            time=NOW,
            lat=31.33,
            lon=-110.94,
            vx=0.5,
            vy=1.2,
            cov=(4.0, 1.0, 1.0, 9.0),
            state="confirmed",
            class_probs={"person": 0.8, "animal": 0.1, "vehicle": 0.1},
        ),
        Crossing(
            crossing_id="x1",
            track_id="k1",
            time=NOW,
            segment_id="tucson-0012",
            direction="northbound",
            lat=31.333,
            lon=-110.95,
        ),
        Alert(
            alert_id="a1",
            time=NOW,
            kind="crossing",
            priority=1,
            lat=31.33,
            lon=-110.94,
            predicted=[PredictedPosition(time=NOW + 600, lat=31.36, lon=-110.94)],
            evidence=Evidence(sensors=["t03", "u117"], detections=9),
            history=[AlertEvent(time=NOW, state="new")],
        ),
    ]


@pytest.mark.parametrize("msg", examples(), ids=lambda m: type(m).__name__)
def test_round_trip(msg) -> None:
    topic = topic_for(SECTOR, msg)
    assert topic.startswith("vigil/v1/tucson/")
    assert decode(topic, encode(msg), now=NOW) == msg


def _bad(msg, **changes) -> bytes:
    raw = msgspec.to_builtins(msg)
    for key, value in changes.items():
        if value is ...:
            raw.pop(key)
        else:
            raw[key] = value
    return json.dumps(raw).encode()


DET = examples()[0]
TRK = examples()[4]
TEL = examples()[3]


@pytest.mark.parametrize(
    ("msg", "changes", "field", "reason"),
    [
        (DET, {"lat": "north"}, "lat", "wrong_type"),
        (DET, {"lat": 91.0}, "lat", "out_of_range"),
        (DET, {"lon": -180.5}, "lon", "out_of_range"),
        (DET, {"lat": ...}, "lat", "missing_field"),
        (DET, {"score": 1.5}, "score", "out_of_range"),
        (DET, {"time": 1e30}, "time", "time_future"),
        (DET, {"time": NOW + 3600}, "time", "time_future"),
        (DET, {"time": 12.0}, "time", "time_past"),
        (DET, {"cov": [1.0, 5.0, 5.0, 1.0]}, "cov", "bad_covariance"),
        (DET, {"cov": [1.0, 0.0]}, "cov", "wrong_type"),
        (DET, {"class_guess": "alien"}, "class_guess", "wrong_type"),
        (DET, {"extra": 1}, "extra", "unknown_field"),
        (DET, {"type": "nonsense"}, "type", "unknown_kind"),
        (TRK, {"class_probs": {"person": 2.0}}, "class_probs.person", "out_of_range"),
        (TEL, {"footprint": [[31.0, -110.0], [95.0, -110.0]]}, "footprint[1].lat", "out_of_range"),
    ],
    ids=[
        "type",
        "lat",
        "lon",
        "missing",
        "score",
        "far-future",
        "skew",
        "far-past",
        "covariance",
        "cov-shape",
        "enum",
        "unknown",
        "kind",
        "nested-prob",
        "nested-latlon",
    ],
)
def test_bad_values_name_the_field(msg, changes, field, reason) -> None:
    topic = topic_for(SECTOR, msg)
    with pytest.raises(MessageError) as info:
        decode(topic, _bad(msg, **changes), now=NOW)
    assert info.value.field == field
    assert info.value.reason == reason
    assert field.split(".")[0].split("[")[0] in str(info.value)


def test_non_finite_numbers_are_refused() -> None:
    raw = encode(DET).replace(b'"lat":31.33', b'"lat":1e999')
    with pytest.raises(MessageError) as info:
        decode(topic_for(SECTOR, DET), raw, now=NOW)
    assert info.value.field == "lat" and info.value.reason == "not_finite"


def test_message_on_the_wrong_topic_is_refused() -> None:
    with pytest.raises(MessageError, match="on topic") as info:
        decode("vigil/v1/tucson/tracks", encode(DET), now=NOW)
    assert info.value.reason == "wrong_topic"


def test_skew_is_configurable() -> None:
    late = _bad(DET, time=NOW + 100)
    decode(topic_for(SECTOR, DET), late, now=NOW, max_skew_s=300)
    with pytest.raises(MessageError):
        decode(topic_for(SECTOR, DET), late, now=NOW, max_skew_s=10)


def test_clock_defaults_to_now() -> None:
    fresh = _bad(DET, time=time.time())
    assert decode(topic_for(SECTOR, DET), fresh).camera == "t03"


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_crash_decode(payload: bytes) -> None:
    try:
        decode("vigil/v1/tucson/ugs/u1/events", payload, now=NOW)
    except MessageError as err:
        assert err.reason and err.field


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=800, deadline=None)
@given(st.sampled_from(examples()), st.text(max_size=12), json_values)
def test_mutated_messages_are_accepted_or_refused_cleanly(msg, key, value) -> None:
    raw = msgspec.to_builtins(msg)
    field = key if key and key in raw and key != "type" else next(iter(sorted(raw)))
    raw[field] = value
    try:
        payload = json.dumps(raw, allow_nan=True).encode()
    except (ValueError, TypeError):
        return
    try:
        out = decode(topic_for(SECTOR, msg), payload, now=NOW)
    except MessageError as err:
        assert err.reason
    else:
        assert type(out) is type(msg)


_NUMBERS = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**40), 2**40)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(examples()), st.data())
def test_a_struct_is_checked_as_its_bytes_are_decoded(msg, data) -> None:
    """``check`` on a struct (what the in-process bus does) and ``decode`` of its bytes (what
    a receiver over MQTT does) agree: the same verdict, reason and field, on any topic."""
    numeric = sorted(
        f for f in msg.__struct_fields__ if type(getattr(msg, f)) in (int, float) and f != "schema"
    )
    field = data.draw(st.sampled_from(numeric), label="field")
    value = data.draw(_NUMBERS, label="value")
    if isinstance(getattr(msg, field), int):  # the field's own type, as decoding gives it
        value = int(value) if abs(value) < 2**62 else 0
    else:
        value = float(value)
    changed = msgspec.structs.replace(msg, **{field: value})
    topic = data.draw(
        st.sampled_from([topic_for(SECTOR, msg), "vigil/v1/tucson/tracks", "elsewhere/x"]),
        label="topic",
    )

    def verdict(judge):
        try:
            judge()
        except MessageError as err:
            return err.reason, err.field, str(err)
        return "accepted"

    assert verdict(lambda: check(topic, changed, now=NOW)) == verdict(
        lambda: decode(topic, encode(changed), now=NOW)
    )


def test_numpy_scalars_in_a_struct_are_checked_as_numbers() -> None:
    np = pytest.importorskip("numpy")
    bad = msgspec.structs.replace(examples()[1], count=np.int64(-3))
    with pytest.raises(MessageError) as info:
        check(topic_for(SECTOR, bad), bad, now=NOW)
    assert (info.value.field, info.value.reason) == ("count", "out_of_range")
    with pytest.raises(MessageError, match="a wire message"):
        check("vigil/v1/tucson/tracks", PredictedPosition(time=NOW, lat=0.0, lon=0.0), now=NOW)
