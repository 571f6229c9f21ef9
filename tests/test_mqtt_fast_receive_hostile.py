"""The fast receive client on hostile bytes: whatever a broker (or something posing as one)
sends, it hands over exactly the messages plain paho would, and its network thread lives on.

Streams of valid PUBLISH packets are mutated (bytes flipped, lengths inflated, the stream cut
short) and read by both clients from the same fake broker; the messages each delivered within
the same wait must be equal, message for message.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import paho.mqtt.client as paho
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_mqtt_fast_receive import FakeBroker, make_client, publish, stream, user_prop

from vigil.ingest.mqtt_fast_receive import supported

pytestmark = pytest.mark.skipif(not supported(), reason="this paho lacks the receive state")


def delivered(data: bytes, fast: bool) -> list[tuple]:
    """What a client delivered from ``data`` (sent in one piece) within 0.6 s of its end."""
    broker = FakeBroker(data, [])
    got: list[tuple] = []
    lock = threading.Lock()

    def record(topic, payload, mid, qos, props) -> None:
        with lock:
            got.append((topic, bytes(payload), mid, qos, list(props)))

    client = make_client(fast, record)
    client.connect("127.0.0.1", broker.port, keepalive=60)
    client.loop_start()
    try:
        assert broker.sent_all.wait(10)
        time.sleep(0.6)
    finally:
        client.disconnect()
        client.loop_stop()
        broker.close()
    with lock:
        return list(got)


def both(data: bytes) -> tuple[list[tuple], list[tuple]]:
    """What the fast client and plain paho delivered from ``data``, read side by side."""
    with ThreadPoolExecutor(2) as pool:
        fast, plain = pool.map(lambda f: delivered(data, fast=f), (True, False))
    return fast, plain


def mutate(data: bytes, seed: int, flips: int) -> bytes:
    rng = random.Random(seed)
    out = bytearray(data)
    for _ in range(flips):
        i = rng.randrange(len(out))
        out[i] = rng.choice((0x00, 0xFF, 0x7F, 0x80, rng.getrandbits(8)))
    return bytes(out[: rng.randrange(len(out) // 2, len(out) + 1)])


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.integers(1, 6))
def test_mutated_streams_give_what_paho_gives(seed: int, flips: int) -> None:
    data, _ = stream(6, seed=seed % 100)
    bad = mutate(data, seed, flips)
    fast, plain = both(bad)
    assert fast == plain


BAD_PACKETS = {
    # a user property whose length runs past the property block
    "property overrun": publish("a/b", b"x", 1, 1, b"\x26\x00\x09ab" + b"\x00\x01c"),
    # a user property name that is not UTF-8
    "property not utf-8": publish("a/b", b"x", 2, 1, b"\x26\x00\x02\xff\xfe\x00\x00"),
    # a topic that is not UTF-8
    "topic not utf-8": b"\x32\x07\x00\x02\xc3\x28\x00\x03\x00",
    # a property block longer than the packet
    "block past the end": b"\x32\x08\x00\x01a\x00\x04\x7f" + b"yz",
    # a remaining length of five bytes
    "five-byte length": b"\x30\xff\xff\xff\xff\x01" + b"z" * 16,
    # a topic length past the packet's end
    "topic past the end": b"\x30\x04\x00\x10ab",
}


@pytest.mark.parametrize("name", sorted(BAD_PACKETS))
def test_each_malformed_packet_as_paho(name: str) -> None:
    good_before = publish("ok/1", b"first", 5, 1, user_prop("vigil-key", "k1"))
    good_after = publish("ok/2", b"after", 6, 1)
    data = good_before + BAD_PACKETS[name] + good_after
    fast, plain = both(data)
    assert fast == plain
    assert fast[:1] == [("ok/1", b"first", 5, 1, [("vigil-key", "k1")])]


def test_a_huge_declared_length_is_not_waited_for_forever() -> None:
    """A header claiming 200 MB followed by a little: the message before it is delivered,
    nothing after it, as with paho."""
    data = publish("ok/1", b"first", 5, 1) + b"\x30" + bytes([0xFF, 0xFF, 0xFF, 0x5F]) + b"z" * 10
    fast, plain = both(data)
    assert fast == plain == [("ok/1", b"first", 5, 1, [])]


def test_the_receiver_takes_a_topic_that_is_not_utf8_as_data() -> None:
    """paho hands such a topic to on_message, whose ``.topic`` cannot decode it: the
    receiver queues it (to be judged and quarantined) instead of killing paho's thread."""
    from types import SimpleNamespace

    from vigil.ingest.mqtt_receiver import MqttReceiver

    link = SimpleNamespace(settings=SimpleNamespace(max_payload_bytes=1024), client=None)
    receiver = MqttReceiver(
        link,  # type: ignore[arg-type]
        None,
        "test",
        "vigil/v1/tucson/quarantine",
        clock=time.time,
        max_skew_s=60.0,
        quarantine=lambda *a: None,
        deliver=lambda *a: None,
        count=lambda *a: None,
    )
    msg = paho.MQTTMessage(mid=3, topic=b"vigil/v1/tucson/\xc3\x28")
    msg.payload = b"{}"
    receiver.on_message(None, None, msg)
    assert receiver.work == 1
