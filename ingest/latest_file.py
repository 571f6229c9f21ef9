"""A small file rewritten often (a service's status) without holding up the caller."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from vigil.ingest.private_files import write_private_text

log = logging.getLogger(__name__)


class LatestFile:
    """A file rewritten on a thread of its own with the newest text handed to it.

    :meth:`hand` returns at once: a slow file system holds up only the writer thread, and a
    text not yet written when a newer one comes is dropped (at most one waits). Each write
    replaces the file atomically, mode 0600
    (:func:`~vigil.ingest.private_files.write_private_text`).

    Parameters
    ----------
    path
        The file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._latest: str | None = None
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def hand(self, text: str) -> None:
        """Have ``text`` written soon (the writer thread starts on the first call)."""
        with self._cv:
            self._latest = text
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(
                    target=self._run, name=f"write-{self.path.name}", daemon=True
                )
                self._thread.start()
            self._cv.notify()

    def write(self, text: str) -> None:
        """Write ``text`` now, on the calling thread."""
        write_private_text(self.path, text)

    def _run(self) -> None:
        while True:
            with self._cv:
                while self._latest is None and not self._stopped:
                    self._cv.wait()
                text, self._latest = self._latest, None
            if text is None:
                return
            try:
                self.write(text)
            except OSError:
                log.exception("%s not written", self.path)

    def stop(self) -> None:
        """Write what is waiting, then end the thread (:meth:`write` still works after)."""
        with self._cv:
            self._stopped = True
            self._cv.notify()
        if self._thread is not None:
            self._thread.join(10.0)


__all__ = ["LatestFile"]
