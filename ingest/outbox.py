"""An on-disk outbox: every message a publisher hands over is kept until the broker acknowledges it.

The outbox is an SQLite file in WAL mode. :meth:`Outbox.put` commits before it returns, so a
message survives the publisher's own crash; :meth:`Outbox.mark_acked` records the broker's
PUBACK. Acknowledged messages stay for a *replay window* because a broker killed before its
next autosave forgets messages it had already acknowledged: after a reconnect the publisher
sends again, in order, everything unacknowledged plus everything acknowledged within the
window, and the receiver drops the copies by their message key (see :mod:`ingest.journal`).

Each outbox has a random *epoch* stored in the file, so message keys
(``{client}/{epoch}/{seq}``) never repeat even if the file is deleted and sequence numbers
start again.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vigil.ingest.private_files import private_file

#: Acknowledgements held before they are written in one transaction (see
#: :meth:`Outbox.mark_acked`).
ACKS_HELD = 256

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created REAL NOT NULL,
    acked REAL
);
CREATE INDEX IF NOT EXISTS outbox_acked ON outbox(acked);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
"""


@dataclass(frozen=True)
class OutboxEntry:
    """One message waiting in the outbox; ``acked`` is the PUBACK time or ``None``."""

    seq: int
    topic: str
    payload: bytes
    created: float
    acked: float | None


class Outbox:
    """Ordered, durable queue of outgoing messages.

    Parameters
    ----------
    path
        The SQLite file; ``None`` keeps the outbox in memory (retries within the process only).
    synchronous
        SQLite's ``synchronous`` setting: ``"NORMAL"`` survives a crash of the process,
        ``"FULL"`` also a loss of power, at an fsync per message.
    """

    def __init__(self, path: str | Path | None, *, synchronous: str = "NORMAL") -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(
                f"synchronous = {synchronous!r}: expected one of OFF, NORMAL, FULL, EXTRA"
            )
        self.path = None if path is None else private_file(path)  # 0600
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            ":memory:" if path is None else str(path),
            check_same_thread=False,
            isolation_level=None,
        )
        if path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT v FROM meta WHERE k = 'epoch'").fetchone()
        if row is None:
            epoch = uuid.uuid4().hex[:12]
            self._db.execute("INSERT INTO meta (k, v) VALUES ('epoch', ?)", (epoch,))
        else:
            epoch = row[0]
        self.epoch: str = epoch
        #: Acknowledgements not yet written, ``(time, seq)`` (see :meth:`mark_acked`).
        self._acks: list[tuple[float, int]] = []

    def put(self, topic: str, payload: bytes, now: float) -> int:
        """Store a message; return its sequence number once it is committed."""
        return self.put_many([(topic, payload)], now)[0]

    def put_many(self, messages: Sequence[tuple[str, bytes]], now: float) -> list[int]:
        """Store ``(topic, payload)`` messages in one transaction (one commit for all, and
        for the acknowledgements waiting to be written); return their sequence numbers, in
        order, once it is committed. All or none are stored."""
        with self._lock:
            with self._transaction() as db:
                seqs = [
                    int(
                        db.execute(
                            "INSERT INTO outbox (topic, payload, created) VALUES (?, ?, ?)",
                            (topic, payload, now),
                        ).lastrowid
                    )
                    for topic, payload in messages
                ]
                self._write_acks()
            self._acks.clear()
            return seqs

    def mark_acked(self, seq: int, now: float) -> None:
        """Record the broker's acknowledgement of message ``seq`` at ``now`` (seconds).

        A resent message's new acknowledgement replaces the old one: it is the new broker
        instance's acknowledgement that the replay window has to outlast.

        The record is written with the next :meth:`put_many`'s transaction, by
        :meth:`commit_acks`, by any reading method, or once :data:`ACKS_HELD` wait (one
        commit for many acknowledgements); a crash before that loses the record only, and
        the message is sent again (the replay window resends recent acknowledged messages
        after a restart anyway; receivers drop copies by message key).
        """
        with self._lock:
            self._acks.append((now, seq))
            if len(self._acks) >= ACKS_HELD:
                self._commit_acks()

    def commit_acks(self) -> None:
        """Write the acknowledgements :meth:`mark_acked` holds, in one transaction."""
        with self._lock:
            self._commit_acks()

    def _commit_acks(self) -> None:
        if not self._acks:
            return
        with self._transaction():
            self._write_acks()
        self._acks.clear()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One explicit transaction on the outbox's connection: committed when the block
        ends, rolled back (and the error raised again) when it fails."""
        db = self._db
        db.execute("BEGIN")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _write_acks(self) -> None:
        if self._acks:
            self._db.executemany("UPDATE outbox SET acked = ? WHERE seq = ?", self._acks)

    def remove(self, seq: int) -> None:
        """Drop message ``seq`` (the broker refused it; the caller counts and reports that)."""
        with self._lock:
            self._commit_acks()
            self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    def to_send(self, after_seq: int, acked_since: float, limit: int = 500) -> list[OutboxEntry]:
        """Messages after ``after_seq`` that are unacknowledged or acknowledged at or after
        ``acked_since`` (seconds), in sequence order, at most ``limit``."""
        with self._lock:
            self._commit_acks()
            rows = self._db.execute(
                "SELECT seq, topic, payload, created, acked FROM outbox "
                "WHERE seq > ? AND (acked IS NULL OR acked >= ?) ORDER BY seq LIMIT ?",
                (after_seq, acked_since, limit),
            ).fetchall()
        return [OutboxEntry(r[0], r[1], bytes(r[2]), r[3], r[4]) for r in rows]

    def prune(self, acked_before: float) -> int:
        """Delete messages acknowledged before ``acked_before`` (seconds); return how many."""
        with self._lock:
            self._commit_acks()
            cur = self._db.execute(
                "DELETE FROM outbox WHERE acked IS NOT NULL AND acked < ?", (acked_before,)
            )
            return cur.rowcount

    def last_acked(self) -> float | None:
        """The latest acknowledgement time recorded (seconds), ``None`` when none is held."""
        with self._lock:
            self._commit_acks()
            row = self._db.execute("SELECT MAX(acked) FROM outbox").fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def unacked(self) -> int:
        """How many messages wait for the broker's acknowledgement."""
        with self._lock:
            self._commit_acks()
            return int(
                self._db.execute("SELECT COUNT(*) FROM outbox WHERE acked IS NULL").fetchone()[0]
            )

    def last_seq(self) -> int:
        """The highest sequence number ever given (0 for a new outbox).

        Pruning does not lower it (the sequence is AUTOINCREMENT), so it counts every message
        the outbox has taken: a publisher that replays its own history after a crash skips
        that many.
        """
        with self._lock:
            row = self._db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'outbox'"
            ).fetchone()
        return 0 if row is None else int(row[0])

    def __len__(self) -> int:
        with self._lock:
            self._commit_acks()
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def close(self) -> None:
        """Close the file (messages in it stay for the next publisher with the same path)."""
        with self._lock:
            self._commit_acks()
            self._db.close()


__all__ = ["Outbox", "OutboxEntry"]
