"""The MQTT bus's receiving side: decode and check, journal, then acknowledge, then handle.

paho's network thread only queues what arrives. An ingest thread decodes and checks it
(:func:`~vigil.ingest.schema.decode`, as every bus does), writes it to the
:class:`~vigil.ingest.journal.Journal` (accepted and quarantined alike; a known message key
marks a duplicate), quarantines the bad ones, and only then sends the PUBACK. A dispatch
thread calls the handlers, so a slow handler delays neither the acknowledgements nor the
keepalive. Without a journal, the PUBACK waits until the handlers have run.

The receiver also keeps the subscriptions: the handlers, and the filters the broker's session
holds for them.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vigil.ingest.bus import Handler, Subscription
from vigil.ingest.journal import ACCEPTED, QUARANTINED, Arrival, Journal, content_key
from vigil.ingest.mqtt_link import Count, MqttLink
from vigil.ingest.mqtt_publisher import KEY_PROPERTY
from vigil.ingest.schema import MessageError, Wire, decode
from vigil.ingest.topics import check_filter, topic_matches

if TYPE_CHECKING:
    from vigil.ingest.mqtt_fast_receive import Fields

log = logging.getLogger("vigil.ingest.mqtt")

#: Largest payload decoded, bytes (``MqttSettings.max_payload_bytes`` when it has one): a
#: larger one is quarantined (``too_large``) with only its first :data:`TOO_LARGE_PREFIX`
#: bytes kept, in the journal and the quarantine record alike.
DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024
#: How much of an oversize payload is kept, bytes.
TOO_LARGE_PREFIX = 1024
#: Topics whose matching subscriptions are remembered (distinct topics beyond it start over).
_MATCHED_MAX = 4096

Quarantine = Callable[[str, bytes, MessageError], None]
Deliver = Callable[[str, Wire, list[Subscription]], None]
#: ``sink(batch)``: the accepted messages of one journal transaction, ``(seq, topic, payload)``
#: each, in journal order (``seq`` is ``None`` without a journal).
Sink = Callable[[list[tuple[int | None, str, bytes]]], None]


@dataclass(slots=True)
class _Arrived:
    topic: str
    payload: bytes
    mid: int
    qos: int
    key: str | None
    client: Any
    received: float
    size: int = -1  # the payload's size when it was too large (only a prefix is kept)


class MqttReceiver:
    """Receives over a :class:`~vigil.ingest.mqtt_link.MqttLink`: journal before ack.

    Parameters
    ----------
    link
        The connection (its client, to acknowledge on, and the broker's subscriptions).
    journal
        Receive journal; when given, every received message is journaled before its PUBACK
        and handled messages are marked done under the consumer name ``consumer``.
    consumer
        The journal's consumer name (the bus's client id).
    quarantine_topic
        The sector's quarantine topic: reports arriving on it are counted, not decoded.
    clock, max_skew_s
        Validation's "now" (seconds since the epoch) and tolerance for times ahead, seconds.
    quarantine
        ``quarantine(topic, raw, error)``: the bus's quarantine (counts, file, report).
    deliver
        ``deliver(topic, message, subscriptions)``: the bus's handler calls, which catch,
        count and log a handler's error.
    count
        ``count(name, n=1)``: adds to the bus's counts.
    max_payload_bytes
        Largest payload decoded, bytes; a larger one goes to quarantine as ``too_large``
        before any parsing (default: the settings' ``max_payload_bytes`` if they have one,
        else :data:`DEFAULT_MAX_PAYLOAD_BYTES`).
    sink
        When given, the accepted messages go to ``sink`` (see :data:`Sink`) on the ingest
        thread, after their PUBACKs, instead of to the handlers: the subscriptions only name
        the broker's filters. A sink that blocks holds back the acknowledgements, so the
        broker stops at its receive maximum (back-pressure).
    """

    def __init__(
        self,
        link: MqttLink,
        journal: Journal | None,
        consumer: str,
        quarantine_topic: str,
        *,
        clock: Callable[[], float],
        max_skew_s: float,
        quarantine: Quarantine,
        deliver: Deliver,
        count: Count,
        max_payload_bytes: int | None = None,
        sink: Sink | None = None,
    ) -> None:
        if max_payload_bytes is None:
            max_payload_bytes = getattr(
                link.settings, "max_payload_bytes", DEFAULT_MAX_PAYLOAD_BYTES
            )
        if not (isinstance(max_payload_bytes, int) and max_payload_bytes > 0):
            raise ValueError(
                f"max_payload_bytes = {max_payload_bytes!r}: expected a positive number of bytes"
            )
        self.max_payload_bytes = max_payload_bytes
        self.sink = sink
        self.link = link
        self.journal = journal
        self.consumer = consumer
        self.quarantine_topic = quarantine_topic
        self.clock = clock
        self.max_skew_s = max_skew_s
        self._quarantine = quarantine
        self._deliver_to = deliver
        self._count = count
        self._subs: list[Subscription] = []
        # topic -> the subscriptions whose filter matches it (cleared on any change, bounded)
        self._matched: dict[str, list[Subscription]] = {}
        self._patterns: Counter[str] = Counter()
        self._stale_patterns: set[str] = set()
        self._subs_lock = threading.RLock()
        self._rx: queue.Queue[list[_Arrived] | None] = queue.Queue()
        self._backlog = 0  # messages in _rx
        self._dispatch: queue.Queue[tuple[_Arrived, int | None, Wire] | None] = queue.Queue(
            maxsize=10_000
        )
        self._work = 0
        self._work_lock = threading.Lock()
        self._recent_keys: OrderedDict[str, None] = OrderedDict()
        self._threads: list[threading.Thread] = []

    @property
    def work(self) -> int:
        """Messages received and not yet acknowledged, journaled or handled."""
        return self._work

    @property
    def backlog(self) -> int:
        """Messages received and waiting for the ingest thread."""
        return self._backlog

    def _work_add(self, n: int) -> None:
        with self._work_lock:
            self._work += n

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the ingest and dispatch threads (once)."""
        if self._threads:
            return
        for target, name in ((self._ingest_loop, "ingest"), (self._dispatch_loop, "dispatch")):
            name = f"mqtt-{name}-{self.link.client_id}"
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float) -> None:
        """Finish the ingest thread, then the dispatch thread (each within ``timeout`` s)."""
        self._rx.put(None)
        for t in self._threads[:1]:
            t.join(timeout)
        if self._threads:
            self._dispatch.put(None, timeout=timeout)
        for t in self._threads[1:]:
            t.join(timeout)
        with self._subs_lock:
            self._subs.clear()
            self._matched.clear()

    # -- subscriptions ------------------------------------------------------------------------

    def subscribe(self, pattern: str, handler: Handler) -> Subscription:
        """Add a handler; when live, returns once the broker has confirmed a new filter."""
        check_filter(pattern)
        sub = Subscription(pattern, handler)
        with self._subs_lock:
            self._subs.append(sub)
            self._matched.clear()
            new = self._patterns[pattern] == 0
            self._patterns[pattern] += 1
            self._stale_patterns.discard(pattern)
        link = self.link
        client = link.client
        if new and link.live and client is not None:
            link.subscribe_and_wait(client, [pattern], link.settings.connect_timeout_s)
        return sub

    def unsubscribe(self, subscription: Subscription) -> None:
        """Remove a handler (and the broker's filter, when no other uses the same one)."""
        with self._subs_lock:
            subscription.active = False
            if subscription not in self._subs:
                return
            self._subs = [s for s in self._subs if s is not subscription]
            self._matched.clear()
            self._patterns[subscription.pattern] -= 1
            gone = self._patterns[subscription.pattern] <= 0
            if gone:
                del self._patterns[subscription.pattern]
        if gone:
            client = self.link.client
            if self.link.live and client is not None:
                client.unsubscribe(subscription.pattern)
            else:
                with self._subs_lock:
                    self._stale_patterns.add(subscription.pattern)

    def resubscribe(self, client: Any) -> bool:
        """On a new connection: drop filters given up while away, (re)subscribe the rest."""
        with self._subs_lock:
            patterns = sorted(self._patterns)
            stale = sorted(self._stale_patterns)
        if stale:
            client.unsubscribe(stale)
            with self._subs_lock:
                self._stale_patterns.difference_update(stale)
        return self.link.subscribe_and_wait(client, patterns, self.link.settings.connect_timeout_s)

    def _deliver(self, topic: str, msg: Wire) -> None:
        with self._subs_lock:
            matched = self._matched.get(topic)
            if matched is None:
                matched = [s for s in self._subs if topic_matches(s.pattern, topic)]
                if len(self._matched) >= _MATCHED_MAX:
                    self._matched.clear()
                self._matched[topic] = matched
            subs = [s for s in matched if s.active]
        self._deliver_to(topic, msg, subs)

    # -- receiving ----------------------------------------------------------------------------

    def on_message(self, client, userdata, msg) -> None:
        """paho's callback: queue what arrived for the ingest thread."""
        props = getattr(msg, "properties", None)
        user_properties = getattr(props, "UserProperty", None) or []
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # a broker must refuse such a topic; one that did not
            # gets it judged as data (it matches no subscription), not a dead network thread
            topic = bytes(getattr(msg, "_topic", b"")).decode("utf-8", "replace")
        self.on_publish_batch(client, [(topic, msg.payload, msg.mid, msg.qos, user_properties)])

    def on_publish_batch(self, client: Any, fields: list[Fields]) -> None:
        """Received PUBLISH packets as fields, in order (the fast client's callback, and
        :meth:`on_message`'s): queue them for the ingest thread."""
        now = time.time()
        limit = self.max_payload_bytes
        arrived = []
        for topic, payload, mid, qos, user_properties in fields:
            key = None
            for name, value in user_properties:
                if name == KEY_PROPERTY:
                    key = value
                    break
            if key is not None and len(key) > 200:  # a publisher's key is an id, not a payload
                key = None
            size = -1
            if len(payload) > limit:
                # judged on its size alone: never parsed, and only a prefix is kept
                size = len(payload)
                key = key or content_key(topic, bytes(payload))
                payload = payload[:TOO_LARGE_PREFIX]
            arrived.append(_Arrived(topic, bytes(payload), mid, qos, key, client, now, size))
        if not arrived:
            return
        with self._work_lock:
            self._work += len(arrived)
            self._backlog += len(arrived)
        self._count("received", len(arrived))
        self._rx.put(arrived)

    def _ack(self, item: _Arrived) -> None:
        if item.qos == 0:
            return
        # A PUBACK for a dead connection's packet id would acknowledge a different message on
        # the new one; the broker redelivers instead, and the key catches the copy.
        if item.client is self.link.client and self.link.connected.is_set():
            item.client.ack(item.mid, item.qos)
        else:
            self._count("ack_after_disconnect")

    def _ack_many(self, items: list[_Arrived]) -> None:
        """Acknowledge ``items`` in order, as :meth:`_ack` each; a fast client's QoS 1
        PUBACKs go out in one write."""
        client = self.link.client
        if not items or not hasattr(client, "ack_many"):
            for item in items:
                self._ack(item)
            return
        mids = []
        for item in items:
            if item.qos == 1 and item.client is client:
                mids.append(item.mid)
            else:
                self._ack(item)
        if mids:
            if self.link.connected.is_set():
                client.ack_many(mids)
            else:
                self._count("ack_after_disconnect", len(mids))

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
            batch = first
            while len(batch) < 512:
                try:
                    nxt = self._rx.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._rx.put(None)
                    break
                batch = batch + nxt
            with self._work_lock:
                self._backlog -= len(batch)
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
            if item.size >= 0:
                err = MessageError(
                    "$",
                    item.size,
                    f"a payload of at most {self.max_payload_bytes} bytes "
                    f"(first {len(item.payload)} kept)",
                    "too_large",
                )
                judged.append((item, key, None, err))
                continue
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
        acks: list[_Arrived] = []
        for item in reports:
            self._count("quarantine_reports_seen")
            acks.append(item)
        done = len(acks)  # received and settled here: acknowledged below
        to_dispatch = []
        for (item, _key, msg, err), seq, is_new in zip(judged, seqs, fresh, strict=True):
            if not is_new:
                self._count("duplicate")
                acks.append(item)
                done += 1
            elif err is not None:
                self._quarantine(item.topic, item.payload, err)
                acks.append(item)
                done += 1
            else:
                self._count("accepted")
                if self.journal is not None:
                    acks.append(item)
                to_dispatch.append((item, seq, msg))
        self._ack_many(acks)
        if done:
            self._work_add(-done)
        if self.sink is not None:
            if to_dispatch:
                self.sink([(seq, item.topic, item.payload) for item, seq, _ in to_dispatch])
                self._work_add(-len(to_dispatch))
            return
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
            if not self.link.closing.is_set():
                self._deliver(item.topic, msg)
                if self.journal is None:
                    self._ack(item)
                elif seq is not None:
                    last_seq = seq
                    since_mark += 1
            self._work_add(-1)
            if last_seq is not None and (since_mark >= 256 or self._dispatch.empty()):
                self.journal.mark_done(self.consumer, last_seq)
                last_seq, since_mark = None, 0
        if last_seq is not None and self.journal is not None:
            self.journal.mark_done(self.consumer, last_seq)

    def resume(self) -> int:
        """Hand subscribers what a previous run journaled and acknowledged but did not handle.

        Returns how many messages were handed over (each to every matching subscriber, in
        journal order). Call it before the threads start: new messages would interleave.
        """
        if self.journal is None:
            return 0
        if self._threads:
            raise RuntimeError("resume() must run before connect(): new messages would interleave")
        n = 0
        last = None
        for entry in self.journal.pending(self.consumer):
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
            self.journal.mark_done(self.consumer, last)
        return n


__all__ = ["MqttReceiver"]
