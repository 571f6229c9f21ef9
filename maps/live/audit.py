"""The audit log: who logged in, who acknowledged, assigned or labelled what, and what was
refused.

One SQLite table, ``audit(time, user, action, target, detail)``, appended to and never
updated; times are UTC seconds since the epoch. Other append-only tables may share the file
and be written in one transaction with their audit entry (:meth:`AuditLog.transaction`; the
operators' track labels, :mod:`vigil.maps.track_labels`).
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vigil.maps.live.auth import private_file

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _text(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters, control characters shown as ``?``."""
    return _CONTROL.sub("?", str(value)[:limit])


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log."""

    time: float
    user: str
    action: str
    target: str
    detail: str


class AuditLog:
    """An append-only audit table in a SQLite file (WAL mode); safe to share across threads.

    Parameters
    ----------
    path
        The SQLite file (it may be the sector's store); ``":memory:"`` for a throwaway log.
    clock
        UTC seconds since the epoch.
    """

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            private_file(Path(self.path))
        self.clock = clock
        # re-entrant: record() may run inside transaction() on the same thread
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            # another process (vigil users, vigil labels export) may hold the file a moment
            self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS audit ("
            " time REAL NOT NULL, user TEXT NOT NULL, action TEXT NOT NULL,"
            " target TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '')"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS audit_time ON audit(time)")

    def record(
        self, user: str, action: str, target: str = "", detail: str = "", *, at: float | None = None
    ) -> AuditEntry:
        """Append one entry and return it; ``at``: its time (UTC seconds; default the clock's
        now)."""
        entry = AuditEntry(
            self.clock() if at is None else float(at),
            _text(user, 64),
            _text(action, 64),
            _text(target, 200),
            _text(detail, 500),
        )
        with self._lock:
            self._db.execute(
                "INSERT INTO audit (time, user, action, target, detail) VALUES (?, ?, ?, ?, ?)",
                (entry.time, entry.user, entry.action, entry.target, entry.detail),
            )
        return entry

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The log's database in one write transaction, held by this thread: what is written
        on it (and :meth:`record` calls made meanwhile) is stored together or not at all."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def entries(
        self,
        *,
        since: float | None = None,
        user: str | None = None,
        action: str | None = None,
        limit: int = 1000,
    ) -> list[AuditEntry]:
        """Entries in time order, optionally since a time, by one user or of one action."""
        where, args = [], []
        if since is not None:
            where.append("time >= ?")
            args.append(since)
        if user is not None:
            where.append("user = ?")
            args.append(user)
        if action is not None:
            where.append("action = ?")
            args.append(action)
        sql = "SELECT time, user, action, target, detail FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY rowid DESC LIMIT ?"
        args.append(max(1, int(limit)))  # SQLite reads a negative LIMIT as no limit
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [AuditEntry(*r) for r in reversed(rows)]

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
