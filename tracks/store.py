"""The track store: each track's latest state and its history, in SQLite (WAL mode).

Two tables: ``track`` holds one row per track (its latest state, first and last time, class,
contributing sensors), ``track_state`` one row per written state (the history). Positions
are WGS84 degrees as on the wire; covariances m^2; times UTC seconds since the epoch.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from vigil.ingest.schema import Track

_SCHEMA = """
CREATE TABLE IF NOT EXISTS track (
    track_id    TEXT PRIMARY KEY,
    first_time  REAL NOT NULL,
    last_time   REAL NOT NULL,
    state       TEXT NOT NULL,
    lat         REAL NOT NULL,
    lon         REAL NOT NULL,
    vx          REAL NOT NULL,
    vy          REAL NOT NULL,
    cov_ee      REAL NOT NULL,
    cov_en      REAL NOT NULL,
    cov_nn      REAL NOT NULL,
    class_guess TEXT NOT NULL,
    class_probs TEXT NOT NULL,
    sensors     TEXT NOT NULL,
    count       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS track_state (
    track_id    TEXT NOT NULL,
    time        REAL NOT NULL,
    state       TEXT NOT NULL,
    lat         REAL NOT NULL,
    lon         REAL NOT NULL,
    vx          REAL NOT NULL,
    vy          REAL NOT NULL,
    cov_ee      REAL NOT NULL,
    cov_en      REAL NOT NULL,
    cov_nn      REAL NOT NULL,
    class_guess TEXT NOT NULL,
    PRIMARY KEY (track_id, time)
);
CREATE INDEX IF NOT EXISTS track_state_time ON track_state (time);
"""


class TrackStore:
    """Track states and history in one SQLite file.

    Parameters
    ----------
    path
        The database file (created when missing), or ``":memory:"``.

    Examples
    --------
    >>> store = TrackStore(":memory:")
    >>> store.write([Track(track_id="T1", time=1.7e9, lat=31.3, lon=-110.9, vx=1.0, vy=0.0,
    ...                    cov=(25.0, 0.0, 0.0, 25.0), state="confirmed")])
    1
    >>> [t.track_id for t in store.latest()]
    ['T1']
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path)
        if self.path != ":memory:":
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(
                    f"{self.path}: journal_mode is {mode!r}; expected 'wal'"
                )
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def write(self, tracks: Iterable[Track]) -> int:
        """Record track states (latest row upserted, history appended); returns how many."""
        rows = []
        for t in tracks:
            ee, en, _, nn = t.cov
            rows.append((t, ee, en, nn))
        with self._db:
            self._db.executemany(
                "INSERT INTO track VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(track_id) DO UPDATE SET last_time=excluded.last_time, "
                "state=excluded.state, lat=excluded.lat, lon=excluded.lon, vx=excluded.vx, "
                "vy=excluded.vy, cov_ee=excluded.cov_ee, cov_en=excluded.cov_en, "
                "cov_nn=excluded.cov_nn, class_guess=excluded.class_guess, "
                "class_probs=excluded.class_probs, sensors=excluded.sensors, "
                "count=excluded.count WHERE excluded.last_time >= track.last_time",
                [
                    (
                        t.track_id,
                        t.time,
                        t.time,
                        t.state,
                        t.lat,
                        t.lon,
                        t.vx,
                        t.vy,
                        ee,
                        en,
                        nn,
                        t.class_guess,
                        json.dumps(t.class_probs, sort_keys=True),
                        json.dumps(sorted(t.sensors)),
                        t.count,
                    )
                    for t, ee, en, nn in rows
                ],
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO track_state VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        t.track_id,
                        t.time,
                        t.state,
                        t.lat,
                        t.lon,
                        t.vx,
                        t.vy,
                        ee,
                        en,
                        nn,
                        t.class_guess,
                    )
                    for t, ee, en, nn in rows
                ],
            )
        return len(rows)

    def latest(self, state: str | None = None) -> list[Track]:
        """Each track's latest state, optionally only those in ``state``; by track id."""
        sql = (
            "SELECT track_id, last_time, state, lat, lon, vx, vy, cov_ee, cov_en, cov_nn, "
            "class_guess, class_probs, sensors, count FROM track"
        )
        args: tuple = ()
        if state is not None:
            sql += " WHERE state = ?"
            args = (state,)
        out = []
        for r in self._db.execute(sql + " ORDER BY track_id", args):
            out.append(
                Track(
                    track_id=r[0],
                    time=r[1],
                    state=r[2],
                    lat=r[3],
                    lon=r[4],
                    vx=r[5],
                    vy=r[6],
                    cov=(r[7], r[8], r[8], r[9]),
                    class_guess=r[10],
                    class_probs=json.loads(r[11]),
                    sensors=json.loads(r[12]),
                    count=r[13],
                )
            )
        return out

    def history(self, track_id: str) -> list[Track]:
        """Every stored state of one track, oldest first."""
        out = []
        for r in self._db.execute(
            "SELECT time, state, lat, lon, vx, vy, cov_ee, cov_en, cov_nn, class_guess "
            "FROM track_state WHERE track_id = ? ORDER BY time",
            (track_id,),
        ):
            out.append(
                Track(
                    track_id=track_id,
                    time=r[0],
                    state=r[1],
                    lat=r[2],
                    lon=r[3],
                    vx=r[4],
                    vy=r[5],
                    cov=(r[6], r[7], r[7], r[8]),
                    class_guess=r[9],
                )
            )
        return out

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> TrackStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
