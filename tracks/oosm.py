"""Out-of-sequence batches: apply late batches in time order by replaying from a snapshot.

A batch that arrives late (its time before the newest batch already applied) but within the
lag window is slotted into its place in time: the tracker goes back to the snapshot taken
before the first later batch and re-applies everything from there in time order. The result
is exactly what in-order arrival would have given. Batches later than the lag are counted in
:attr:`TimeOrderedReplay.dropped_late` and not applied.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

B = TypeVar("B")
S = TypeVar("S")


@dataclass
class _Entry(Generic[B, S]):
    key: tuple[float, str, int]
    batch: B
    before: S | None = field(default=None, repr=False)


class TimeOrderedReplay(Generic[B, S]):
    """Feed batches to ``apply`` in time order, tolerating arrivals up to ``lag_s`` late.

    Parameters
    ----------
    apply
        ``apply(t, batch)`` runs one batch at time ``t`` (seconds).
    snapshot, restore
        Save and bring back the state that ``apply`` changes.
    lag_s
        How far behind the newest batch a batch may be and still be applied, seconds.
    """

    def __init__(
        self,
        apply: Callable[[float, B], None],
        snapshot: Callable[[], S],
        restore: Callable[[S], None],
        lag_s: float,
    ) -> None:
        if not lag_s >= 0.0:
            raise ValueError(f"lag_s = {lag_s!r}; expected a non-negative number of seconds")
        self._apply = apply
        self._snapshot = snapshot
        self._restore = restore
        self.lag_s = float(lag_s)
        self._entries: list[_Entry[B, S]] = []
        self._seq = 0
        self.newest = float("-inf")
        #: Batches too late to apply (older than ``newest - lag_s``).
        self.dropped_late = 0
        #: Batches that arrived late and were applied by replaying.
        self.replayed = 0

    def submit(self, t: float, batch: B, tiebreak: str = "") -> bool:
        """Apply ``batch`` made at time ``t``; False when it is too late and was dropped.

        Batches at the same time run in ``tiebreak`` order (then arrival order), so that the
        outcome does not depend on which of them arrived first.
        """
        t = float(t)
        if t < self.newest - self.lag_s:
            self.dropped_late += 1
            return False
        key = (t, tiebreak, self._seq)
        self._seq += 1
        entry: _Entry[B, S] = _Entry(key, batch)
        last = self._entries[-1].key if self._entries else None
        if t > self.newest or (t == self.newest and (last is None or key > last)):
            if self.lag_s > 0.0:
                entry.before = self._snapshot()
                self._entries.append(entry)
            self._apply(t, batch)
            self.newest = t
        else:
            self.replayed += 1
            at = bisect.bisect_right([e.key for e in self._entries], key)
            start = self._entries[at].before
            self._entries.insert(at, entry)
            self._restore(start)
            for e in self._entries[at:]:
                e.before = self._snapshot()
                self._apply(e.key[0], e.batch)
        self._prune()
        return True

    def _prune(self) -> None:
        horizon = self.newest - self.lag_s
        drop = 0
        while drop < len(self._entries) - 1 and self._entries[drop + 1].key[0] < horizon:
            drop += 1
        if drop:
            del self._entries[:drop]
