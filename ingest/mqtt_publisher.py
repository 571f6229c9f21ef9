"""The MQTT bus's sending side: the outbox, QoS 1 acknowledgements and resending.

Every message goes first into an on-disk :class:`~vigil.ingest.outbox.Outbox` (committed
before :meth:`MqttPublisher.publish` returns), then to the broker at QoS 1 with a message key
in an MQTT 5 user property (``vigil-key``). It leaves the outbox only when the broker has
acknowledged it *and* the replay window has passed: after any reconnect the publisher sends
again, in sequence order, everything unacknowledged plus everything acknowledged within the
window before the broker's last acknowledgement, because a broker killed before its next
autosave forgets messages it had acknowledged. The window counts back from that last
acknowledgement (the last moment the broker is known to have been up), not from when the fall
was noticed: a broker that hangs before it dies sends no FIN, and the fall may be noticed only
a keepalive later, when the messages it acknowledged last are long outside a window counted
back from now; the outbox is pruned against the same moment. A message the broker refuses
(ACL) is removed, counted and logged, never retried in silence and never dropped in silence.
One the broker accepts with "no matching subscribers" is counted; with ``resend_unrouted`` it
and everything after it are sent again until a session takes it.

Retained current state (:meth:`MqttPublisher.publish_retained`) does not go through the
outbox: it is sent at QoS 1 with the retain flag when connected, and whoever owns it asserts
it again in full each time the connection goes live (:attr:`MqttPublisher.on_live`), so a
broker restart or a fall of the connection loses none of it, and the outbox's count of
messages (which a restarted service skips by) holds only the stream messages.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vigil.ingest.bus import QuarantinedMessage
from vigil.ingest.mqtt_link import Count, MqttLink
from vigil.ingest.outbox import Outbox
from vigil.ingest.quarantine import report_bytes
from vigil.ingest.schema import Wire, encode

log = logging.getLogger("vigil.ingest.mqtt")

#: MQTT 5 user property that carries a message's key, for de-duplication by receivers.
KEY_PROPERTY = "vigil-key"

#: MQTT 5 PUBACK reason "No matching subscribers": a success code, but nothing got the message.
_NO_SUBSCRIBERS = 0x10


class MqttPublisher:
    """Publishes through the outbox over a :class:`~vigil.ingest.mqtt_link.MqttLink`.

    Parameters
    ----------
    link
        The connection (its client, and whether it is live).
    outbox_path
        SQLite file of the outbox; ``None`` keeps it in memory (retries within the process).
    quarantine_topic
        The sector's quarantine topic: reports on it are never held back for a session.
    count
        ``count(name, n=1)``: adds to the bus's counts.
    """

    def __init__(
        self,
        link: MqttLink,
        outbox_path: str | Path | None,
        quarantine_topic: str,
        count: Count,
    ) -> None:
        self.link = link
        self.settings = link.settings
        self.outbox = Outbox(outbox_path)
        self.quarantine_topic = quarantine_topic
        self._count = count
        #: Broker refusals of our publications, by reason ("Not authorized": 3).
        self.refused_counts: Counter[str] = Counter()
        self._refused_lock = threading.Lock()
        self._send_lock = threading.RLock()
        self._mid_lock = threading.Lock()
        self._mid_seq: dict[int, tuple[int, str]] = {}
        self._early_acks: dict[int, Any] = {}
        #: The first message a broker accepted with no session to take it (resend from here).
        self._unrouted: int | None = None
        self._unrouted_delay = self.settings.reconnect_min_delay_s
        #: Called with the client each time the connection goes live, before the stream's
        #: messages go live: the owner of retained state sends it all again here.
        self.on_live: Callable[[Any], None] | None = None
        self._direct_mids: set[int] = set()
        #: When the broker last acknowledged one of our messages (``time.time()`` seconds);
        #: the replay window and the pruning count back from here.
        self._last_ack_at: float | None = None
        #: The moment the current replay counts back from, kept while a replay is unfinished
        #: (a fall mid-resend must not move it to the new broker's acknowledgements).
        self._replay_from: float | None = None

    # -- publishing ---------------------------------------------------------------------------

    def publish(self, topic: str, message: Wire | bytes) -> None:
        """Commit a message (a struct, or raw bytes passed on as they are) to the outbox, and
        send it now when the link is live (otherwise it goes on the next catch-up)."""
        self.publish_many([(topic, message)])

    def publish_many(self, messages: Sequence[tuple[str, Wire | bytes]]) -> None:
        """Commit ``(topic, message)`` messages to the outbox in one transaction (see
        :meth:`publish`), then send them in order when the link is live: one commit for a
        tick's tracks instead of one per message."""
        rows = [
            (topic, bytes(m) if isinstance(m, bytes | bytearray | memoryview) else encode(m))
            for topic, m in messages
        ]
        if not rows:
            return
        with self._send_lock:
            seqs = self.outbox.put_many(rows, time.time())
            self._count("published", len(rows))
            client = self.link.client
            if self.link.live and client is not None:
                for seq, (topic, payload) in zip(seqs, rows, strict=True):
                    self._send(client, seq, topic, payload)

    def publish_retained(self, topic: str, payload: bytes, client: Any = None) -> bool:
        """Send a retained message at QoS 1 now (an empty payload clears the topic); False
        when not connected (the owner sends it again from :attr:`on_live`)."""
        client = client if client is not None else self.link.client
        if client is None or not self.link.connected.is_set():
            self._count("retained_deferred")
            return False
        info = client.publish(topic, payload, qos=1, retain=True)
        with self._mid_lock:
            if self._early_acks.pop(info.mid, None) is None:
                self._direct_mids.add(info.mid)
        self._count("retained_sent")
        return True

    def publish_report(self, q: QuarantinedMessage) -> None:
        """Publish a quarantined message's record on the quarantine topic (not a report's)."""
        if q.topic == self.quarantine_topic:
            return
        self.publish(self.quarantine_topic, report_bytes(q))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the broker has acknowledged everything published; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.outbox.unacked() > 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self) -> None:
        """Close the outbox; what it holds stays on disk for the next bus with the same path."""
        self.outbox.close()

    # -- the session's sending side (called by the link's supervisor) -------------------------

    def new_connection(self) -> None:
        """Forget the packet ids of a dead connection's publications."""
        with self._mid_lock:
            self._mid_seq.clear()
            self._early_acks.clear()
            self._direct_mids.clear()

    def resend(self, client: Any, from_unrouted: bool = False) -> bool:
        """Send what the outbox holds, in order; then go live. False if the connection fell.

        After a reconnect: everything unacknowledged plus what was acknowledged within the
        replay window before the broker's last acknowledgement (see :meth:`replay_from`).
        ``from_unrouted``: everything from the first message no session took, acknowledged or
        not (receivers drop the copies by message key).
        """
        s = self.settings
        link = self.link
        if from_unrouted:
            with self._mid_lock:
                first, self._unrouted = self._unrouted, None
            last, since = (first or 1) - 1, -math.inf
        else:
            # acknowledged within the window before the broker's last acknowledgement: it may
            # not have saved them (a fall mid-resend keeps the first replay's moment)
            if self._replay_from is None:
                self._replay_from = self.replay_from()
            since = self._replay_from - s.replay_window_s if s.replay_window_s > 0 else math.inf
            last = 0
        while link.connected.is_set() and not link.closing.is_set():
            with self._send_lock:
                rows = self.outbox.to_send(last, since, limit=256)
                if not rows:
                    if not from_unrouted:
                        self._replay_from = None  # replayed in full
                    if self._unrouted is None:  # else the supervisor goes round again
                        if self.on_live is not None and not from_unrouted:
                            self.on_live(client)
                        link.go_live()
                    return True
            for row in rows:
                while len(self._mid_seq) >= 2 * s.max_inflight:
                    if not link.connected.is_set() or link.closing.is_set():
                        return False
                    time.sleep(0.001)
                self._send(client, row.seq, row.topic, row.payload)
                self._count("sent_from_outbox")
                last = row.seq
        return False

    def replay_from(self) -> float:
        """The moment a replay's window counts back from (``time.time()`` seconds): the
        broker's last acknowledgement of ours (this process's, else the last one the outbox
        recorded), and never later than when the connection fell (or now, before any fall).

        Not the moment the fall was noticed: a broker that hangs, then dies, sends no FIN,
        and the fall may be noticed a keepalive after its last acknowledgement.
        """
        fell = time.time() if self.link.lost_at is None else self.link.lost_at
        last = self._last_ack_at
        if last is None:
            last = self.outbox.last_acked()
        return fell if last is None else min(fell, last)

    def keep_session(self, client: Any) -> bool:
        """The supervisor's periodic step: prune the outbox, resend what no session took.

        False when the connection should end (closing, or it fell during a resend).
        """
        s = self.settings
        self.outbox.commit_acks()  # the acknowledgements of the last 0.2 s, in one commit
        if s.replay_window_s > 0:
            # against the last acknowledgement, not the clock: while a hung broker acknowledges
            # nothing, what it acknowledged last stays for the replay
            last = self._last_ack_at
            now = time.time()
            self.outbox.prune((now if last is None else min(now, last)) - s.replay_window_s)
        if self._unrouted is not None:
            # no session took a message: wait, then send it and all after it again (the
            # wait doubles until a message is routed)
            self._count("unrouted_resends")
            if self.link.closing.wait(self._unrouted_delay):
                return False
            self._unrouted_delay = min(self._unrouted_delay * 2, s.reconnect_max_delay_s)
            if not self.resend(client, from_unrouted=True):
                return False
        return True

    # -- sending and acknowledgements ---------------------------------------------------------

    def _send(self, client: Any, seq: int, topic: str, payload: bytes) -> None:
        props = _publish_properties()()
        # the one property, set without paho's per-assignment name search (same packet bytes)
        key = f"{self.link.client_id}/{self.outbox.epoch}/{seq}"
        object.__setattr__(props, "UserProperty", [(KEY_PROPERTY, key)])
        info = client.publish(topic, payload, qos=1, properties=props)
        with self._mid_lock:
            early = self._early_acks.pop(info.mid, None)
            if early is None:
                self._mid_seq[info.mid] = (seq, topic)
        if early is not None:
            self._acked(seq, topic, early)

    def on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        """paho's callback: the broker answered a publication (PUBACK)."""
        if client is not self.link.client:
            return
        with self._mid_lock:
            if mid in self._direct_mids:  # a retained state message
                self._direct_mids.discard(mid)
                return
            entry = self._mid_seq.pop(mid, None)
            if entry is None:
                self._early_acks[mid] = reason_code
                return
        self._acked(entry[0], entry[1], reason_code)

    def _acked(self, seq: int, topic: str, reason_code: Any) -> None:
        if reason_code is not None and reason_code.is_failure:
            self.outbox.remove(seq)
            self._count("refused")
            with self._refused_lock:
                self.refused_counts[str(reason_code)] += 1
            log.error("broker refused message %d on %s: %s", seq, topic, reason_code)
        elif reason_code is not None and getattr(reason_code, "value", 0) == _NO_SUBSCRIBERS:
            # accepted and dropped: no session at the broker wanted it
            self._count("acked_no_subscribers")
            if self.settings.resend_unrouted and topic != self.quarantine_topic:
                # not the send lock: paho may call this holding its own lock, which a
                # publishing thread holding the send lock may be waiting for
                with self._mid_lock:
                    self.link.hold()  # later messages wait behind it, in order
                    self._unrouted = seq if self._unrouted is None else min(self._unrouted, seq)
                return
            self._mark_acked(seq)
        else:
            self._mark_acked(seq)
            self._unrouted_delay = self.settings.reconnect_min_delay_s  # a session is there

    def _mark_acked(self, seq: int) -> None:
        now = time.time()
        self.outbox.mark_acked(seq, now)
        self._last_ack_at = now if self._last_ack_at is None else max(self._last_ack_at, now)
        self._count("acked")


@functools.cache
def _publish_properties() -> type:
    """paho's PUBLISH ``Properties`` with its lookup tables (names, types, property ids) built
    once for the class: paho builds them anew for every instance, which was a good part of
    each publication's cost. The tables are only read."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    proto = Properties(PacketTypes.PUBLISH)

    class PublishProperties(Properties):
        types = proto.types
        names = proto.names
        properties = proto.properties

        def __init__(self) -> None:
            object.__setattr__(self, "packetType", PacketTypes.PUBLISH)

    return PublishProperties


__all__ = ["KEY_PROPERTY", "MqttPublisher"]
