"""``vigil run``'s store writes and journal pruning on a thread of their own.

The core thread used to write each second's tracks, crossings and alerts to the SQLite stores
itself (40-175 ms a second at 3,500 msg/s, in one pause in front of the next tick), and to
prune the journal behind each snapshot. A :class:`StoreWriter` takes both off it: the core
hands each flush's rows over (:attr:`vigil.core.SectorCore.store_writer`) and goes on; this
thread writes them, in the order handed over, through connections of its own to the same
files (SQLite runs the statements without the interpreter's lock).

Why nothing is lost or written twice across a crash: the stores are rebuilt from the journal.
A snapshot records the stores' row marks only after :meth:`StoreWriter.drain` (every row of
the state it covers is written then, and none of a later state), a restart trims the stores
back to those marks and replays the journal after them; rows still queued at a crash belong to
that replay. Pruning only ever deletes what a snapshot on disk already covers, so doing it a
little later changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from vigil.alerts.pg_mirror import HistoryMirror
from vigil.alerts.store import EventStore
from vigil.core import SectorCore, StoreRows, write_rows
from vigil.ingest.output_writer import OutputWriter
from vigil.tracks.store import TrackStore

log = logging.getLogger("vigil.service")

#: Jobs the thread takes in one go at most.
JOBS_HELD = 64


class StoreWriter:
    """Writes a :class:`~vigil.core.SectorCore`'s store rows, and runs other slow jobs, in
    the order handed over, on a daemon thread named ``name``."""

    def __init__(self, name: str = "vigil-stores") -> None:
        self._queue = OutputWriter(self._run, name, JOBS_HELD)
        self._core: SectorCore | None = None
        self._paths: tuple[str, str] | None = None
        self._history: HistoryMirror | None = None
        # the thread's own connections (a TrackStore may only be used by its maker's thread)
        self._stores: tuple[TrackStore, EventStore] | None = None
        self._closed = False

    def attach(self, core: SectorCore) -> bool:
        """Write ``core``'s flushes from now on (stores on disk only); False when in memory."""
        if ":memory:" in (core.tracks_store.path, core.events.path):
            return False
        self._core = core
        self._paths, self._history = (core.tracks_store.path, core.events.path), core.history
        core.store_writer = self.write_rows
        return True

    @property
    def attached(self) -> bool:
        """Whether a core's flushes come here (:meth:`attach`)."""
        return self._core is not None

    def write_rows(self, rows: StoreRows) -> None:
        """Queue one flush's rows (the lists are the writer's from now on)."""
        self._queue.put([lambda: self._write(rows)])

    def call(self, job: Callable[[], object]) -> None:
        """Queue ``job`` (run on the thread after everything queued before it)."""
        self._queue.put([job])

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is done; False when ``timeout`` s ran out."""
        return self._queue.drain(timeout)

    def detach(self, timeout: float | None = None) -> bool:
        """Write what is queued, close the thread's connections and let the core write its
        flushes itself again. False when the queue did not drain within ``timeout`` s."""
        core, self._core = self._core, None
        if core is not None:
            core.flush_stores()
            core.store_writer = None
        self.call(self._close_stores)
        return self.drain(timeout)

    def close(self, timeout: float = 30.0) -> bool:
        """:meth:`detach`, then stop the thread; False when it did not end in time."""
        if self._closed:
            return True
        self._closed = True
        done = self.detach(timeout)
        return self._queue.close(timeout) and done

    # -- the thread ------------------------------------------------------------------------------

    def _run(self, jobs: list[Callable[[], object]]) -> None:
        for job in jobs:
            try:
                job()
            except Exception:  # one failed write must not stop the later ones; logged
                log.exception("store job failed")

    def _write(self, rows: StoreRows) -> None:
        if self._stores is None:
            assert self._paths is not None  # rows come only from an attached core
            self._stores = (TrackStore(self._paths[0]), EventStore(self._paths[1]))
        write_rows(rows, *self._stores, self._history)

    def _close_stores(self) -> None:
        stores, self._stores = self._stores, None
        if stores is not None:
            for store in stores:
                store.close()


__all__ = ["JOBS_HELD", "StoreWriter"]
