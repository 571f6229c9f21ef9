"""Record everything on a sector's topics to a file, and publish it back with its timing.

A recording is JSON lines: a header ``{"vigil_recording": 1, "sector": ..., "started": ...}``
then one line per message ``{"t": ..., "topic": ..., "payload": ...}`` where ``t`` is the
receive time (UTC seconds) and ``payload`` the bytes as text when they are UTF-8, or
``payload_b64`` when they are not, so malformed input is kept exactly as it came.

:func:`record` listens on a bus or straight on a broker; :func:`replay` publishes a recording
on any bus with the original gaps between messages divided by ``speed``.
"""

from __future__ import annotations

import base64
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from vigil.ingest.bus import Bus, QuarantinedMessage, topic_matches
from vigil.ingest.schema import Wire, encode, quarantine_topic

if TYPE_CHECKING:
    from vigil.ingest.mqtt import MqttSettings

FORMAT_VERSION = 1


class RecordingHeader(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The first line of a recording."""

    vigil_recording: int
    sector: str
    started: float


class RecordedMessage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One recorded message; exactly one of ``payload`` and ``payload_b64`` is set."""

    t: float
    topic: str
    payload: str | None = None
    payload_b64: str | None = None

    @property
    def raw(self) -> bytes:
        """The bytes as they were received."""
        if self.payload_b64 is not None:
            return base64.b64decode(self.payload_b64)
        return (self.payload or "").encode("utf-8")


class RecordSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What a recording holds: message count, bytes of payload, time span, per-topic counts."""

    path: str
    sector: str
    messages: int
    payload_bytes: int
    started: float
    ended: float
    topics: dict[str, int]


class ReplaySummary(msgspec.Struct, frozen=True, kw_only=True):
    """What a replay published, and how long the recording and the replay took (seconds)."""

    path: str
    messages: int
    skipped: int
    recorded_span_s: float
    replay_s: float
    speed: float


_encoder = msgspec.json.Encoder()
_header_decoder = msgspec.json.Decoder(RecordingHeader)
_message_decoder = msgspec.json.Decoder(RecordedMessage)


class Recorder:
    """Writes a recording, one message a line, flushed as it goes. Thread-safe.

    Parameters
    ----------
    out_path
        The file to write (its folder is created; an existing file is replaced).
    sector
        The sector recorded, stored in the header.
    """

    def __init__(self, out_path: str | Path, sector: str, *, started: float | None = None) -> None:
        self.path = Path(out_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.sector = sector
        self.started = time.time() if started is None else started
        self.ended = self.started
        self.messages = 0
        self.payload_bytes = 0
        self.topics: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._closed = False
        self._file = open(self.path, "wb")  # noqa: SIM115 - open for the recorder's lifetime
        header = RecordingHeader(
            vigil_recording=FORMAT_VERSION, sector=sector, started=self.started
        )
        self._file.write(_encoder.encode(header) + b"\n")

    def write(self, topic: str, payload: bytes, t: float | None = None) -> None:
        """Append one message received at ``t`` (UTC seconds; now when omitted)."""
        t = time.time() if t is None else t
        try:
            line = RecordedMessage(t=t, topic=topic, payload=payload.decode("utf-8"))
        except UnicodeDecodeError:
            line = RecordedMessage(
                t=t, topic=topic, payload_b64=base64.b64encode(payload).decode("ascii")
            )
        data = _encoder.encode(line) + b"\n"
        with self._lock:
            if self._closed:
                return
            self._file.write(data)
            self._file.flush()
            self.messages += 1
            self.payload_bytes += len(payload)
            self.topics[topic] += 1
            self.ended = max(self.ended, t)

    def close(self) -> RecordSummary:
        """Close the file and say what it holds."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._file.close()
        return RecordSummary(
            path=str(self.path),
            sector=self.sector,
            messages=self.messages,
            payload_bytes=self.payload_bytes,
            started=self.started,
            ended=self.ended,
            topics=dict(self.topics),
        )

    def tap(self, bus: Bus, pattern: str | None = None) -> None:
        """Record every valid message a bus delivers on ``pattern`` (the sector's topics by
        default) and the raw bytes of every message it quarantines."""
        pattern = pattern or f"vigil/v1/{self.sector}/#"

        def on_message(topic: str, msg: Wire) -> None:
            self.write(topic, encode(msg))

        def on_bad(q: QuarantinedMessage) -> None:
            if topic_matches(pattern, q.topic):
                self.write(q.topic, q.raw, q.time)

        bus.subscribe(pattern, on_message)
        bus.on_quarantine(on_bad)


def read_recording(path: str | Path) -> tuple[RecordingHeader, Iterator[RecordedMessage]]:
    """The header of a recording and an iterator over its messages.

    Raises
    ------
    ValueError
        Naming the file and the line that is not part of a recording.
    """
    f = open(path, "rb")  # noqa: SIM115 - closed by the iterator
    first = f.readline()
    try:
        header = _header_decoder.decode(first)
    except msgspec.DecodeError as exc:
        f.close()
        raise ValueError(f"{path}: line 1 is not a Vigil recording header: {exc}") from None
    if header.vigil_recording != FORMAT_VERSION:
        f.close()
        raise ValueError(
            f"{path}: recording format {header.vigil_recording}, expected {FORMAT_VERSION}"
        )

    def messages() -> Iterator[RecordedMessage]:
        with f:
            for i, line in enumerate(f, start=2):
                if not line.strip():
                    continue
                try:
                    yield _message_decoder.decode(line)
                except msgspec.DecodeError as exc:
                    raise ValueError(f"{path}: line {i} is not a recorded message: {exc}") from None

    return header, messages()


def _record_from_broker(
    settings: MqttSettings,
    recorder: Recorder,
    pattern: str,
    client_id: str,
    done: Callable[[], bool],
    stop: threading.Event,
    ready: threading.Event | None,
) -> None:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    from paho.mqtt.subscribeoptions import SubscribeOptions

    subscribed = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls:
        client.tls_set(
            ca_certs=settings.ca_file, certfile=settings.cert_file, keyfile=settings.key_file
        )
    client.reconnect_delay_set(
        math.ceil(settings.reconnect_min_delay_s), math.ceil(settings.reconnect_max_delay_s)
    )

    def on_connect(c, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            c.subscribe(pattern, options=SubscribeOptions(qos=1))

    def on_subscribe(c, userdata, mid, reason_codes, properties) -> None:
        subscribed.set()

    def on_message(c, userdata, msg) -> None:
        # paho sends the PUBACK after this returns, so the line is written first.
        recorder.write(msg.topic, bytes(msg.payload))
        if done():
            stop.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = settings.session_expiry_s
    client.connect_async(
        settings.host, settings.port, settings.keepalive_s, clean_start=False, properties=props
    )
    client.loop_start()
    try:
        if not subscribed.wait(settings.connect_timeout_s):
            raise ConnectionError(
                f"recorder could not subscribe to {pattern!r} on {settings.host}:{settings.port} "
                f"within {settings.connect_timeout_s:g} s"
            )
        if ready is not None:
            ready.set()
        stop.wait()
    finally:
        client.disconnect()
        client.loop_stop()


def record(
    source: Bus | MqttSettings,
    sector: str,
    out_path: str | Path,
    *,
    duration_s: float | None = None,
    max_messages: int | None = None,
    stop: threading.Event | None = None,
    client_id: str | None = None,
    ready: threading.Event | None = None,
) -> RecordSummary:
    """Write everything on ``vigil/v1/{sector}/#`` to a recording until told to stop.

    Parameters
    ----------
    source
        A bus to listen on (valid messages are re-encoded; quarantined ones keep their raw
        bytes), or broker settings to subscribe with directly (raw bytes as published, QoS 1,
        a persistent session so a restarted recorder picks up what it missed).
    sector
        The sector whose topics are recorded.
    out_path
        The recording file to write.
    duration_s, max_messages, stop
        Stop after this many seconds, after this many messages, or when ``stop`` is set;
        at least one is required.
    client_id
        The broker session's name (``vigil-record-{sector}`` by default).
    ready
        Set once the recorder is listening.
    """
    if duration_s is None and max_messages is None and stop is None:
        raise ValueError("record() needs duration_s, max_messages or stop to know when to end")
    if duration_s is not None and duration_s <= 0:
        raise ValueError(f"duration_s = {duration_s!r}: expected a positive number of seconds")
    stop = stop or threading.Event()
    recorder = Recorder(out_path, sector)
    timer = None
    if duration_s is not None:
        timer = threading.Timer(duration_s, stop.set)
        timer.daemon = True
        timer.start()

    def done() -> bool:
        return max_messages is not None and recorder.messages >= max_messages

    try:
        if isinstance(source, Bus):
            original_write = recorder.write

            def write(topic: str, payload: bytes, t: float | None = None) -> None:
                original_write(topic, payload, t)
                if done():
                    stop.set()

            recorder.write = write  # type: ignore[method-assign]
            recorder.tap(source)
            if ready is not None:
                ready.set()
            stop.wait()
        else:
            pattern = f"vigil/v1/{sector}/#"
            name = client_id or f"vigil-record-{sector}"
            _record_from_broker(source, recorder, pattern, name, done, stop, ready)
    finally:
        if timer is not None:
            timer.cancel()
        summary = recorder.close()
    return summary


def replay(
    path: str | Path,
    bus: Bus,
    speed: float = 1.0,
    *,
    include_quarantine_reports: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Any] = time.sleep,
) -> ReplaySummary:
    """Publish a recording on ``bus`` with the original gaps between messages divided by ``speed``.

    Parameters
    ----------
    path
        The recording.
    bus
        Where to publish; each message goes out as its recorded raw bytes, so a receiver
        validates (and quarantines) them as it did the first time.
    speed
        1 is real time, 10 ten times faster, ``math.inf`` as fast as the bus takes them.
    include_quarantine_reports
        Also publish what was recorded on the quarantine topic (off by default: those are
        reports about other messages, which the replay produces afresh).
    clock, sleep
        Monotonic seconds and a way to wait, for tests.
    """
    if not speed > 0:
        raise ValueError(f"speed = {speed!r}: expected a positive factor (math.inf for no waits)")
    header, messages = read_recording(path)
    q_topic = quarantine_topic(header.sector)
    start = clock()
    first_t: float | None = None
    last_t: float | None = None
    n = skipped = 0
    for m in messages:
        if m.topic == q_topic and not include_quarantine_reports:
            skipped += 1
            continue
        if first_t is None:
            first_t = m.t
        last_t = m.t
        if math.isfinite(speed):
            due = start + max(0.0, m.t - first_t) / speed
            wait = due - clock()
            if wait > 0:
                sleep(wait)
        bus.publish(m.topic, m.raw)
        n += 1
    return ReplaySummary(
        path=str(path),
        messages=n,
        skipped=skipped,
        recorded_span_s=0.0 if first_t is None else float(last_t - first_t),
        replay_s=clock() - start,
        speed=speed,
    )


__all__ = [
    "RecordSummary",
    "RecordedMessage",
    "Recorder",
    "RecordingHeader",
    "ReplaySummary",
    "read_recording",
    "record",
    "replay",
]
