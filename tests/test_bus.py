"""The in-process bus: MQTT wildcard matching, ordered delivery, quarantine of bad bytes; and
what every bus does alike (in-process and MQTT): check structs as their bytes, catch handler
errors."""

from __future__ import annotations

import logging
import re
import time

import pytest

from vigil.ingest.bus import InProcessBus, TopicError, check_filter, topic_matches
from vigil.ingest.schema import SensorEvent, SensorStatus, Track, encode

NOW = 1_790_000_000.0
SECTOR = "tucson"
EVENTS = f"vigil/v1/{SECTOR}/ugs/u117/events"


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


# -- every bus treats messages the same ------------------------------------------------------


class Pair:
    """A publishing and a receiving side of one kind of bus (the same bus when in-process)."""

    def __init__(self, publisher, receiver, settle) -> None:
        self.publisher = publisher
        self.receiver = receiver
        self.settle = settle


@pytest.fixture(params=["in-process", pytest.param("mqtt", marks=pytest.mark.broker)])
def pair(request, tmp_path):
    """Both buses: in-process, and MQTT from device u117 to the sector service (real broker)."""
    if request.param == "in-process":
        bus = InProcessBus(SECTOR)
        yield Pair(bus, bus, lambda n: None)
        bus.close()
        return
    from broker import SERVICE_USER
    from test_mqtt import settings, wait_for

    from vigil.ingest.mqtt import MqttBus

    b = request.getfixturevalue("broker")
    svc = MqttBus(SECTOR, settings(b, SERVICE_USER), "svc", None, publish_quarantine=False)
    dev = MqttBus(SECTOR, settings(b, "u117"), "dev-u117", None)

    def settle(n: int) -> None:
        """Wait until the service has judged ``n`` messages and handled the good ones."""
        assert dev.flush(10)
        judged = lambda: svc.counts["accepted"] + sum(svc.quarantine_counts.values())  # noqa: E731
        assert wait_for(lambda: judged() >= n), svc.counts
        assert svc.wait_idle(10)

    yield Pair(dev, svc, settle)
    dev.close()
    svc.close()


def _u117(strength: float, now: float, **kw) -> SensorEvent:
    return SensorEvent(sensor="u117", time=now, modality="seismic", strength=strength, **kw)


def test_every_bus_checks_structs_as_it_checks_their_bytes(pair) -> None:
    """A struct is refused for what its bytes would be refused for, with the same reason and
    field: a bound, a time too far ahead, a kind that does not belong on the topic."""
    now = time.time()
    got: list[float] = []
    pair.receiver.subscribe(f"vigil/v1/{SECTOR}/#", lambda t, m: got.append(m.strength))
    if hasattr(pair.receiver, "connect"):
        pair.receiver.connect(5)
        pair.publisher.connect(5)
    bad = [
        (EVENTS, _u117(-1.0, now)),  # strength below 0
        (EVENTS, _u117(1.0, now + 3600)),  # an hour ahead
        (EVENTS, SensorStatus(sensor="u117", time=now, battery=0.5, last_heard=now)),
    ]
    for topic, msg in bad:
        pair.publisher.publish(topic, msg)
        pair.publisher.publish(topic, encode(msg))
    pair.publisher.publish(EVENTS, _u117(2.0, now))
    pair.settle(2 * len(bad) + 1)
    assert got == [2.0]
    assert dict(pair.receiver.quarantine_counts) == {
        "out_of_range": 2,
        "time_future": 2,
        "wrong_topic": 2,
    }
    # the text of a time refusal quotes the receiver's clock at the moment it judged, which
    # moves between the struct and its bytes: compare it with that reading taken out
    judged = [
        (q.reason, q.field, re.sub(r"receiver's clock \([0-9.]+\)", "clock", q.error), q.raw)
        for q in pair.receiver.quarantined
    ]
    assert judged[0::2] == judged[1::2]  # struct and bytes alike
    assert [f for _, f, _, _ in judged[0::2]] == ["strength", "time", "type"]


def test_every_bus_catches_counts_and_logs_a_handler_error(pair, caplog) -> None:
    """A handler that raises neither reaches the publisher nor stops the other handlers."""
    now = time.time()
    got: list[float] = []

    def fails_on_one(topic: str, msg) -> None:
        if msg.strength == 1.0:
            raise RuntimeError("handler bug")

    pair.receiver.subscribe(EVENTS, fails_on_one)
    pair.receiver.subscribe(EVENTS, lambda t, m: got.append(m.strength))
    if hasattr(pair.receiver, "connect"):
        pair.receiver.connect(5)
        pair.publisher.connect(5)
    with caplog.at_level(logging.ERROR, logger="vigil.ingest"):
        for i in range(3):
            pair.publisher.publish(EVENTS, _u117(float(i), now))
        pair.settle(3)
    assert got == [0.0, 1.0, 2.0]
    assert pair.receiver.counts["handler_error"] == 1
    assert pair.receiver.counts["delivered"] == 5
    assert any(
        f"handler for {EVENTS} failed on {EVENTS}" in r.getMessage() and r.exc_info
        for r in caplog.records
    )
