"""The receive journal: every message a sector service takes in, written before it is acknowledged.

An SQLite file in WAL mode. Each received message gets a row with its topic, raw payload,
receive time, a sequence number and a message key; the key is unique, so a message the broker
delivers twice (after a reconnect, or because a publisher sent it again) is recognised and
dropped. Messages that failed validation are journaled too, with their reason, so the journal
is the whole record of what arrived; only accepted ones are handed on.

A consumer (the sector service) records how far it has handled the journal with
:meth:`Journal.mark_done`; after a crash, :meth:`Journal.pending` gives back what was
journaled and acknowledged but not yet handled.

Once a consumer's state up to some message is saved elsewhere (the service's snapshots),
:meth:`Journal.prune` deletes the rows behind it, keeping the newest ones for duplicate
detection; :attr:`Journal.pruned_through` says how far the journal no longer reaches back.
A new file uses SQLite's incremental auto-vacuum, so pruning also gives the space back.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from vigil.ingest.private_files import private_file

ACCEPTED = "accepted"
QUARANTINED = "quarantined"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    received REAL NOT NULL,
    status TEXT NOT NULL,
    reason TEXT
);
CREATE TABLE IF NOT EXISTS cursors (consumer TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pruned (id INTEGER PRIMARY KEY CHECK (id = 1), through INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class JournalEntry:
    """One journaled message; ``received`` is seconds since the epoch (UTC)."""

    seq: int
    key: str
    topic: str
    payload: bytes
    received: float
    status: str
    reason: str | None


@dataclass(frozen=True)
class Arrival:
    """A message to journal: where it came from, what it was, and how it was judged."""

    key: str
    topic: str
    payload: bytes
    received: float
    status: str = ACCEPTED
    reason: str | None = None


def content_key(topic: str, payload: bytes) -> str:
    """A message key from the content, for publishers that send none (not Vigil's own)."""
    digest = hashlib.sha256(topic.encode("utf-8", "surrogateescape") + b"\x00" + payload)
    return "sha256:" + digest.hexdigest()[:40]


class Journal:
    """The SQLite journal of received messages.

    Parameters
    ----------
    path
        The SQLite file (created when missing).
    synchronous
        ``"FULL"`` (the default) makes every commit durable against a loss of power, at one
        fsync per batch; ``"NORMAL"`` is durable against a crash of the process only.
    """

    def __init__(self, path: str | Path, *, synchronous: str = "FULL") -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(
                f"synchronous = {synchronous!r}: expected one of OFF, NORMAL, FULL, EXTRA"
            )
        self.path = private_file(path)  # 0600: what the devices sent is the sector's own
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # a new file only; before WAL
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self._db.executescript(_SCHEMA)

    def append(self, arrival: Arrival) -> int | None:
        """Journal one message; return its sequence number, or ``None`` if its key is known."""
        return self.append_many([arrival])[0]

    def append_many(self, arrivals: Sequence[Arrival]) -> list[int | None]:
        """Journal messages in one transaction, in order; ``None`` marks a duplicate key."""
        out: list[int | None] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for a in arrivals:
                    cur = self._db.execute(
                        "INSERT OR IGNORE INTO messages "
                        "(key, topic, payload, received, status, reason) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (a.key, a.topic, a.payload, a.received, a.status, a.reason),
                    )
                    out.append(int(cur.lastrowid) if cur.rowcount == 1 else None)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return out

    def contains(self, key: str) -> bool:
        """Whether a message with this key was journaled."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM messages WHERE key = ?", (key,)).fetchone()
        return row is not None

    def mark_done(self, consumer: str, seq: int) -> None:
        """Record that ``consumer`` has handled every accepted message up to ``seq``."""
        with self._lock:
            self._db.execute(
                "INSERT INTO cursors (consumer, seq) VALUES (?, ?) "
                "ON CONFLICT(consumer) DO UPDATE SET seq = max(seq, excluded.seq)",
                (consumer, seq),
            )

    def done_seq(self, consumer: str) -> int:
        """The last sequence number ``consumer`` has handled (0 when none)."""
        with self._lock:
            row = self._db.execute(
                "SELECT seq FROM cursors WHERE consumer = ?", (consumer,)
            ).fetchone()
        return 0 if row is None else int(row[0])

    def pending(self, consumer: str) -> Iterator[JournalEntry]:
        """Accepted messages journaled after ``consumer``'s last handled one, in order."""
        return self.replay(after_seq=self.done_seq(consumer), status=ACCEPTED)

    def replay(
        self,
        after_seq: int = 0,
        *,
        until_seq: int | None = None,
        status: str | None = ACCEPTED,
        batch: int = 1000,
    ) -> Iterator[JournalEntry]:
        """Journaled messages with ``after_seq < seq <= until_seq`` in order, read in batches.

        ``status`` picks accepted (the default) or quarantined ones; ``None`` gives both.
        """
        last = after_seq
        while True:
            sql = (
                "SELECT seq, key, topic, payload, received, status, reason FROM messages "
                "WHERE seq > ?"
            )
            args: list[object] = [last]
            if until_seq is not None:
                sql += " AND seq <= ?"
                args.append(until_seq)
            if status is not None:
                sql += " AND status = ?"
                args.append(status)
            sql += " ORDER BY seq LIMIT ?"
            args.append(batch)
            with self._lock:
                rows = self._db.execute(sql, args).fetchall()
            if not rows:
                return
            for r in rows:
                yield JournalEntry(r[0], r[1], r[2], bytes(r[3]), r[4], r[5], r[6])
            last = rows[-1][0]

    def positions(self, after_seq: int = 0, *, status: str | None = ACCEPTED, batch: int = 5000):
        """``(seq, topic)`` of journaled messages after ``after_seq`` in order, without payloads."""
        last = after_seq
        while True:
            sql = "SELECT seq, topic FROM messages WHERE seq > ?"
            args: list[object] = [last]
            if status is not None:
                sql += " AND status = ?"
                args.append(status)
            sql += " ORDER BY seq LIMIT ?"
            args.append(batch)
            with self._lock:
                rows = self._db.execute(sql, args).fetchall()
            if not rows:
                return
            yield from rows
            last = rows[-1][0]

    def prune(self, through_seq: int, *, keep: int = 0) -> int:
        """Delete the messages with ``seq <= through_seq``, except the newest ``keep`` of the
        journal (their keys still recognise a copy the broker or a publisher sends again).

        Returns how many rows were deleted. The freed pages go back to the file system when
        the file has incremental auto-vacuum (files this class created).
        """
        if keep < 0:
            raise ValueError(f"keep = {keep!r}: expected a number of messages >= 0")
        with self._lock:
            top = self._db.execute("SELECT MAX(seq) FROM messages").fetchone()[0] or 0
            limit = min(int(through_seq), int(top) - keep)
            if limit <= 0:
                return 0
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute("DELETE FROM messages WHERE seq <= ?", (limit,))
                n = cur.rowcount
                self._db.execute(
                    "INSERT INTO pruned (id, through) VALUES (1, ?) "
                    "ON CONFLICT(id) DO UPDATE SET through = max(through, excluded.through)",
                    (limit,),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            if n:
                self._db.executescript("PRAGMA incremental_vacuum;")  # run to the end
        return int(n)

    @property
    def pruned_through(self) -> int:
        """The highest sequence number pruned away (0: the journal is whole)."""
        with self._lock:
            row = self._db.execute("SELECT through FROM pruned WHERE id = 1").fetchone()
        return 0 if row is None else int(row[0])

    def count(self, status: str | None = None) -> int:
        """How many messages are journaled (with ``status``, or all)."""
        with self._lock:
            if status is None:
                row = self._db.execute("SELECT COUNT(*) FROM messages").fetchone()
            else:
                row = self._db.execute(
                    "SELECT COUNT(*) FROM messages WHERE status = ?", (status,)
                ).fetchone()
        return int(row[0])

    @property
    def last_seq(self) -> int:
        """The highest sequence number written (0 for an empty journal), pruned or not."""
        with self._lock:
            row = self._db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'messages'"
            ).fetchone()
        return 0 if row is None else int(row[0])

    def __len__(self) -> int:
        return self.count()

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["ACCEPTED", "QUARANTINED", "Arrival", "Journal", "JournalEntry", "content_key"]
