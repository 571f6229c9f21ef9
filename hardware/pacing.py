"""Playing recorded device output back in time: hold each message until its time comes.

A device writes its feed as it happens; a file of that feed (a video, the UGS gateway's lines,
a MAVLink log) played back flat out arrives all at once. :class:`Pacer` holds each message
until ``start_wall + (t - origin) / speed``, so several adapters started apart from each other
(each its own process) still release their messages on one shared clock when they are given
the same ``origin`` (message time, UTC seconds) and ``start_wall`` (wall time, UTC seconds).
:class:`PacedBus` puts a pacer in front of any bus, reading the time from each message.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import msgspec

from vigil.ingest.bus import Bus, Handler, Subscription
from vigil.ingest.schema import Wire


class Pacer:
    """Release message times on a wall clock: ``t`` at ``start_wall + (t - origin) / speed``.

    Parameters
    ----------
    speed
        Message seconds per wall second (``inf``: no waiting at all).
    origin
        Message time that maps to ``start_wall``, UTC seconds; the first paced time if omitted.
    start_wall
        Wall time at which ``origin`` is released, UTC seconds; the first call's time if omitted.
    max_jump_s
        A time this far beyond the last paced one (message seconds) is released at once and
        does not move the clock: a device with a wrong clock must not stall its feed.
    """

    def __init__(
        self,
        speed: float,
        *,
        origin: float | None = None,
        start_wall: float | None = None,
        max_jump_s: float = 600.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed = {speed!r}: expected message seconds per wall second > 0")
        self.speed = float(speed)
        self.origin = origin
        self.start_wall = start_wall
        self.max_jump_s = max_jump_s
        self.clock = clock
        self.sleep = sleep
        self.last: float | None = None
        #: Times released at once because they jumped (a skewed clock) or came before the origin.
        self.unpaced = 0

    def wait(self, t: float) -> None:
        """Sleep until message time ``t`` is due."""
        if math.isinf(self.speed) or not math.isfinite(t):
            return
        if self.origin is None:
            self.origin = t
        if self.start_wall is None:
            self.start_wall = self.clock()
        ref = self.origin if self.last is None else self.last
        if t < self.origin or t - ref > self.max_jump_s:
            self.unpaced += 1
            return
        self.last = max(self.last or t, t)
        due = self.start_wall + (t - self.origin) / self.speed
        delay = due - self.clock()
        if delay > 0:
            self.sleep(delay)


class _Timed(msgspec.Struct):
    time: float | None = None


_time_decoder = msgspec.json.Decoder(_Timed)


def message_time(message: Wire | bytes) -> float | None:
    """The ``time`` of a message struct or of raw JSON bytes; ``None`` when there is none."""
    if not isinstance(message, bytes | bytearray | memoryview):
        t = getattr(message, "time", None)
        return float(t) if isinstance(t, int | float) else None
    try:
        return _time_decoder.decode(message).time
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        return None


class PacedBus(Bus):
    """A bus that holds each published message until its time is due on a :class:`Pacer`.

    Messages without a readable time (malformed lines) go through at once, so that the
    receiver still quarantines them with their reason.
    """

    def __init__(self, inner: Bus, pacer: Pacer) -> None:
        super().__init__(inner.sector, max_skew_s=inner.max_skew_s, clock=inner.clock)
        self.inner = inner
        self.pacer = pacer
        self.counts = inner.counts
        self.quarantine_counts = inner.quarantine_counts
        self.quarantined = inner.quarantined

    def publish(self, topic: str, message: Wire | bytes) -> None:
        t = message_time(message)
        if t is not None:
            self.pacer.wait(t)
        self.inner.publish(topic, message)

    def subscribe(self, pattern: str, handler: Handler) -> Subscription:
        return self.inner.subscribe(pattern, handler)

    def unsubscribe(self, subscription: Subscription) -> None:
        self.inner.unsubscribe(subscription)

    def quarantine(self, topic: str, raw: bytes, err) -> None:
        self.inner.quarantine(topic, raw, err)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait for the inner bus's acknowledgements (when it has any to wait for)."""
        flush = getattr(self.inner, "flush", None)
        return True if flush is None else bool(flush(timeout))

    def close(self) -> None:
        self.inner.close()


__all__ = ["PacedBus", "Pacer", "message_time"]
