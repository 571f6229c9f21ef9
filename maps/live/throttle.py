"""Logins under attack: growing delays instead of lockouts, and a small gate in front of the
argon2 check.

A login attempt is admitted or refused *before* its password is checked. It counts against
three keys: the client's address, the user name tried, and all clients together; each key
lets :attr:`Backoff.free` attempts through in its window, then asks for a delay since its last
attempt that doubles with each further one, up to a cap. An attempt in a delay is refused at
once (HTTP 429 with ``Retry-After``) without any argon2 work; attempts are counted when
admitted, so a burst of parallel requests cannot slip through before the first one fails. A
success takes its attempt back and clears the name's key, so one failed guess does not slow
the user who then types the right password.

A browser that has logged in as a user before holds a signed ``vigil_device`` cookie for that
name; its attempts for that name count against the device alone (its own growing delay) and
go to a reserved argon2 slot, so a commander is not kept out by someone else's guesses from
other addresses, from the same address or for the same name.

:class:`VerifyGate` lets at most a few argon2 checks run at once (each costs 64 MiB and tens
of milliseconds of several cores) and refuses rather than queueing without bound.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool


class Backoff:
    """Growing delays for one kind of key.

    Parameters
    ----------
    free
        Attempts a key may make in ``window_s`` before delays start.
    base_s, max_s
        The first delay and the cap, seconds; each attempt beyond ``free`` doubles it.
    window_s
        How long an attempt counts, seconds.
    max_keys
        The most keys kept; the least recently used go first (keeps memory bounded whatever
        names and addresses an attacker makes up).
    """

    def __init__(
        self, free: int, base_s: float, max_s: float, window_s: float, max_keys: int = 20_000
    ) -> None:
        self.free = free
        self.base_s = base_s
        self.max_s = max_s
        self.window_s = window_s
        self.max_keys = max_keys
        self._attempts: dict[str, deque[float]] = {}

    def __len__(self) -> int:
        return len(self._attempts)

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._attempts.get(key)
        if times is None:
            return None
        while times and now - times[0] >= self.window_s:
            times.popleft()
        if not times:
            del self._attempts[key]
            return None
        return times

    def wait_s(self, key: str, now: float) -> float:
        """Seconds before ``key`` may try again (0: now)."""
        times = self._recent(key, now)
        if times is None or len(times) < self.free:
            return 0.0
        delay = min(self.base_s * 2.0 ** (len(times) - self.free), self.max_s)
        return max(0.0, times[-1] + delay - now)

    def note(self, key: str, now: float) -> None:
        """Count an admitted attempt of ``key`` at ``now``."""
        times = self._attempts.pop(key, None) or deque()
        times.append(now)
        self._attempts[key] = times  # re-inserted: dicts keep the most recent last
        while len(self._attempts) > self.max_keys:
            del self._attempts[next(iter(self._attempts))]

    def take_back(self, key: str, t: float) -> None:
        """Uncount the attempt of ``key`` made at ``t`` (it succeeded)."""
        times = self._attempts.get(key)
        if times is not None and t in times:
            times.remove(t)

    def clear(self, key: str) -> None:
        """Forget every attempt of ``key``."""
        self._attempts.pop(key, None)

    def prune(self, now: float) -> None:
        """Drop the keys with no attempt in the window."""
        for key in list(self._attempts):
            self._recent(key, now)


@dataclass(frozen=True)
class Attempt:
    """An admitted login attempt: the keys it counted against and when."""

    t: float
    keys: tuple[tuple[str, str], ...]  # (kind, key)
    name: str
    trusted: bool


class LoginThrottle:
    """Admission of login attempts: per address, per name, per device and overall.

    Parameters
    ----------
    address, name, device, overall
        The :class:`Backoff` of each kind of key (defaults: an address gets 5 free attempts
        then 1 s doubling to 60 s; a name 5 then 1 s to 10 s, so a guess a minute slows its
        user by seconds and never locks them out; a trusted device 5 then 1 s to 30 s; all
        untrusted attempts together 30 a minute, then 0.5 s to 5 s).
    clock
        Seconds (monotonic).
    """

    def __init__(
        self,
        *,
        address: Backoff | None = None,
        name: Backoff | None = None,
        device: Backoff | None = None,
        overall: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kinds = {
            "address": address or Backoff(5, 1.0, 60.0, 900.0),
            "name": name or Backoff(5, 1.0, 10.0, 900.0),
            "device": device or Backoff(5, 1.0, 30.0, 900.0),
            "overall": overall or Backoff(30, 0.5, 5.0, 60.0, max_keys=1),
        }
        self.clock = clock
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._pruned = clock()

    def admit(self, address: str, name: str, device: str | None = None) -> Attempt | float:
        """Admit an attempt (an :class:`Attempt`) or say how many seconds to wait."""
        if device is not None:
            keys = (("device", f"{name}:{device}"),)
        else:
            keys = (("address", address), ("name", name), ("overall", "*"))
        now = self.clock()
        with self._lock:
            if now - self._pruned > 30.0:
                for backoff in self.kinds.values():
                    backoff.prune(now)
                self._pruned = now
            wait = max(self.kinds[kind].wait_s(key, now) for kind, key in keys)
            if wait > 0:
                self.counts["refused"] += 1
                return wait
            for kind, key in keys:
                self.kinds[kind].note(key, now)
            self.counts["admitted"] += 1
        return Attempt(now, keys, name, device is not None)

    def failed(self, attempt: Attempt) -> None:
        """The attempt's password was wrong (it stays counted)."""
        with self._lock:
            self.counts["failed"] += 1

    def undo(self, attempt: Attempt) -> None:
        """The attempt was not checked at all (the server was busy): uncount it."""
        with self._lock:
            for kind, key in attempt.keys:
                self.kinds[kind].take_back(key, attempt.t)

    def succeeded(self, attempt: Attempt) -> None:
        """The attempt's password was right: uncount it and forget the name's failures."""
        with self._lock:
            self.counts["succeeded"] += 1
            for kind, key in attempt.keys:
                self.kinds[kind].take_back(key, attempt.t)
            self.kinds["name"].clear(attempt.name)

    def size(self) -> int:
        """Keys held, all kinds together (bounded by each kind's ``max_keys``)."""
        with self._lock:
            return sum(len(b) for b in self.kinds.values())


class GateBusyError(RuntimeError):
    """Too many password checks are waiting; the attempt was not checked."""


class VerifyGate:
    """At most ``slots`` argon2 checks at once for untrusted attempts, one of them per client
    address, and ``trusted_slots`` more for browsers known to their user; at most
    ``max_waiting`` untrusted attempts wait, the next is refused (:class:`GateBusyError`).

    Bounds the memory of checks to ``(slots + trusted_slots) x`` the hash's memory cost
    (64 MiB by default) however many logins arrive at once; one address cannot hold more than
    one slot, so another client's check starts at once however many that address queued;
    while a known browser's check waits or runs, no untrusted one starts.
    """

    def __init__(self, slots: int = 2, trusted_slots: int = 1, max_waiting: int = 16) -> None:
        self.slots = slots
        self.trusted_slots = trusted_slots
        self.max_waiting = max_waiting
        self._waiting = 0
        self._sem: asyncio.Semaphore | None = None
        self._trusted: asyncio.Semaphore | None = None
        self._per_address: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        self._trusted_busy = 0
        self._no_trusted: asyncio.Event | None = None

    async def run(self, fn: Callable, *args, trusted: bool = False, address: str = "-"):
        """Run ``fn(*args)`` on a worker thread once a slot is free; its result."""
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.slots)
            self._trusted = asyncio.Semaphore(self.trusted_slots)
            self._no_trusted = asyncio.Event()
            self._no_trusted.set()
        if trusted:
            # a known browser goes first: no new untrusted check starts while one waits or
            # runs, so under a spray it shares the processors with at most `slots` checks
            self._trusted_busy += 1
            self._no_trusted.clear()
            try:
                async with self._trusted:
                    return await run_in_threadpool(fn, *args)
            finally:
                self._trusted_busy -= 1
                if self._trusted_busy == 0:
                    self._no_trusted.set()
        if self._waiting >= self.max_waiting:
            raise GateBusyError(f"{self._waiting} password checks waiting")
        lock, users = self._per_address.setdefault(address, (asyncio.Lock(), [0]))
        users[0] += 1
        self._waiting += 1
        try:
            async with lock:
                try:
                    await self._no_trusted.wait()
                    await self._sem.acquire()
                finally:
                    self._waiting -= 1
                try:
                    return await run_in_threadpool(fn, *args)
                finally:
                    self._sem.release()
        finally:
            users[0] -= 1
            if users[0] == 0:
                self._per_address.pop(address, None)
