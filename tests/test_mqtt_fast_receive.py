"""The fast receive client against plain paho: the same messages from the same bytes, however
the stream is cut, and the same PUBACK bytes from one batched acknowledgement."""

from __future__ import annotations

import socket
import struct
import threading
import time

import paho.mqtt.client as paho
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.ingest.mqtt_fast_receive import READ_CHUNK, FastReceiveClient, supported

pytestmark = pytest.mark.skipif(not supported(), reason="this paho lacks the receive state")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(s: str) -> bytes:
    b = s.encode("utf-8")
    return struct.pack("!H", len(b)) + b


def publish(topic: str, payload: bytes, mid: int, qos: int, props: bytes = b"") -> bytes:
    """One MQTT 5 PUBLISH packet, built by hand from the specification."""
    var = _utf8(topic) + (struct.pack("!H", mid) if qos else b"") + _varint(len(props)) + props
    body = var + payload
    return bytes([0x30 | (qos << 1)]) + _varint(len(body)) + body


def user_prop(name: str, value: str) -> bytes:
    return b"\x26" + _utf8(name) + _utf8(value)


#: Property blocks: what the fast path reads, and what it leaves to paho (topic alias 0x23).
PROPS = [
    b"",
    user_prop("vigil-key", "t03-000017"),
    user_prop("a", "1") + user_prop("vigil-key", "k\u00e9y") + user_prop("b", ""),
    b"\x01\x01" + b"\x02\x00\x00\x00\x3c" + b"\x03" + _utf8("application/json"),
    b"\x08" + _utf8("reply/here") + b"\x09" + struct.pack("!H", 3) + b"\x00\x01\x02",
    b"\x0b" + _varint(300) + user_prop("vigil-key", "sub"),
    b"\x23\x00\x05",  # a topic alias: paho decodes it
]


def stream(n: int, seed: int) -> tuple[bytes, list[int]]:
    """``n`` varied PUBLISH packets (QoS 0 and 1, UTF-8 topics, payloads of 0 to 20,000 bytes,
    the property blocks above) and the packet ids of the QoS 1 ones."""
    import random

    rng = random.Random(seed)
    out, mids = [], []
    for i in range(n):
        qos = rng.choice((0, 1, 1))
        size = rng.choice((0, 1, 127, 128, 250, 16_383, 16_384, 20_000))
        payload = bytes(rng.getrandbits(8) for _ in range(min(size, 64))) * (size // 64 + 1)
        topic = rng.choice(("vigil/v1/tucson/cam/t03/detections", "v/\u00fcml\u00e4ut/x", "a"))
        mid = i % 65_535 + 1
        out.append(publish(topic, payload[:size], mid, qos, rng.choice(PROPS)))
        if qos:
            mids.append(mid)
    return b"".join(out), mids


class FakeBroker:
    """A one-connection TCP peer that answers CONNECT with a CONNACK, sends ``data`` in the
    pieces ``cuts`` makes of it, and records what the client sends afterwards."""

    def __init__(self, data: bytes, cuts: list[int]) -> None:
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.data, self.cuts = data, sorted(set(c for c in cuts if 0 < c < len(data)))
        self.received = bytearray()
        self.sent_all = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _read_packet(self, conn: socket.socket) -> None:
        head = conn.recv(1)
        length, mult = 0, 1
        while True:
            b = conn.recv(1)[0]
            length += (b & 127) * mult
            mult *= 128
            if not b & 128:
                break
        while length:
            length -= len(conn.recv(length))
        assert head

    def _serve(self) -> None:
        conn, _ = self.srv.accept()
        with conn:
            self._read_packet(conn)  # CONNECT
            conn.sendall(b"\x20\x03\x00\x00\x00")  # CONNACK, MQTT 5, success, no properties
            edges = [0, *self.cuts, len(self.data)]
            for a, b in zip(edges, edges[1:], strict=False):
                conn.sendall(self.data[a:b])
                time.sleep(0.002)  # let the client read this piece alone
            self.sent_all.set()
            conn.settimeout(0.5)
            try:
                while chunk := conn.recv(65536):
                    self.received += chunk
            except OSError:
                pass

    def close(self) -> None:
        self.srv.close()
        self._thread.join(5)


def make_client(fast: bool, record) -> paho.Client:
    """A fast or a plain paho client (MQTT 5, manual acknowledgements) that calls
    ``record(topic, payload, mid, qos, user_properties)`` for each message; a topic that is
    not UTF-8 (which paho cannot decode) is recorded as None."""

    def on_message(client, userdata, msg) -> None:
        props = getattr(msg.properties, "UserProperty", None) or []
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = None
        record(topic, msg.payload, msg.mid, msg.qos, props)

    kwargs = dict(protocol=paho.MQTTv5, manual_ack=True, client_id="t")
    if fast:
        client = FastReceiveClient(
            paho.CallbackAPIVersion.VERSION2,
            on_publish_batch=lambda c, batch: [record(*fields) for fields in batch],
            **kwargs,
        )
    else:
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, **kwargs)
    client.on_message = on_message
    return client


def receive(data: bytes, cuts: list[int], fast: bool, expect: int) -> tuple[list, bytes]:
    """Messages (topic, payload, mid, qos, user properties) a client got from ``data`` in
    order, and the bytes it sent back after acknowledging every QoS 1 one."""
    broker = FakeBroker(data, cuts)
    got: list[tuple] = []
    done = threading.Event()

    def record(topic, payload, mid, qos, props) -> None:
        got.append((topic, bytes(payload), mid, qos, list(props)))
        if len(got) == expect:
            done.set()

    client = make_client(fast, record)
    client.connect("127.0.0.1", broker.port, keepalive=60)
    client.loop_start()
    try:
        assert done.wait(20), f"{len(got)} of {expect} messages arrived"
        mids = [m[2] for m in got if m[3] == 1]
        if fast:
            client.ack_many(mids)
        else:
            for mid in mids:
                client.ack(mid, 1)
        time.sleep(0.2)
    finally:
        client.disconnect()
        client.loop_stop()
        broker.close()
    return got, bytes(broker.received)


def test_same_messages_and_acks_as_paho() -> None:
    data, mids = stream(300, seed=1)
    cuts = list(range(7, len(data), 997))  # pieces that split headers, lengths and bodies
    plain, plain_sent = receive(data, cuts, fast=False, expect=300)
    fast, fast_sent = receive(data, cuts, fast=True, expect=300)
    assert fast == plain
    assert [m[2] for m in fast if m[3] == 1] == mids
    acks = b"".join(struct.pack("!BBH", 0x40, 2, mid) for mid in mids)
    assert plain_sent.startswith(acks)
    assert fast_sent.startswith(acks)  # the same PUBACK bytes, in one write
    assert fast_sent == plain_sent


def test_reads_more_than_one_chunk_at_once() -> None:
    data, _ = stream(40, seed=2)
    big = publish("vigil/v1/tucson/big", b"x" * (READ_CHUNK + 10), 9, 1)
    fast, _ = receive(data + big, [], fast=True, expect=41)
    assert fast[-1][1] == b"x" * (READ_CHUNK + 10)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=1, max_value=4000), max_size=12), st.integers(0, 99))
def test_any_cut_of_the_stream(cuts: list[int], seed: int) -> None:
    data, _ = stream(25, seed=seed)
    plain, _ = receive(data, [], fast=False, expect=25)
    fast, _ = receive(data, cuts, fast=True, expect=25)
    assert fast == plain
