"""The event store: crossings and alerts (with their history) in SQLite, WAL mode."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

import msgspec

from vigil.ingest.jsonable import numpy_scalar
from vigil.ingest.schema import Alert, Crossing

_SCHEMA = """
CREATE TABLE IF NOT EXISTS crossing (
    crossing_id TEXT PRIMARY KEY, track_id TEXT NOT NULL, time REAL NOT NULL,
    segment_id TEXT NOT NULL, direction TEXT NOT NULL, lat REAL NOT NULL, lon REAL NOT NULL,
    confidence REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS crossing_time ON crossing(time);
CREATE TABLE IF NOT EXISTS alert (
    alert_id TEXT PRIMARY KEY, time REAL NOT NULL, kind TEXT NOT NULL, priority INTEGER NOT NULL,
    state TEXT NOT NULL, segment_id TEXT, zone TEXT, lat REAL NOT NULL, lon REAL NOT NULL,
    track_id TEXT, assigned_unit TEXT, summary TEXT NOT NULL, message BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_version (
    alert_id TEXT NOT NULL, time REAL NOT NULL, state TEXT NOT NULL, message BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_version_id ON alert_version(alert_id, time);
"""


class EventStore:
    """Crossings and alerts of a sector; every alert version is kept, the latest is indexed."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._enc = msgspec.json.Encoder(enc_hook=numpy_scalar)
        self._dec = msgspec.json.Decoder(Alert)

    def write_crossings(self, crossings: Iterable[Crossing]) -> int:
        """Record crossings (idempotent by id); returns how many were given."""
        rows = [
            (
                c.crossing_id,
                c.track_id,
                c.time,
                c.segment_id,
                c.direction,
                c.lat,
                c.lon,
                c.confidence,
            )
            for c in crossings
        ]
        with self._db:
            self._db.executemany("INSERT OR IGNORE INTO crossing VALUES (?,?,?,?,?,?,?,?)", rows)
        return len(rows)

    def write_alerts(self, alerts: Iterable[Alert]) -> int:
        """Record alert versions and upsert each alert's latest state."""
        n = 0
        with self._db:
            for a in alerts:
                blob = self._enc.encode(a)
                self._db.execute(
                    "INSERT INTO alert VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(alert_id) DO "
                    "UPDATE SET time=excluded.time, state=excluded.state, lat=excluded.lat, "
                    "lon=excluded.lon, assigned_unit=excluded.assigned_unit, "
                    "summary=excluded.summary, message=excluded.message "
                    "WHERE excluded.time >= alert.time",
                    (
                        a.alert_id, a.time, a.kind, a.priority, a.state, a.segment_id, a.zone,
                        a.lat, a.lon, a.track_id, a.assigned_unit, a.summary, blob,
                    ),
                )  # fmt: skip
                self._db.execute(
                    "INSERT INTO alert_version VALUES (?,?,?,?)",
                    (a.alert_id, a.time, a.state, blob),
                )
                n += 1
        return n

    def alerts(self, state: str | None = None) -> list[Alert]:
        """Latest version of every alert (optionally in one state), oldest first."""
        sql = "SELECT message FROM alert" + (" WHERE state = ?" if state else "") + " ORDER BY time"
        return [self._dec.decode(r[0]) for r in self._db.execute(sql, (state,) if state else ())]

    def crossings(self) -> list[Crossing]:
        """Every crossing, in time order."""
        rows = self._db.execute(
            "SELECT crossing_id, track_id, time, segment_id, direction, lat, lon, confidence "
            "FROM crossing ORDER BY time"
        )
        return [
            Crossing(
                crossing_id=r[0], track_id=r[1], time=r[2], segment_id=r[3], direction=r[4],
                lat=r[5], lon=r[6], confidence=r[7],
            )
            for r in rows
        ]  # fmt: skip

    def close(self) -> None:
        """Close the database."""
        self._db.close()
