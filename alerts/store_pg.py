"""The history store in PostgreSQL/PostGIS: tracks, crossings and alerts of one or more sectors.

The embedded default stays SQLite (:class:`vigil.tracks.store.TrackStore`,
:class:`vigil.alerts.store.EventStore`); :class:`PgHistoryStore` keeps the same rows with the
same write rules in a PostgreSQL schema (default ``vigil``), plus a PostGIS point
(``geom``, EPSG:4326, generated from ``lon``/``lat``) and a GiST index on every positioned
table, so QGIS and SQL can query the history in place.

Writes go through binary ``COPY`` into a temporary staging table, then one ``INSERT ...
SELECT ... ON CONFLICT`` that applies the SQLite stores' rules for a batch:

- ``track``: one row per track; a batch's latest state (by time, the last of ties) replaces
  the stored one when it is not older; ``first_time`` is the time of the first state written;
- ``track_state``: one row per (track, time); the last written wins;
- ``crossing``: idempotent by ``crossing_id`` (the first written wins);
- ``alert``: latest version per alert, replaced when not older (kind, priority, segment, zone
  and track keep their first values, as in SQLite); ``alert_version``: every version.

Connection strings (DSNs) come from a flag or an environment variable (:data:`DSN_ENV`);
:func:`redact` gives the form that may be printed or stored, without the password.
Identifiers (the schema) are composed with :mod:`psycopg.sql`, values are parameters.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from types import TracebackType

import msgspec
import pandas as pd
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from vigil.alerts.pg_copy import binary_copy
from vigil.ingest.jsonable import numpy_scalar
from vigil.ingest.schema import Alert, Crossing, Track

#: Environment variable holding the DSN when no flag gives one.
DSN_ENV = "VIGIL_DB"

#: The default schema the history lives in.
DEFAULT_SCHEMA = "vigil"

_TRACK_COLS = (
    "track_id", "first_time", "last_time", "state", "lat", "lon", "vx", "vy", "cov_ee",
    "cov_en", "cov_nn", "class_guess", "class_probs", "sensors", "count",
)  # fmt: skip
_TRACK_TYPES = ("text", "float8", "float8", "text", *["float8"] * 7, "text", "jsonb", "jsonb")
_TRACK_TYPES = (*_TRACK_TYPES, "int4")
_STATE_COLS = (
    "track_id", "time", "state", "lat", "lon", "vx", "vy", "cov_ee", "cov_en", "cov_nn",
    "class_guess",
)  # fmt: skip
_STATE_TYPES = ("text", "float8", "text", *["float8"] * 7, "text")
CROSSING_COLS = (
    "crossing_id", "track_id", "time", "segment_id", "direction", "lat", "lon", "confidence",
)  # fmt: skip
CROSSING_TYPES = ("text", "text", "float8", "text", "text", "float8", "float8", "float8")
_ALERT_COLS = (
    "alert_id", "time", "kind", "priority", "state", "segment_id", "zone", "lat", "lon",
    "track_id", "assigned_unit", "summary", "message",
)  # fmt: skip
_ALERT_TYPES = (
    "text", "float8", "text", "int4", "text", "text", "text", "float8", "float8", "text",
    "text", "text", "bytea",
)  # fmt: skip

_GEOM = "geom geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED"  # noqa: E501

# dropped before a bulk load into an empty crossing table, and made again after it
_CROSSING_DROP = [
    "ALTER TABLE {s}.crossing DROP CONSTRAINT IF EXISTS crossing_pkey",
    "DROP INDEX IF EXISTS {s}.crossing_time",
    "DROP INDEX IF EXISTS {s}.crossing_geom",
]

_CROSSING_INDEXES = [
    "ALTER TABLE {s}.crossing ADD CONSTRAINT crossing_pkey PRIMARY KEY (crossing_id)",
    "CREATE INDEX IF NOT EXISTS crossing_time ON {s}.crossing (time)",
    "CREATE INDEX IF NOT EXISTS crossing_geom ON {s}.crossing USING gist (geom)",
]

_SCHEMA = [
    "CREATE EXTENSION IF NOT EXISTS postgis",
    "CREATE SCHEMA IF NOT EXISTS {s}",
    "CREATE TABLE IF NOT EXISTS {s}.track (track_id text PRIMARY KEY, first_time float8 NOT NULL,"
    " last_time float8 NOT NULL, state text NOT NULL, lat float8 NOT NULL, lon float8 NOT NULL,"
    " vx float8 NOT NULL, vy float8 NOT NULL, cov_ee float8 NOT NULL, cov_en float8 NOT NULL,"
    " cov_nn float8 NOT NULL, class_guess text NOT NULL, class_probs jsonb NOT NULL,"
    " sensors jsonb NOT NULL, count int4 NOT NULL, " + _GEOM + ")",
    "CREATE TABLE IF NOT EXISTS {s}.track_state (track_id text NOT NULL, time float8 NOT NULL,"
    " state text NOT NULL, lat float8 NOT NULL, lon float8 NOT NULL, vx float8 NOT NULL,"
    " vy float8 NOT NULL, cov_ee float8 NOT NULL, cov_en float8 NOT NULL, cov_nn float8 NOT NULL,"
    " class_guess text NOT NULL, " + _GEOM + ", PRIMARY KEY (track_id, time))",
    "CREATE INDEX IF NOT EXISTS track_state_time ON {s}.track_state (time)",
    "CREATE TABLE IF NOT EXISTS {s}.crossing (crossing_id text,"
    " CONSTRAINT crossing_pkey PRIMARY KEY (crossing_id), track_id text NOT NULL,"
    " time float8 NOT NULL, segment_id text NOT NULL, direction text NOT NULL,"
    " lat float8 NOT NULL, lon float8 NOT NULL, confidence float8 NOT NULL, " + _GEOM + ")",
    *_CROSSING_INDEXES[1:],
    "CREATE TABLE IF NOT EXISTS {s}.alert (alert_id text PRIMARY KEY, time float8 NOT NULL,"
    " kind text NOT NULL, priority int4 NOT NULL, state text NOT NULL, segment_id text,"
    " zone text, lat float8 NOT NULL, lon float8 NOT NULL, track_id text, assigned_unit text,"
    " summary text NOT NULL, message bytea NOT NULL, " + _GEOM + ")",
    "CREATE TABLE IF NOT EXISTS {s}.alert_version (alert_id text NOT NULL, time float8 NOT NULL,"
    " state text NOT NULL, message bytea NOT NULL, seq bigserial)",
    "CREATE INDEX IF NOT EXISTS alert_version_id ON {s}.alert_version (alert_id, time)",
]


def redact(dsn: str) -> str:
    """The DSN without its password, safe to print, log or store.

    Examples
    --------
    >>> redact("postgresql://ops:s3cret@db.example:5432/vigil")
    'postgresql://ops:***@db.example:5432/vigil'
    >>> redact("host=db user=ops password=s3cret dbname=vigil")
    'host=db user=ops password=*** dbname=vigil'
    """
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable connection string>"
    password = params.get("password")
    if not password:
        return dsn
    if "://" in dsn:
        head, _, rest = dsn.partition("://")
        auth, at, tail = rest.rpartition("@")
        if at and ":" in auth:
            return f"{head}://{auth.split(':', 1)[0]}:***@{tail}"
        return make_conninfo(**{**params, "password": "***"})
    return make_conninfo(**{**params, "password": "***"})


def scrub(text: str, dsn: str) -> str:
    """``text`` (an error message) with the DSN's password, if any, replaced by ``***``."""
    try:
        password = conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:
        return text.replace(dsn, "<connection string>")
    return text.replace(str(password), "***") if password else text


def dsn_from(flag: str | None) -> str | None:
    """The DSN given by a flag, else by the environment variable :data:`DSN_ENV`, else None."""
    return flag or os.environ.get(DSN_ENV) or None


def is_dsn(text: str) -> bool:
    """Whether ``text`` is a PostgreSQL URI (``postgresql://`` or ``postgres://``)."""
    return text.startswith(("postgresql://", "postgres://"))


def connect(dsn: str, **kwargs: object) -> psycopg.Connection:
    """Connect; an error message never carries the password (:class:`ConnectionError`)."""
    try:
        return psycopg.connect(dsn, **kwargs)
    except psycopg.Error as exc:
        raise ConnectionError(f"{redact(dsn)}: {scrub(str(exc), dsn)}") from None


class PgHistoryStore:
    """Tracks, crossings and alerts in PostgreSQL/PostGIS (schema ``schema``).

    Parameters
    ----------
    dsn
        Connection string (never logged; see :func:`redact`).
    schema
        Schema holding the tables; created, with the PostGIS extension, when missing.
    """

    def __init__(self, dsn: str, schema: str = DEFAULT_SCHEMA) -> None:
        self.name = redact(dsn)
        self.schema = schema
        self._s = sql.Identifier(schema)
        self._db = connect(dsn)
        with self._db.transaction():
            for stmt in _SCHEMA:
                self._db.execute(sql.SQL(stmt).format(s=self._s))
        self._enc = msgspec.json.Encoder(enc_hook=numpy_scalar)
        self._dec = msgspec.json.Decoder(Alert)

    @property
    def connection(self) -> psycopg.Connection:
        """The open connection (for reads such as :mod:`vigil.maps.report_db`)."""
        return self._db

    def _stage(
        self,
        cur: psycopg.Cursor,
        cols: Sequence[str],
        types: Sequence[str],
        rows: Iterable,
        *,
        chunks: Iterable[tuple[int, bytes]] | None = None,
    ) -> int:
        """Binary COPY ``rows`` (or ready ``(rows, bytes)`` chunks of the binary format) into a
        fresh temporary table ``stage`` (with an order column)."""
        cur.execute("DROP TABLE IF EXISTS pg_temp.stage")
        cur.execute(
            sql.SQL("CREATE TEMP TABLE stage ({}, ord bigserial) ON COMMIT DROP").format(
                sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t))
                    for c, t in zip(cols, types, strict=True)
                )
            )
        )
        n = 0
        copy_sql = sql.SQL("COPY pg_temp.stage ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.SQL(", ").join(map(sql.Identifier, cols))
        )
        with cur.copy(copy_sql) as cp:
            if chunks is not None:
                for k, data in chunks:
                    cp.write(data)
                    n += k
                return n
            cp.set_types(list(types))
            for r in rows:
                cp.write_row(r)
                n += 1
        return n

    def _cols(self, cols: Sequence[str]) -> sql.Composable:
        return sql.SQL(", ").join(map(sql.Identifier, cols))

    def _excluded(self, cols: Sequence[str]) -> sql.Composable:
        return sql.SQL(", ").join(sql.SQL("excluded.{}").format(sql.Identifier(c)) for c in cols)

    def write(self, tracks: Iterable[Track]) -> int:
        """Record track states (latest row upserted, history appended); returns how many."""
        rows = []
        for t in tracks:
            ee, en, _, nn = t.cov
            rows.append((t, ee, en, nn))
        cols = _TRACK_COLS
        up = [c for c in cols if c not in ("track_id", "first_time")]
        with self._db.transaction(), self._db.cursor() as cur:
            n = self._stage(
                cur, cols, _TRACK_TYPES,
                (
                    (
                        t.track_id, t.time, t.time, t.state, t.lat, t.lon, t.vx, t.vy, ee, en,
                        nn, t.class_guess, psycopg.types.json.Jsonb(t.class_probs),
                        psycopg.types.json.Jsonb(sorted(t.sensors)), t.count,
                    )
                    for t, ee, en, nn in rows
                ),
            )  # fmt: skip
            if not n:
                return 0
            cur.execute(
                sql.SQL(
                    "INSERT INTO {s}.track ({cols}) SELECT {sel} FROM (SELECT DISTINCT ON "
                    "(track_id) *, first_value(first_time) OVER (PARTITION BY track_id ORDER BY "
                    "ord) AS first_t FROM pg_temp.stage ORDER BY track_id, last_time DESC, "
                    "ord DESC) b ON CONFLICT (track_id) DO UPDATE SET ({up}) = ({exc}) "
                    "WHERE excluded.last_time >= {s}.track.last_time"
                ).format(
                    s=self._s,
                    cols=self._cols(cols),
                    sel=self._cols(["track_id", "first_t", *cols[2:]]),
                    up=self._cols(up),
                    exc=self._excluded(up),
                )
            )  # fmt: skip
            scols = _STATE_COLS
            sel = ["track_id", "last_time", *scols[2:]]
            cur.execute(
                sql.SQL(
                    "INSERT INTO {s}.track_state ({cols}) SELECT {sel} FROM (SELECT DISTINCT ON "
                    "(track_id, last_time) {sel} FROM pg_temp.stage ORDER BY track_id, "
                    "last_time, ord DESC) b ON CONFLICT (track_id, time) DO UPDATE SET ({up}) = "
                    "({exc})"
                ).format(
                    s=self._s,
                    cols=self._cols(scols),
                    sel=self._cols(sel),
                    up=self._cols(scols[2:]),
                    exc=self._excluded(scols[2:]),
                )
            )
        return n

    def latest(self, state: str | None = None) -> list[Track]:
        """Each track's latest state, optionally only those in ``state``; by track id."""
        q = sql.SQL(
            "SELECT track_id, last_time, state, lat, lon, vx, vy, cov_ee, cov_en, cov_nn, "
            "class_guess, class_probs, sensors, count FROM {s}.track"
        ).format(s=self._s)
        args: tuple = ()
        if state is not None:
            q += sql.SQL(" WHERE state = %s")
            args = (state,)
        return [
            Track(
                track_id=r[0], time=r[1], state=r[2], lat=r[3], lon=r[4], vx=r[5], vy=r[6],
                cov=(r[7], r[8], r[8], r[9]), class_guess=r[10], class_probs=r[11],
                sensors=r[12], count=r[13],
            )
            for r in self._db.execute(q + sql.SQL(" ORDER BY track_id"), args)
        ]  # fmt: skip

    def history(self, track_id: str) -> list[Track]:
        """Every stored state of one track, oldest first."""
        q = sql.SQL(
            "SELECT time, state, lat, lon, vx, vy, cov_ee, cov_en, cov_nn, class_guess "
            "FROM {s}.track_state WHERE track_id = %s ORDER BY time"
        ).format(s=self._s)
        return [
            Track(
                track_id=track_id, time=r[0], state=r[1], lat=r[2], lon=r[3], vx=r[4],
                vy=r[5], cov=(r[6], r[7], r[7], r[8]), class_guess=r[9],
            )
            for r in self._db.execute(q, (track_id,))
        ]  # fmt: skip

    def write_crossing_rows(self, rows: Iterable[Sequence]) -> int:
        """Record crossings given as rows in :data:`CROSSING_COLS` order (bulk loads)."""
        with self._db.transaction(), self._db.cursor() as cur:
            n = self._stage(cur, CROSSING_COLS, CROSSING_TYPES, rows)
            cur.execute(
                sql.SQL(
                    "INSERT INTO {s}.crossing ({cols}) SELECT {cols} FROM pg_temp.stage "
                    "ORDER BY ord ON CONFLICT (crossing_id) DO NOTHING"
                ).format(s=self._s, cols=self._cols(CROSSING_COLS))
            )
        return n

    def write_crossings_frame(self, table: pd.DataFrame, *, chunk_rows: int = 500_000) -> int:
        """Record a crossing table (columns :data:`CROSSING_COLS`) through whole-column binary
        COPY (:mod:`vigil.alerts.pg_copy`), ``chunk_rows`` rows at a time; same rules as
        :meth:`write_crossings` (the first of a crossing id wins). For bulk loads of millions
        of rows: into an empty table the rows are copied straight in with the indexes built
        after the load (PostgreSQL's advice for populating a database), else through the
        staging table. Returns how many rows were given."""
        missing = [c for c in CROSSING_COLS if c not in table.columns]
        if missing:
            raise ValueError(f"crossing table lacks {missing}; has {list(table.columns)}")
        given = len(table)
        q = sql.SQL("SELECT EXISTS (SELECT 1 FROM {s}.crossing)").format(s=self._s)
        empty = not self._db.execute(q).fetchone()[0]
        self._db.commit()
        if empty:
            table = table.drop_duplicates("crossing_id", keep="first")
        cols = [table[c].to_numpy() for c in CROSSING_COLS]
        n = len(table)
        bounds = list(range(0, n, chunk_rows)) or [0]

        def chunks() -> Iterable[tuple[int, bytes]]:
            for i, lo in enumerate(bounds):
                hi = min(lo + chunk_rows, n)
                part = [c[lo:hi] for c in cols]
                data = binary_copy(
                    part, CROSSING_TYPES, header=i == 0, trailer=i == len(bounds) - 1
                )
                yield hi - lo, data

        with self._db.transaction(), self._db.cursor() as cur:
            if not empty:
                self._stage(cur, CROSSING_COLS, CROSSING_TYPES, (), chunks=chunks())
                cur.execute(
                    sql.SQL(
                        "INSERT INTO {s}.crossing ({cols}) SELECT {cols} FROM pg_temp.stage "
                        "ORDER BY ord ON CONFLICT (crossing_id) DO NOTHING"
                    ).format(s=self._s, cols=self._cols(CROSSING_COLS))
                )
                return given
            for stmt in _CROSSING_DROP:
                cur.execute(sql.SQL(stmt).format(s=self._s))
            copy_sql = sql.SQL("COPY {s}.crossing ({cols}) FROM STDIN (FORMAT BINARY)")
            with cur.copy(copy_sql.format(s=self._s, cols=self._cols(CROSSING_COLS))) as cp:
                for _, data in chunks():
                    cp.write(data)
            for stmt in _CROSSING_INDEXES:
                cur.execute(sql.SQL(stmt).format(s=self._s))
        return given

    def write_crossings(self, crossings: Iterable[Crossing]) -> int:
        """Record crossings (idempotent by id); returns how many were given."""
        return self.write_crossing_rows(
            (c.crossing_id, c.track_id, c.time, c.segment_id, c.direction, c.lat, c.lon,
             c.confidence)
            for c in crossings
        )  # fmt: skip

    def write_alerts(self, alerts: Iterable[Alert], *, skip_stored_versions: bool = False) -> int:
        """Record alert versions and upsert each alert's latest state.

        With ``skip_stored_versions`` a version already stored byte for byte (same alert,
        time, state and message) is not recorded again: the mirror of a restarted service
        sees the journal's tail replayed and must not double the alert's history.
        """
        enc = self._enc.encode
        up = ["time", "state", "lat", "lon", "assigned_unit", "summary", "message"]
        with self._db.transaction(), self._db.cursor() as cur:
            n = self._stage(
                cur, _ALERT_COLS, _ALERT_TYPES,
                (
                    (
                        a.alert_id, a.time, a.kind, a.priority, a.state, a.segment_id, a.zone,
                        a.lat, a.lon, a.track_id, a.assigned_unit, _text(a.summary), enc(a),
                    )
                    for a in alerts
                ),
            )  # fmt: skip
            if not n:
                return 0
            cur.execute(
                sql.SQL(
                    "INSERT INTO {s}.alert ({cols}) SELECT {cols} FROM (SELECT DISTINCT ON "
                    "(alert_id) * FROM pg_temp.stage ORDER BY alert_id, time DESC, ord DESC) b "
                    "ON CONFLICT (alert_id) DO UPDATE SET ({up}) = ({exc}) "
                    "WHERE excluded.time >= {s}.alert.time"
                ).format(
                    s=self._s,
                    cols=self._cols(_ALERT_COLS),
                    up=self._cols(up),
                    exc=self._excluded(up),
                )
            )  # fmt: skip
            cur.execute(
                sql.SQL(
                    "INSERT INTO {s}.alert_version (alert_id, time, state, message) "
                    "SELECT st.alert_id, st.time, st.state, st.message FROM pg_temp.stage st"
                    + (
                        " WHERE NOT EXISTS (SELECT 1 FROM {s}.alert_version v WHERE "
                        "v.alert_id = st.alert_id AND v.time = st.time AND "
                        "v.state = st.state AND v.message = st.message)"
                        if skip_stored_versions
                        else ""
                    )
                    + " ORDER BY st.ord"
                ).format(s=self._s)
            )
        return n

    def alerts(self, state: str | None = None) -> list[Alert]:
        """Latest version of every alert (optionally in one state), oldest first."""
        q = sql.SQL("SELECT message FROM {s}.alert").format(s=self._s)
        args: tuple = ()
        if state:
            q += sql.SQL(" WHERE state = %s")
            args = (state,)
        rows = self._db.execute(q + sql.SQL(" ORDER BY time, alert_id"), args)
        return [self._dec.decode(bytes(r[0])) for r in rows]

    def alert_versions(self, alert_id: str) -> list[Alert]:
        """Every stored version of one alert, in the order written."""
        q = sql.SQL("SELECT message FROM {s}.alert_version WHERE alert_id = %s ORDER BY seq")
        rows = self._db.execute(q.format(s=self._s), (alert_id,))
        return [self._dec.decode(bytes(r[0])) for r in rows]

    def crossings(self) -> list[Crossing]:
        """Every crossing, in time order (ties by id)."""
        q = sql.SQL(
            "SELECT crossing_id, track_id, time, segment_id, direction, lat, lon, confidence "
            "FROM {s}.crossing ORDER BY time, crossing_id"
        ).format(s=self._s)
        return [
            Crossing(
                crossing_id=r[0], track_id=r[1], time=r[2], segment_id=r[3], direction=r[4],
                lat=r[5], lon=r[6], confidence=r[7],
            )
            for r in self._db.execute(q)
        ]  # fmt: skip

    def count(self, table: str) -> int:
        """Rows in one of the store's tables (``track``, ``crossing``, ``alert``, ...)."""
        q = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(self.schema, table))
        return int(self._db.execute(q).fetchone()[0])

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def __enter__(self) -> PgHistoryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _text(value: str) -> str:
    """Free text for a ``text`` column: PostgreSQL cannot hold NUL, which becomes U+FFFD (the
    alert's full message, in ``message``, keeps it as written)."""
    return value.replace("\x00", "\ufffd")
