"""Outputs committed and sent on a thread of their own, in the order they were handed over.

``vigil run``'s core thread used to commit each batch of outputs to the output outbox (one
SQLite transaction, an fsync with ``synchronous=FULL``) and hand every message to paho itself,
between a tick's steps and after it: the next input waited for the disk. An
:class:`OutputWriter` takes the batches from a queue instead; what queued while it was busy
goes in its next commit (a group commit: one transaction for many small batches when the disk
is slow, a commit as soon as one batch is there when it is not). :meth:`OutputWriter.drain`
waits until everything handed over so far is committed and sent: a snapshot calls it before
counting the outputs as in the outbox, and a clean stop before closing the bus.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: A batch of outputs: ``(topic, message)`` pairs.
Batch = list[tuple[str, Any]]


class OutputWriter:
    """Hands batches of outputs to ``send`` (which commits and publishes them, in order) on a
    daemon thread named ``name``; ``send`` gets the batches queued since its last call joined
    in one list of at most ``max_batch`` outputs. An exception from ``send`` is logged and the
    writer goes on."""

    def __init__(
        self, send: Callable[[Batch], None], name: str = "vigil-output", max_batch: int = 2048
    ) -> None:
        self._send, self._max_batch = send, max_batch
        self._name = name
        self._cond = threading.Condition()
        self._queued: Batch = []
        self._handed = 0  # outputs handed over so far
        self._done = 0  # outputs whose send returned
        self._closed = False
        self._thread: threading.Thread | None = None

    def put(self, batch: Batch) -> None:
        """Queue ``batch`` (not copied: the caller lets go of it) for the writer thread."""
        if not batch:
            return
        with self._cond:
            if self._closed:
                raise RuntimeError("output writer is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            if not self._queued:  # the writer may be waiting for the first
                self._cond.notify_all()
            self._queued.extend(batch)
            self._handed += len(batch)

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every output handed over so far is sent (``timeout`` s; None: no limit);
        False when the time ran out."""
        with self._cond:
            target = self._handed
            return self._cond.wait_for(lambda: self._done >= target, timeout)

    @property
    def waiting(self) -> int:
        """Outputs handed over and not yet sent."""
        with self._cond:
            return self._handed - self._done

    def close(self, timeout: float = 30.0) -> bool:
        """Send what is queued, then stop the thread; False when it did not end in time."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queued or self._closed)
                batch = self._queued[: self._max_batch]
                del self._queued[: self._max_batch]
                if not batch and self._closed:
                    return
            try:
                self._send(batch)
            except Exception:  # the writer must go on; the owner's send logs its own failures
                log.exception("sending %d outputs failed", len(batch))
            with self._cond:
                self._done += len(batch)
                self._cond.notify_all()


__all__ = ["Batch", "OutputWriter"]
