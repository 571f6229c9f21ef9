"""The MQTT bus: the :class:`~ingest.bus.Bus` interface over a broker, losing nothing it accepted.

Publishing
    Every message goes first into an on-disk :class:`~ingest.outbox.Outbox` (committed before
    :meth:`MqttBus.publish` returns), then to the broker at QoS 1 with a message key in an
    MQTT 5 user property (``vigil-key``). It leaves the outbox only when the broker has
    acknowledged it *and* the replay window has passed: after any reconnect the bus sends
    again, in sequence order, everything unacknowledged plus everything acknowledged within
    the window before the connection fell, because a broker killed before its next autosave
    forgets messages it had acknowledged. A message the broker refuses (ACL) is removed,
    counted and logged, never retried in silence and never dropped in silence. One the
    broker accepts with "no matching subscribers" is counted; a device's bus
    (``resend_unrouted``) sends it and everything after it again until a session takes it.

Receiving
    Sessions are persistent (MQTT 5, ``clean_start=False``, a session expiry) with manual
    acknowledgement. paho's network thread only queues what arrives; an ingest thread decodes
    and validates it, writes it to the :class:`~ingest.journal.Journal` (accepted and
    quarantined alike; a known message key marks a duplicate), writes bad ones to the
    quarantine file and topic, and only then sends the PUBACK. A dispatch thread calls the
    handlers, so a slow handler delays neither the acknowledgements nor the keepalive.
    Without a journal, the PUBACK waits until the handlers have run.

Connection
    A supervisor thread connects, resubscribes, resends, and on a lost connection tries again
    with exponential backoff; each connection gets a fresh paho client so that nothing paho
    held for a dead connection is sent twice out of order.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from vigil.ingest.bus import Bus, Handler, Subscription, check_filter, check_topic, topic_matches
from vigil.ingest.journal import ACCEPTED, QUARANTINED, Arrival, Journal, content_key
from vigil.ingest.outbox import Outbox
from vigil.ingest.quarantine import QuarantineFile, report_bytes
from vigil.ingest.schema import (
    DEFAULT_MAX_SKEW_S,
    MessageError,
    Wire,
    decode,
    encode,
    quarantine_topic,
)

log = logging.getLogger(__name__)

#: MQTT 5 user property that carries a message's key, for de-duplication by receivers.
KEY_PROPERTY = "vigil-key"


#: MQTT 5 PUBACK reason "No matching subscribers": a success code, but nothing got the message.
_NO_SUBSCRIBERS = 0x10


class MqttSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How to reach the broker and how hard to hold on to it.

    Times are seconds. Credentials are handed in by the caller (``vigil`` reads them from the
    environment variables the deployment file names, or see :meth:`from_env`).
    """

    host: str = "127.0.0.1"
    port: int = 1883
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 30
    session_expiry_s: int = 86_400
    reconnect_min_delay_s: float = 0.1
    reconnect_max_delay_s: float = 30.0
    connect_timeout_s: float = 10.0
    #: Most unacknowledged messages the broker may send us at once (MQTT 5 Receive Maximum).
    receive_maximum: int = 1000
    #: Most of our own messages in flight to the broker at once.
    max_inflight: int = 200
    #: Messages acknowledged less than this long before the connection fell are sent again
    #: after a reconnect; keep it above the broker's autosave interval.
    replay_window_s: float = 5.0
    #: A PUBACK saying "no matching subscribers" counts as not delivered: the message, and
    #: every later one, is sent again in order (with backoff) until a session takes it. For
    #: devices, whose every message is for the sector service: a broker that restarts
    #: without the service's session (an autosave that missed it) would drop their messages
    #: until the service resubscribes. Off for publishers whose topics may have no reader;
    #: quarantine reports (which the service does not read) are never held back.
    resend_unrouted: bool = False

    def __post_init__(self) -> None:
        checks: list[tuple[str, Any, bool, str]] = [
            ("port", self.port, 1 <= self.port <= 65535, "an integer in [1, 65535]"),
            ("keepalive_s", self.keepalive_s, 5 <= self.keepalive_s <= 65535, "in [5, 65535]"),
            (
                "session_expiry_s",
                self.session_expiry_s,
                0 < self.session_expiry_s <= 0xFFFFFFFF,
                "in (0, 4294967295]: a zero expiry would end the session at each disconnect",
            ),
            (
                "reconnect_min_delay_s",
                self.reconnect_min_delay_s,
                0 < self.reconnect_min_delay_s <= self.reconnect_max_delay_s,
                "positive and at most reconnect_max_delay_s",
            ),
            ("connect_timeout_s", self.connect_timeout_s, self.connect_timeout_s > 0, "> 0"),
            (
                "receive_maximum",
                self.receive_maximum,
                1 <= self.receive_maximum <= 65535,
                "in [1, 65535]",
            ),
            ("max_inflight", self.max_inflight, self.max_inflight >= 1, ">= 1"),
            ("replay_window_s", self.replay_window_s, self.replay_window_s >= 0, ">= 0"),
        ]
        for name, value, ok, expected in checks:
            if not ok:
                raise ValueError(f"MqttSettings.{name} = {value!r}: expected {expected}")
        if self.tls and self.ca_file is not None and not Path(self.ca_file).is_file():
            raise ValueError(f"MqttSettings.ca_file = {self.ca_file!r}: no such file")

    def __repr__(self) -> str:
        shown = "***" if self.password else None
        return (
            f"MqttSettings(host={self.host!r}, port={self.port}, tls={self.tls}, "
            f"username={self.username!r}, password={shown!r})"
        )

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, prefix: str = "VIGIL_MQTT_", **overrides: Any
    ) -> MqttSettings:
        """Settings from ``{prefix}HOST``, ``PORT``, ``TLS``, ``CA_FILE``, ``USER``, ``PASSWORD``.

        Unset variables keep the defaults; ``overrides`` win over both.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for var, name, kind in (
            ("HOST", "host", str),
            ("PORT", "port", int),
            ("TLS", "tls", bool),
            ("CA_FILE", "ca_file", str),
            ("USER", "username", str),
            ("PASSWORD", "password", str),
        ):
            raw = env.get(prefix + var)
            if raw is None:
                continue
            if kind is int:
                try:
                    values[name] = int(raw)
                except ValueError:
                    raise ValueError(f"{prefix}{var} = {raw!r}: expected an integer") from None
            elif kind is bool:
                if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(f"{prefix}{var} = {raw!r}: expected true or false")
                values[name] = raw.lower() in ("1", "true", "yes")
            else:
                values[name] = raw
        values.update(overrides)
        return cls(**values)


@dataclass(slots=True)
class _Arrived:
    topic: str
    payload: bytes
    mid: int
    qos: int
    key: str | None
    client: Any
    received: float


class MqttBus(Bus):
    """The bus over an MQTT broker (paho-mqtt 2, MQTT 5), persistent and at-least-once.

    Parameters
    ----------
    sector
        Sector name; bad messages are reported on ``vigil/v1/{sector}/quarantine``.
    settings
        Broker address, TLS, credentials, timing.
    client_id
        Stable identity: the broker keeps this client's session (its subscriptions and queued
        messages) across disconnects under this name.
    outbox_path
        SQLite file of the outbox; ``None`` keeps it in memory (retries within the process).
    quarantine_path
        JSON-lines file for quarantined messages; ``None`` writes none.
    journal
        Receive journal; when given, every received message is journaled before its PUBACK
        and handled messages are marked done under the consumer name ``client_id``.
    publish_quarantine
        Also publish each quarantined message's record on the quarantine topic.
    max_skew_s, clock
        As for :class:`~ingest.bus.Bus`: validation's tolerance and its "now".
    """

    def __init__(
        self,
        sector: str,
        settings: MqttSettings,
        client_id: str,
        outbox_path: str | Path | None = None,
        quarantine_path: str | Path | None = None,
        journal: Journal | None = None,
        *,
        publish_quarantine: bool = True,
        max_skew_s: float = DEFAULT_MAX_SKEW_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(sector, max_skew_s=max_skew_s, clock=clock)
        if not client_id or len(client_id.encode()) > 65535:
            raise ValueError(f"client_id = {client_id!r}: expected a non-empty string")
        self.settings = settings
        self.client_id = client_id
        self.journal = journal
        self.quarantine_topic = quarantine_topic(sector)
        self.outbox = Outbox(outbox_path)
        self.quarantine_file = QuarantineFile(quarantine_path) if quarantine_path else None
        if self.quarantine_file is not None:
            self.on_quarantine(self.quarantine_file.write)
        if publish_quarantine:
            self.on_quarantine(self._publish_report)
        #: Broker refusals of our publications, by reason ("Not authorized": 3).
        self.refused_counts: Counter[str] = Counter()
        #: The last connection problem, for error messages.
        self.last_error: str | None = None
        self.session_present: bool | None = None

        self._counts_lock = threading.Lock()
        self._subs: list[Subscription] = []
        self._patterns: Counter[str] = Counter()
        self._stale_patterns: set[str] = set()
        self._subs_lock = threading.RLock()
        self._send_lock = threading.RLock()
        self._mid_lock = threading.Lock()
        self._mid_seq: dict[int, tuple[int, str]] = {}
        self._early_acks: dict[int, Any] = {}
        self._suback: dict[int, threading.Event] = {}
        self._client: Any = None
        self._connected = threading.Event()
        self._connack = threading.Event()
        self._conn_ok = False
        self._live = False
        self._live_event = threading.Event()
        #: When the last live connection fell (time.time() seconds); None while none has.
        #: The replay window counts back from here, however long the reconnect takes.
        self._lost_at: float | None = None
        #: The first message a broker accepted with no session to take it (resend from here).
        self._unrouted: int | None = None
        self._unrouted_delay = settings.reconnect_min_delay_s
        self._closing = threading.Event()
        self._closed = False
        self._rx: queue.Queue[_Arrived | None] = queue.Queue()
        self._dispatch: queue.Queue[tuple[_Arrived, int | None, Wire] | None] = queue.Queue(
            maxsize=10_000
        )
        self._work = 0
        self._work_lock = threading.Lock()
        self._recent_keys: OrderedDict[str, None] = OrderedDict()
        self._threads: list[threading.Thread] = []
        self._consumer = client_id

    # -- counters -----------------------------------------------------------------------------

    def _count(self, name: str, n: int = 1) -> None:
        with self._counts_lock:
            self.counts[name] += n

    def _work_add(self, n: int) -> None:
        with self._work_lock:
            self._work += n

    @property
    def connected(self) -> bool:
        """Whether the bus is connected and has caught up on its outbox."""
        return self._live

    # -- life cycle ---------------------------------------------------------------------------

    def _start_threads(self) -> None:
        if self._threads:
            return
        for target, name in (
            (self._supervise, "supervisor"),
            (self._ingest_loop, "ingest"),
            (self._dispatch_loop, "dispatch"),
        ):
            t = threading.Thread(target=target, name=f"mqtt-{name}-{self.client_id}", daemon=True)
            t.start()
            self._threads.append(t)

    def connect(self, timeout: float = 10.0) -> MqttBus:
        """Start the bus and wait until it is connected and caught up on its outbox.

        Raises
        ------
        ConnectionError
            When the broker was not reached within ``timeout`` seconds, with the last problem.
            The bus goes on trying in the background; publishing goes on into the outbox.
        """
        if self._closed:
            raise RuntimeError("bus is closed")
        self._start_threads()
        if not self._live_event.wait(timeout):
            s = self.settings
            raise ConnectionError(
                f"MQTT broker {s.host}:{s.port} not reached as {self.client_id!r} "
                f"within {timeout:g} s: {self.last_error or 'no answer'}"
            )
        return self

    def start(self) -> MqttBus:
        """Start connecting in the background without waiting."""
        self._start_threads()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Disconnect and stop. Unhandled received messages stay with the broker or the journal;
        unacknowledged publications stay in the outbox for the next bus with the same path."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        for t in self._threads[:1]:
            t.join(timeout)
        self._rx.put(None)
        for t in self._threads[1:2]:
            t.join(timeout)
        if self._threads:
            self._dispatch.put(None, timeout=timeout)
        for t in self._threads[2:]:
            t.join(timeout)
        with self._subs_lock:
            self._subs.clear()
        self.outbox.close()
        if self.quarantine_file is not None:
            self.quarantine_file.close()

    # -- connection supervisor ----------------------------------------------------------------

    def _make_client(self) -> Any:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        s = self.settings
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=paho.MQTTv5,
            manual_ack=True,
            reconnect_on_failure=False,
        )
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.tls:
            client.tls_set(ca_certs=s.ca_file, certfile=s.cert_file, keyfile=s.key_file)
        client.max_inflight_messages_set(s.max_inflight)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        return client

    def _connect_properties(self) -> Any:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.session_expiry_s
        props.ReceiveMaximum = self.settings.receive_maximum
        return props

    def _supervise(self) -> None:
        s = self.settings
        delay = s.reconnect_min_delay_s
        while not self._closing.is_set():
            client = self._make_client()
            with self._mid_lock:
                self._mid_seq.clear()
                self._early_acks.clear()
                self._suback.clear()
            self._client = client
            self._connected.clear()
            self._connack.clear()
            self._conn_ok = False
            try:
                client.connect(
                    s.host,
                    s.port,
                    s.keepalive_s,
                    clean_start=False,
                    properties=self._connect_properties(),
                )
            except (OSError, ValueError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._count("connect_failed")
                self._closing.wait(delay)
                delay = min(delay * 2, s.reconnect_max_delay_s)
                continue
            client.loop_start()
            answered = self._connack.wait(s.connect_timeout_s)
            if not (answered and self._conn_ok and self._connected.is_set()):
                if not answered:
                    self.last_error = f"no CONNACK within {s.connect_timeout_s:g} s"
                self._count("connect_failed")
                self._drop(client)
                self._closing.wait(delay)
                delay = min(delay * 2, s.reconnect_max_delay_s)
                continue
            delay = s.reconnect_min_delay_s
            self._count("connected")
            if self._resubscribe(client) and self._resend(client):
                self._lost_at = None
                while self._connected.is_set() and not self._closing.wait(0.2):
                    if s.replay_window_s > 0:
                        self.outbox.prune(time.time() - s.replay_window_s)
                    if self._unrouted is not None:
                        # no session took a message: wait, then send it and all after it
                        # again (the wait doubles until a message is routed)
                        self._count("unrouted_resends")
                        if self._closing.wait(self._unrouted_delay):
                            break
                        self._unrouted_delay = min(
                            self._unrouted_delay * 2, s.reconnect_max_delay_s
                        )
                        if not self._resend(client, from_unrouted=True):
                            break
                self._lost_at = time.time()
            self._live = False
            self._live_event.clear()
            if self._closing.is_set():
                client.disconnect()
                client.loop_stop()
                self._client = None
                break
            self._count("disconnected")
            self._drop(client)
            self._closing.wait(delay)

    def _drop(self, client: Any) -> None:
        self._live = False
        self._live_event.clear()
        client.disconnect()
        client.loop_stop()
        sock = client.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if client is not self._client:
            return
        if reason_code.is_failure:
            self.last_error = f"broker refused the connection: {reason_code}"
            self._conn_ok = False
        else:
            self._conn_ok = True
            self.session_present = bool(flags.session_present)
            self._connected.set()
        self._connack.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if client is not self._client:
            return
        self._live = False
        failed = reason_code is not None and getattr(reason_code, "is_failure", False)
        if failed and self._conn_ok:  # keep a refused CONNACK's reason, which says more
            self.last_error = f"disconnected: {reason_code}"
        self._connected.clear()
        self._connack.set()

    def _subscribe_and_wait(self, client: Any, patterns: list[str], timeout: float) -> bool:
        from paho.mqtt.subscribeoptions import SubscribeOptions

        if not patterns:
            return True
        event = threading.Event()
        with self._mid_lock:
            rc, mid = client.subscribe([(p, SubscribeOptions(qos=1)) for p in patterns])
            if rc != 0 or mid is None:
                self.last_error = f"subscribe to {patterns} failed: rc={rc}"
                return False
            self._suback[mid] = event
        if not event.wait(timeout):
            self.last_error = f"no SUBACK for {patterns} within {timeout:g} s"
            return False
        return True

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        refused = [str(rc) for rc in reason_codes if rc.is_failure]
        if refused:
            self.last_error = f"subscription refused: {refused}"
            self._count("subscribe_refused", len(refused))
        with self._mid_lock:
            event = self._suback.pop(mid, None)
        if event is not None:
            event.set()

    def _resubscribe(self, client: Any) -> bool:
        with self._subs_lock:
            patterns = sorted(self._patterns)
            stale = sorted(self._stale_patterns)
        if stale:
            client.unsubscribe(stale)
            with self._subs_lock:
                self._stale_patterns.difference_update(stale)
        return self._subscribe_and_wait(client, patterns, self.settings.connect_timeout_s)

    def _resend(self, client: Any, from_unrouted: bool = False) -> bool:
        """Send what the outbox holds, in order; then go live. False if the connection fell.

        After a reconnect: everything unacknowledged plus what was acknowledged within the
        replay window before the fall. ``from_unrouted``: everything from the first message
        no session took, acknowledged or not (receivers drop the copies by message key).
        """
        s = self.settings
        if from_unrouted:
            with self._mid_lock:
                first, self._unrouted = self._unrouted, None
            last, since = (first or 1) - 1, -math.inf
        else:
            # acknowledged before the connection fell, within the window: the broker may not
            # have saved them (a fall mid-resend keeps the first fall's time)
            fell = time.time() if self._lost_at is None else self._lost_at
            since = fell - s.replay_window_s if s.replay_window_s > 0 else math.inf
            last = 0
        while self._connected.is_set() and not self._closing.is_set():
            with self._send_lock:
                rows = self.outbox.to_send(last, since, limit=256)
                if not rows:
                    if self._unrouted is None:  # else the supervisor goes round again
                        self._live = True
                        self._live_event.set()
                    return True
            for row in rows:
                while len(self._mid_seq) >= 2 * s.max_inflight:
                    if not self._connected.is_set() or self._closing.is_set():
                        return False
                    time.sleep(0.001)
                self._send(client, row.seq, row.topic, row.payload)
                self._count("sent_from_outbox")
                last = row.seq
        return False

    # -- publishing ---------------------------------------------------------------------------

    def publish(self, topic: str, message: Wire | bytes) -> None:
        """Send a message (a struct, or raw bytes passed on as they are) on ``topic`` at QoS 1.

        Returns once the message is committed to the outbox; it is sent now when connected,
        otherwise on reconnect. Raw bytes are not checked here: receivers validate them.
        """
        check_topic(topic)
        if self._closed:
            raise RuntimeError("bus is closed")
        self._publish(topic, message)

    def _publish(self, topic: str, message: Wire | bytes) -> None:
        if isinstance(message, bytes | bytearray | memoryview):
            payload = bytes(message)
        else:
            payload = encode(message)
        with self._send_lock:
            seq = self.outbox.put(topic, payload, time.time())
            self._count("published")
            client = self._client
            if self._live and client is not None:
                self._send(client, seq, topic, payload)

    def _send(self, client: Any, seq: int, topic: str, payload: bytes) -> None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = [(KEY_PROPERTY, f"{self.client_id}/{self.outbox.epoch}/{seq}")]
        info = client.publish(topic, payload, qos=1, properties=props)
        with self._mid_lock:
            early = self._early_acks.pop(info.mid, None)
            if early is None:
                self._mid_seq[info.mid] = (seq, topic)
        if early is not None:
            self._acked(seq, topic, early)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        if client is not self._client:
            return
        with self._mid_lock:
            entry = self._mid_seq.pop(mid, None)
            if entry is None:
                self._early_acks[mid] = reason_code
                return
        self._acked(entry[0], entry[1], reason_code)

    def _acked(self, seq: int, topic: str, reason_code: Any) -> None:
        if reason_code is not None and reason_code.is_failure:
            self.outbox.remove(seq)
            self._count("refused")
            with self._counts_lock:
                self.refused_counts[str(reason_code)] += 1
            log.error("broker refused message %d on %s: %s", seq, topic, reason_code)
        elif reason_code is not None and getattr(reason_code, "value", 0) == _NO_SUBSCRIBERS:
            # accepted and dropped: no session at the broker wanted it
            self._count("acked_no_subscribers")
            if self.settings.resend_unrouted and topic != self.quarantine_topic:
                # not the send lock: paho may call this holding its own lock, which a
                # publishing thread holding the send lock may be waiting for
                with self._mid_lock:
                    self._live = False  # later messages wait behind it, in order
                    self._live_event.clear()
                    self._unrouted = seq if self._unrouted is None else min(self._unrouted, seq)
                return
            self.outbox.mark_acked(seq, time.time())
            self._count("acked")
        else:
            self.outbox.mark_acked(seq, time.time())
            self._count("acked")
            self._unrouted_delay = self.settings.reconnect_min_delay_s  # a session is there

    def _publish_report(self, q) -> None:
        if q.topic == self.quarantine_topic:
            return
        self._publish(self.quarantine_topic, report_bytes(q))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the broker has acknowledged everything published; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.outbox.unacked() > 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is waiting to be acknowledged, journaled or handled."""
        deadline = time.monotonic() + timeout
        while True:
            if self.outbox.unacked() == 0 and self._work == 0:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)

    # -- subscribing --------------------------------------------------------------------------

    def subscribe(self, pattern: str, handler: Handler) -> Subscription:
        """Call ``handler(topic, message)`` for each valid message on a matching topic.

        When connected, returns once the broker has confirmed the subscription.
        """
        check_filter(pattern)
        sub = Subscription(pattern, handler)
        with self._subs_lock:
            self._subs.append(sub)
            new = self._patterns[pattern] == 0
            self._patterns[pattern] += 1
            self._stale_patterns.discard(pattern)
        client = self._client
        if new and self._live and client is not None:
            self._subscribe_and_wait(client, [pattern], self.settings.connect_timeout_s)
        return sub

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop a subscription (and the broker's, when no other uses the same filter)."""
        with self._subs_lock:
            subscription.active = False
            if subscription not in self._subs:
                return
            self._subs = [s for s in self._subs if s is not subscription]
            self._patterns[subscription.pattern] -= 1
            gone = self._patterns[subscription.pattern] <= 0
            if gone:
                del self._patterns[subscription.pattern]
        if gone:
            client = self._client
            if self._live and client is not None:
                client.unsubscribe(subscription.pattern)
            else:
                with self._subs_lock:
                    self._stale_patterns.add(subscription.pattern)

    # -- receiving ----------------------------------------------------------------------------

    def _on_message(self, client, userdata, msg) -> None:
        key = None
        props = getattr(msg, "properties", None)
        for name, value in getattr(props, "UserProperty", None) or ():
            if name == KEY_PROPERTY:
                key = value
                break
        self._work_add(1)
        self._count("received")
        self._rx.put(
            _Arrived(msg.topic, bytes(msg.payload), msg.mid, msg.qos, key, client, time.time())
        )

    def _ack(self, item: _Arrived) -> None:
        if item.qos == 0:
            return
        # A PUBACK for a dead connection's packet id would acknowledge a different message on
        # the new one; the broker redelivers instead, and the key catches the copy.
        if item.client is self._client and self._connected.is_set():
            item.client.ack(item.mid, item.qos)
        else:
            self._count("ack_after_disconnect")

    def _seen(self, key: str) -> bool:
        if key in self._recent_keys:
            return True
        self._recent_keys[key] = None
        if len(self._recent_keys) > 100_000:
            self._recent_keys.popitem(last=False)
        return False

    def _ingest_loop(self) -> None:
        while True:
            first = self._rx.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < 512:
                try:
                    nxt = self._rx.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._rx.put(None)
                    break
                batch.append(nxt)
            try:
                self._ingest(batch)
            except Exception:  # the receiving side must stay up; the broker will redeliver
                log.exception("ingest of %d messages failed", len(batch))
                self._count("ingest_error", len(batch))
                self._work_add(-len(batch))

    def _ingest(self, batch: list[_Arrived]) -> None:
        judged: list[tuple[_Arrived, str, Wire | None, MessageError | None]] = []
        reports: list[_Arrived] = []
        now = self.clock()
        for item in batch:
            if item.topic == self.quarantine_topic:
                reports.append(item)
                continue
            key = item.key or content_key(item.topic, item.payload)
            try:
                msg = decode(item.topic, item.payload, now=now, max_skew_s=self.max_skew_s)
                judged.append((item, key, msg, None))
            except MessageError as err:
                judged.append((item, key, None, err))
        if self.journal is not None:
            seqs = self.journal.append_many(
                [
                    Arrival(
                        key=key,
                        topic=item.topic,
                        payload=item.payload,
                        received=item.received,
                        status=ACCEPTED if err is None else QUARANTINED,
                        reason=None if err is None else err.reason,
                    )
                    for item, key, _, err in judged
                ]
            )
            fresh = [s is not None for s in seqs]
        else:
            seqs = [None] * len(judged)
            fresh = [not self._seen(key) for _, key, _, _ in judged]
        for item in reports:
            self._count("quarantine_reports_seen")
            self._ack(item)
            self._work_add(-1)
        to_dispatch = []
        for (item, _key, msg, err), seq, is_new in zip(judged, seqs, fresh, strict=True):
            if not is_new:
                self._count("duplicate")
                self._ack(item)
                self._work_add(-1)
            elif err is not None:
                self._quarantine(item.topic, item.payload, err)
                self._ack(item)
                self._work_add(-1)
            else:
                self._count("accepted")
                if self.journal is not None:
                    self._ack(item)
                to_dispatch.append((item, seq, msg))
        for entry in to_dispatch:
            self._dispatch.put(entry)

    def _dispatch_loop(self) -> None:
        last_seq: int | None = None
        since_mark = 0
        while True:
            entry = self._dispatch.get()
            if entry is None:
                break
            item, seq, msg = entry
            if not self._closing.is_set():
                self._deliver(item.topic, msg)
                if self.journal is None:
                    self._ack(item)
                elif seq is not None:
                    last_seq = seq
                    since_mark += 1
            self._work_add(-1)
            if last_seq is not None and (since_mark >= 256 or self._dispatch.empty()):
                self.journal.mark_done(self._consumer, last_seq)
                last_seq, since_mark = None, 0
        if last_seq is not None and self.journal is not None:
            self.journal.mark_done(self._consumer, last_seq)

    def _deliver(self, topic: str, msg: Wire) -> None:
        with self._subs_lock:
            subs = [s for s in self._subs if s.active and topic_matches(s.pattern, topic)]
        for sub in subs:
            try:
                sub.handler(topic, msg)
                self._count("delivered")
            except Exception:
                self._count("handler_error")
                log.exception("handler for %s failed on %s", sub.pattern, topic)

    def resume(self) -> int:
        """Hand subscribers what a previous run journaled and acknowledged but did not handle.

        Call it after subscribing and before :meth:`connect`; returns how many messages were
        handed over (each to every matching subscriber, in journal order).
        """
        if self.journal is None:
            return 0
        if self._threads:
            raise RuntimeError("resume() must run before connect(): new messages would interleave")
        n = 0
        last = None
        for entry in self.journal.pending(self._consumer):
            try:
                msg = decode(entry.topic, entry.payload, now=entry.received, max_skew_s=math.inf)
            except MessageError as err:  # journaled as accepted; a schema change could do this
                self._quarantine(entry.topic, entry.payload, err)
                last = entry.seq
                continue
            self._deliver(entry.topic, msg)
            self._count("resumed")
            n += 1
            last = entry.seq
        if last is not None:
            self.journal.mark_done(self._consumer, last)
        return n


__all__ = ["KEY_PROPERTY", "MqttBus", "MqttSettings"]
