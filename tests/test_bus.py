"""The in-process bus: MQTT wildcard matching, ordered delivery, quarantine of bad bytes."""

from __future__ import annotations

import pytest

from vigil.ingest.bus import InProcessBus, TopicError, check_filter, topic_matches
from vigil.ingest.schema import SensorEvent, Track, encode

NOW = 1_790_000_000.0


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("vigil/v1/tucson/tracks", "vigil/v1/tucson/tracks", True),
        ("vigil/v1/+/tracks", "vigil/v1/tucson/tracks", True),
        ("vigil/v1/+/tracks", "vigil/v1/tucson/alerts", False),
        ("vigil/v1/+/ugs/+/events", "vigil/v1/tucson/ugs/u117/events", True),
        ("vigil/v1/+/ugs/+/events", "vigil/v1/tucson/ugs/u117/status", False),
        ("vigil/v1/tucson/#", "vigil/v1/tucson/cam/t03/detections", True),
        ("vigil/v1/tucson/#", "vigil/v1/tucson", True),
        ("vigil/v1/tucson/#", "vigil/v1/yuma/tracks", False),
        ("#", "vigil/v1/tucson/tracks", True),
        ("#", "$SYS/broker/uptime", False),
        ("+/broker/uptime", "$SYS/broker/uptime", False),
        ("$SYS/#", "$SYS/broker/uptime", True),
        ("vigil/+", "vigil/v1/tucson", False),
        ("vigil/v1/+", "vigil/v1/", True),
        ("+/+", "/finance", True),
        ("vigil/v1/tucson/tracks", "vigil/v1/tucson/tracks/extra", False),
    ],
    ids=lambda v: str(v),
)
def test_topic_wildcards(pattern: str, topic: str, expected: bool) -> None:
    assert topic_matches(pattern, topic) is expected


@pytest.mark.parametrize("pattern", ["a/#/b", "a/b#", "a+/b", "", "a/+b"])
def test_bad_filters_are_refused(pattern: str) -> None:
    with pytest.raises(TopicError):
        check_filter(pattern)


def _event(i: int) -> SensorEvent:
    return SensorEvent(sensor=f"u{i}", time=NOW + i, modality="seismic", strength=1.0)


def test_delivery_in_order_to_matching_subscribers() -> None:
    bus = InProcessBus("tucson", clock=lambda: NOW + 100)
    got_all: list[str] = []
    got_u1: list[str] = []
    bus.subscribe("vigil/v1/tucson/#", lambda t, m: got_all.append(m.sensor))
    bus.subscribe("vigil/v1/tucson/ugs/u1/+", lambda t, m: got_u1.append(m.sensor))
    for i in range(5):
        bus.publish(f"vigil/v1/tucson/ugs/u{i}/events", _event(i))
    assert got_all == [f"u{i}" for i in range(5)]
    assert got_u1 == ["u1"]


def test_publish_from_handler_is_delivered_after_current_message() -> None:
    bus = InProcessBus("tucson", clock=lambda: NOW + 100)
    order: list[str] = []

    def relay(topic: str, msg) -> None:
        order.append(f"event {msg.sensor}")
        bus.publish(
            "vigil/v1/tucson/tracks",
            Track(
                track_id=msg.sensor,
                time=msg.time,
                lat=31.3,
                lon=-110.9,
                vx=0,
                vy=0,
                cov=(1, 0, 0, 1),
                state="tentative",
            ),
        )
        order.append(f"done {msg.sensor}")

    bus.subscribe("vigil/v1/tucson/ugs/+/events", relay)
    bus.subscribe("vigil/v1/tucson/tracks", lambda t, m: order.append(f"track {m.track_id}"))
    bus.publish("vigil/v1/tucson/ugs/u1/events", _event(1))
    assert order == ["event u1", "done u1", "track u1"]


def test_bad_bytes_go_to_quarantine_and_are_counted() -> None:
    bus = InProcessBus("tucson", clock=lambda: NOW + 100)
    got: list[object] = []
    seen: list[str] = []
    bus.subscribe("#", lambda t, m: got.append(m))
    bus.on_quarantine(lambda q: seen.append(q.reason))
    bus.publish("vigil/v1/tucson/ugs/u1/events", encode(_event(1)))
    bus.publish("vigil/v1/tucson/ugs/u1/events", b"\xff\x00garbage")
    bus.publish("vigil/v1/tucson/ugs/u1/events", encode(_event(1)).replace(b"seismic", b"sonar"))
    assert len(got) == 1
    assert bus.quarantine_counts == {"not_json": 1, "wrong_type": 1}
    assert seen == ["not_json", "wrong_type"]
    assert bus.quarantined[0].raw == b"\xff\x00garbage"
    assert "modality" in bus.quarantined[1].error


def test_unsubscribe_and_close() -> None:
    bus = InProcessBus("tucson", clock=lambda: NOW + 100)
    got: list[object] = []
    sub = bus.subscribe("#", lambda t, m: got.append(m))
    bus.publish("vigil/v1/tucson/ugs/u1/events", _event(1))
    bus.unsubscribe(sub)
    bus.publish("vigil/v1/tucson/ugs/u1/events", _event(1))
    assert len(got) == 1
    bus.close()
    with pytest.raises(RuntimeError):
        bus.publish("vigil/v1/tucson/ugs/u1/events", _event(1))
    with pytest.raises(TopicError):
        InProcessBus("t").publish("vigil/+/x", _event(1))
