"""The message bus: one interface, an in-process implementation here, MQTT in ``ingest.mqtt``.

Subscribers receive decoded, validated messages. A publisher may hand over a message struct
or raw bytes; raw bytes are decoded on delivery and, when they fail, go to the sector's
quarantine with the reason instead of reaching the subscribers. Nothing is dropped silently:
:attr:`Bus.counts` and :attr:`Bus.quarantine_counts` say what went where.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

from vigil.ingest.schema import (
    DEFAULT_MAX_SKEW_S,
    MessageError,
    Wire,
    decode,
)

Handler = Callable[[str, Wire], None]


class TopicError(ValueError):
    """A topic or subscription filter that breaks MQTT's rules."""


def check_filter(pattern: str) -> None:
    """Raise :class:`TopicError` unless ``pattern`` is a valid MQTT topic filter."""
    if not pattern:
        raise TopicError("topic filter is empty")
    levels = pattern.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise TopicError(f"filter {pattern!r}: '#' must be a whole level and the last one")
        if "+" in level and level != "+":
            raise TopicError(f"filter {pattern!r}: '+' must be a whole level")


def check_topic(topic: str) -> None:
    """Raise :class:`TopicError` unless ``topic`` is a valid topic name to publish on."""
    if not topic:
        raise TopicError("topic is empty")
    if "+" in topic or "#" in topic:
        raise TopicError(f"topic {topic!r}: wildcards are for subscriptions, not publishing")
    if "\x00" in topic:
        raise TopicError(f"topic {topic!r} contains a NUL character")


def topic_matches(pattern: str, topic: str) -> bool:
    """Whether ``topic`` matches the MQTT filter ``pattern`` (``+`` one level, ``#`` the rest).

    As in MQTT 3.1.1 section 4.7: ``a/#`` also matches ``a``, and topics starting with ``$``
    are not matched by a filter starting with a wildcard.

    >>> topic_matches("vigil/v1/+/ugs/#", "vigil/v1/tucson/ugs/u117/events")
    True
    >>> topic_matches("vigil/v1/+/tracks", "vigil/v1/tucson/alerts")
    False
    """
    p = pattern.split("/")
    t = topic.split("/")
    if topic.startswith("$") and p[0] in ("+", "#"):
        return False
    for i, level in enumerate(p):
        if level == "#":
            return True
        if i >= len(t):
            return False
        if level != "+" and level != t[i]:
            return False
    return len(p) == len(t)


@dataclass
class Subscription:
    """A handle on one subscription; :meth:`Bus.unsubscribe` takes it back."""

    pattern: str
    handler: Handler
    active: bool = True


@dataclass
class QuarantinedMessage:
    """A message that failed decoding or validation, kept with its reason and raw bytes."""

    time: float
    topic: str
    reason: str
    field: str
    error: str
    raw: bytes


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
        q = QuarantinedMessage(
            time=self.clock(),
            topic=topic,
            reason=err.reason,
            field=err.field,
            error=str(err),
            raw=raw,
        )
        self.quarantine_counts[err.reason] += 1
        if len(self.quarantined) < self.quarantine_limit:
            self.quarantined.append(q)
        for hook in self._quarantine_hooks:
            hook(q)

    def _decode(self, topic: str, raw: bytes) -> Wire | None:
        try:
            return decode(topic, raw, now=self.clock(), max_skew_s=self.max_skew_s)
        except MessageError as err:
            self._quarantine(topic, raw, err)
            return None

    def __enter__(self) -> Bus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcessBus(Bus):
    """A synchronous bus inside one process: delivery happens in :meth:`publish`, in order.

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

    def publish(self, topic: str, message: Wire | bytes) -> None:
        check_topic(topic)
        with self._lock:
            if self._closed:
                raise RuntimeError("bus is closed")
            self.counts["published"] += 1
            if isinstance(message, bytes | bytearray | memoryview):
                decoded = self._decode(topic, bytes(message))
                if decoded is None:
                    return
                message = decoded
            self._queue.append((topic, message))
            if self._delivering:
                return
            self._delivering = True
            try:
                while self._queue:
                    t, m = self._queue.popleft()
                    for sub in list(self._subs):
                        if sub.active and topic_matches(sub.pattern, t):
                            sub.handler(t, m)
                            self.counts["delivered"] += 1
            finally:
                self._delivering = False

    def subscribe(self, pattern: str, handler: Handler) -> Subscription:
        check_filter(pattern)
        sub = Subscription(pattern, handler)
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            subscription.active = False
            self._subs = [s for s in self._subs if s is not subscription]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._subs.clear()


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
