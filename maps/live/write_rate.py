"""How often one logged-in user may write: a token bucket per user in front of every POST.

Each accepted POST (an alert action, a track label, a user change) writes the audit database,
and so does each refused one (a bad CSRF token, a role without the permission). Without a
bound a logged-in user, or a script holding a stolen session, could grow that database without
end by looping requests. :class:`WriteRate` gives each user a bucket of ``burst`` writes that
refills at ``per_s`` a second; a POST that finds it empty is refused at once (HTTP 429 with
``Retry-After``) before anything is read or written, and only the first refusal of a run is
audited, so the audit database grows at most at the refill rate, whatever the client does.

The defaults (a burst of 60, then one write every 2 s) let a commander acknowledge a screen of
alerts at once and label tracks as fast as a person clicks, and bound one user to 43,200
writes a day.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Writes one user may make at once, and how many come back each second.
DEFAULT_BURST = 60
DEFAULT_PER_S = 0.5


@dataclass
class _Bucket:
    tokens: float
    at: float
    refused: bool = False


@dataclass(frozen=True)
class Refusal:
    """A POST refused for its rate: how long until one more write is allowed (seconds) and
    whether this is the first refusal since the user's last accepted write (audit that one)."""

    retry_after_s: float
    first: bool


class WriteRate:
    """A token bucket per user name.

    Parameters
    ----------
    burst
        Writes a user may make back to back (the bucket's size), at least 1.
    per_s
        Writes that come back each second, > 0.
    max_users
        The most buckets kept (full buckets are dropped first, then the oldest); names come
        from valid sessions, so this only bounds memory against a very large user list.
    clock
        Monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        burst: int = DEFAULT_BURST,
        per_s: float = DEFAULT_PER_S,
        max_users: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1:
            raise ValueError(f"write burst {burst!r}: at least 1")
        if not per_s > 0:
            raise ValueError(f"write rate {per_s!r} per second: must be > 0")
        self.burst = int(burst)
        self.per_s = float(per_s)
        self.max_users = max_users
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def admit(self, user: str) -> Refusal | None:
        """Take one write from ``user``'s bucket: None when allowed, else the refusal."""
        now = self.clock()
        with self._lock:
            b = self._buckets.get(user)
            if b is None:
                if len(self._buckets) >= self.max_users:
                    self._evict(now)
                b = self._buckets[user] = _Bucket(float(self.burst), now)
            b.tokens = min(float(self.burst), b.tokens + (now - b.at) * self.per_s)
            b.at = now
            if b.tokens >= 1.0:
                b.tokens -= 1.0
                b.refused = False
                return None
            first = not b.refused
            b.refused = True
            return Refusal((1.0 - b.tokens) / self.per_s, first)

    def _evict(self, now: float) -> None:
        full = [
            k
            for k, b in self._buckets.items()
            if b.tokens + (now - b.at) * self.per_s >= self.burst
        ]
        for k in full or [min(self._buckets, key=lambda k: self._buckets[k].at)]:
            del self._buckets[k]
