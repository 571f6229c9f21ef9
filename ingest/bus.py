"""The message bus: one interface, an in-process implementation here, MQTT in ``ingest.mqtt``.

Subscribers receive decoded, validated messages. A publisher may hand over a message struct
or raw bytes; every bus checks each message the same way before a subscriber sees it (raw
bytes decoded, structs checked, both by :func:`~vigil.ingest.schema.check`: kind on its topic,
values in bounds), and one that fails goes to the sector's quarantine with the reason instead.
A handler that raises is logged and counted (``handler_error``); the publisher never sees it,
and the other subscribers still get the message. Nothing is dropped silently:
:attr:`Bus.counts` and :attr:`Bus.quarantine_counts` say what went where.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from vigil.ingest.schema import (
    DEFAULT_MAX_SKEW_S,
    MessageError,
    Wire,
    check,
    decode,
    encode,
)
from vigil.ingest.topics import TopicError, check_filter, check_topic, topic_matches

log = logging.getLogger(__name__)

Handler = Callable[[str, Wire], None]

#: A quarantine record keeps at most this many bytes of the message, this many characters of
#: its topic and of its field and error texts: what is stored and re-published is bounded.
QUARANTINE_RAW_BYTES = 4096
QUARANTINE_TEXT_CHARS = 1024


@dataclass
class Subscription:
    """A handle on one subscription; :meth:`Bus.unsubscribe` takes it back."""

    pattern: str
    handler: Handler
    active: bool = True


@dataclass
class QuarantinedMessage:
    """A message that failed decoding or validation, kept with its reason and raw bytes.

    ``raw`` holds at most :data:`QUARANTINE_RAW_BYTES` of it; ``size`` is how many bytes the
    message had (for a ``too_large`` one, as announced when it arrived).
    """

    time: float
    topic: str
    reason: str
    field: str
    error: str
    raw: bytes
    size: int = -1


class Bus(ABC):
    """Publish, subscribe with MQTT wildcards, close.

    Parameters
    ----------
    sector
        Sector name; bad messages are reported on ``vigil/v1/{sector}/quarantine``.
    max_skew_s
        How far ahead of the local clock a message time may be, seconds.
    clock
        Source of "now" for validation, seconds since the epoch (simulations pass their own).
    """

    def __init__(
        self,
        sector: str,
        *,
        max_skew_s: float = DEFAULT_MAX_SKEW_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sector = sector
        self.max_skew_s = max_skew_s
        self.clock = clock
        self.counts: Counter[str] = Counter()
        self.quarantine_counts: Counter[str] = Counter()
        self.quarantined: list[QuarantinedMessage] = []
        self.quarantine_limit = 10_000
        self._quarantine_hooks: list[Callable[[QuarantinedMessage], None]] = []
        self._counts_lock = threading.Lock()

    @abstractmethod
    def publish(self, topic: str, message: Wire | bytes) -> None:
        """Send a message (a struct, or raw bytes to be validated) on ``topic``."""

    @abstractmethod
    def subscribe(self, pattern: str, handler: Handler) -> Subscription:
        """Call ``handler(topic, message)`` for each valid message on a matching topic."""

    @abstractmethod
    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop a subscription."""

    @abstractmethod
    def close(self) -> None:
        """Release the bus; publishing afterwards raises."""

    def on_quarantine(self, hook: Callable[[QuarantinedMessage], None]) -> None:
        """Also call ``hook`` for every quarantined message (a file writer, a console)."""
        self._quarantine_hooks.append(hook)

    def quarantine(self, topic: str, raw: bytes, err: MessageError) -> None:
        """Record a message refused before it reached the bus (an adapter's own check)."""
        self._quarantine(topic, raw, err)

    def _quarantine(self, topic: str, raw: bytes, err: MessageError) -> None:
        cap = QUARANTINE_TEXT_CHARS
        size = err.value if err.reason == "too_large" and isinstance(err.value, int) else len(raw)
        q = QuarantinedMessage(
            time=self.clock(),
            topic=topic[:cap],
            reason=err.reason[:64],
            field=err.field[:cap],
            error=str(err)[:cap],
            raw=raw[:QUARANTINE_RAW_BYTES],
            size=size,
        )
        self.quarantine_counts[err.reason] += 1
        if len(self.quarantined) < self.quarantine_limit:
            self.quarantined.append(q)
        for hook in self._quarantine_hooks:
            hook(q)

    def _count(self, name: str, n: int = 1) -> None:
        with self._counts_lock:
            self.counts[name] += n

    def _admit(self, topic: str, message: Wire | bytes | bytearray | memoryview) -> Wire | None:
        """The message as subscribers get it, checked; ``None`` when it went to quarantine.

        Raw bytes are decoded, a struct is checked as its decoded bytes would be; both with
        this bus's clock and skew.
        """
        if isinstance(message, bytes | bytearray | memoryview):
            raw = bytes(message)
            try:
                return decode(topic, raw, now=self.clock(), max_skew_s=self.max_skew_s)
            except MessageError as err:
                self._quarantine(topic, raw, err)
                return None
        try:
            return check(topic, message, now=self.clock(), max_skew_s=self.max_skew_s)
        except MessageError as err:
            self._quarantine(topic, _raw(message), err)
            return None

    def _deliver(self, topic: str, msg: Wire, subs: list[Subscription]) -> None:
        """Hand ``msg`` to each still active subscription in ``subs``, in order.

        A handler that raises is logged and counted; the others still get the message.
        """
        for sub in subs:
            if not sub.active:
                continue
            try:
                sub.handler(topic, msg)
                self._count("delivered")
            except Exception:
                self._count("handler_error")
                log.exception("handler for %s failed on %s", sub.pattern, topic)

    def __enter__(self) -> Bus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _raw(message: Wire) -> bytes:
    """A refused struct's bytes for the quarantine record (its repr if it cannot be encoded)."""
    try:
        return encode(message)
    except (TypeError, NotImplementedError, msgspec.EncodeError):
        return repr(message).encode("utf-8", errors="replace")


class InProcessBus(Bus):
    """A synchronous bus inside one process: delivery happens in :meth:`publish`, in order.

    Messages are checked and handler errors caught as on every bus (see the module's text).

    Deterministic: subscribers are called in subscription order, messages in publish order
    (a message published from inside a handler is delivered after the current one finishes).
    Thread-safe.
    """

    def __init__(self, sector: str, **kwargs) -> None:
        super().__init__(sector, **kwargs)
        self._subs: list[Subscription] = []
        self._lock = threading.RLock()
        self._queue: deque[tuple[str, Wire]] = deque()
        self._delivering = False
        self._closed = False
        #: Topic to the subscriptions whose filters match it, for the current ``_subs``
        #: (cleared whenever they change, and past 4096 topics).
        self._matching: dict[str, list[Subscription]] = {}

    def _subs_for(self, topic: str) -> list[Subscription]:
        subs = self._matching.get(topic)
        if subs is None:
            if len(self._matching) >= 4096:
                self._matching.clear()
            subs = [s for s in self._subs if topic_matches(s.pattern, topic)]
            self._matching[topic] = subs
        return subs

    def publish(self, topic: str, message: Wire | bytes, *, checked: bool = False) -> None:
        """Publish (see :meth:`Bus.publish`). ``checked``: the caller vouches that ``message``
        is a struct that already passed :func:`~vigil.ingest.schema.check` on this topic with
        a skew at most this bus's (decoded by an MQTT bus and journaled), or one it built
        itself from typed values (the sector core's tracks and crossings), so it is not
        checked here."""
        check_topic(topic)
        with self._lock:
            if self._closed:
                raise RuntimeError("bus is closed")
            self._count("published")
            admitted = message if checked else self._admit(topic, message)
            if admitted is None:
                return
            self._queue.append((topic, admitted))
            if self._delivering:
                return
            self._delivering = True
            try:
                while self._queue:
                    t, m = self._queue.popleft()
                    self._deliver(t, m, self._subs_for(t))
            finally:
                self._delivering = False

    def subscribe(self, pattern: str, handler: Handler) -> Subscription:
        check_filter(pattern)
        sub = Subscription(pattern, handler)
        with self._lock:
            self._subs.append(sub)
            self._matching.clear()
        return sub

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            subscription.active = False
            self._subs = [s for s in self._subs if s is not subscription]
            self._matching.clear()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._subs.clear()
            self._matching.clear()


__all__ = [
    "Bus",
    "Handler",
    "InProcessBus",
    "QuarantinedMessage",
    "Subscription",
    "TopicError",
    "check_filter",
    "check_topic",
    "topic_matches",
]
