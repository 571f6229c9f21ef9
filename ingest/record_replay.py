"""Record a sector's topics from a bus or a broker, and publish a recording back with its timing.

The file format is :mod:`vigil.ingest.recording`'s; :func:`record` writes it, :func:`replay`
publishes it on any bus with the original gaps between messages divided by ``speed``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from vigil.ingest.bus import Bus
from vigil.ingest.recording import Recorder, RecordSummary, read_recording
from vigil.ingest.topics import quarantine_topic

if TYPE_CHECKING:
    from vigil.ingest.mqtt import MqttSettings


class ReplaySummary(msgspec.Struct, frozen=True, kw_only=True):
    """What a replay published, and how long the recording and the replay took (seconds)."""

    path: str
    messages: int
    skipped: int
    recorded_span_s: float
    replay_s: float
    speed: float


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
    compress: bool = True,
    overwrite: bool = False,
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
    compress, overwrite
        gzip the file; replace an existing one (else it is refused, before listening).

    Raises
    ------
    FileExistsError
        ``out_path`` exists and ``overwrite`` is not set.
    """
    if duration_s is None and max_messages is None and stop is None:
        raise ValueError("record() needs duration_s, max_messages or stop to know when to end")
    if duration_s is not None and duration_s <= 0:
        raise ValueError(f"duration_s = {duration_s!r}: expected a positive number of seconds")
    stop = stop or threading.Event()
    recorder = Recorder(out_path, sector, compress=compress, overwrite=overwrite)
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


__all__ = ["ReplaySummary", "record", "replay"]
