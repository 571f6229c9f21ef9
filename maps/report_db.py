"""The analyses' counts, computed in PostgreSQL: ``vigil analyze --db`` reads no crossing rows.

:func:`aggregate_crossings_db` returns the same :class:`~vigil.geo.patterns.aggregate.
CrossingAggregates` as :func:`~vigil.geo.patterns.aggregate.aggregate_crossings` does over the
same crossings in memory, but the database does the counting: ``GROUP BY segment_id,
direction, UTC hour`` (15 minutes for zones with half- and quarter-hour offsets), and each
bin's local day, hour and weekday are looked up once, in the sector's IANA zone; where a bin
would straddle a change of offset, one ``GROUP BY GROUPING SETS`` over PostgreSQL's ``AT TIME
ZONE`` does it row by row. Only counts cross the wire. H3 cells have no PostgreSQL function
here (no h3-pg in Debian 12): positions are streamed through a server-side cursor in bounded
chunks and counted per chunk, so memory stays at one chunk whatever the history's size.

The schema is an identifier composed with :mod:`psycopg.sql`; the zone is a parameter.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from vigil.alerts.store_pg import DEFAULT_SCHEMA
from vigil.geo.patterns.aggregate import (
    CELL,
    COUNT,
    DATE,
    HOUR,
    WEEKDAY,
    CrossingAggregates,
    _tidy,
    h3_cells,
)
from vigil.geo.patterns.io import DIRECTION, SEGMENT_ID

#: Positions fetched per round trip when counting H3 cells.
CELL_CHUNK_ROWS = 500_000

_GROUPS = sql.SQL(
    "SELECT segment_id, date_trunc('day', lt) AS d, extract(hour FROM lt)::int AS h, "
    "extract(isodow FROM lt)::int - 1 AS w, direction, count(*) AS n, "
    "GROUPING(date_trunc('day', lt), extract(hour FROM lt)::int, "
    "extract(isodow FROM lt)::int - 1, direction) AS g "
    "FROM (SELECT segment_id, direction, to_timestamp(time) AT TIME ZONE %(tz)s AS lt "
    "FROM {t}) k GROUP BY GROUPING SETS ((segment_id, date_trunc('day', lt)), "
    "(segment_id, extract(hour FROM lt)::int), (segment_id, extract(isodow FROM lt)::int - 1), "
    "(segment_id, direction))"
)

# GROUPING() bit masks (d, h, w, direction: 8, 4, 2, 1; a set bit = not grouped by it)
_BY_DAY, _BY_HOUR, _BY_WEEKDAY, _BY_DIRECTION = 0b0111, 0b1011, 0b1101, 0b1110


def _table(schema: str) -> sql.Composable:
    return sql.Identifier(schema, "crossing")


def aggregate_crossings_db(
    conn: psycopg.Connection,
    *,
    schema: str = DEFAULT_SCHEMA,
    timezone: str = "UTC",
    h3_resolution: int | None = 8,
) -> CrossingAggregates:
    """Count the stored crossings per segment and local day, hour, weekday, direction, cell.

    Parameters
    ----------
    conn
        An open connection to the history database.
    schema
        The schema of :class:`~vigil.alerts.store_pg.PgHistoryStore`'s tables.
    timezone
        IANA time zone for the local keys (as PostgreSQL's ``AT TIME ZONE`` knows it).
    h3_resolution
        Resolution of the H3 cells crossing positions are counted in (None: skip).
    """
    t = _table(schema)
    n, first, last = conn.execute(
        sql.SQL("SELECT count(*), min(time), max(time) FROM {}").format(t)
    ).fetchone()
    tables = _by_bins(conn, t, timezone) if n else None
    if tables is None:
        tables = _by_grouping_sets(conn, t, timezone)
    return CrossingAggregates(
        **tables,
        by_cell=_cells_db(conn, t, h3_resolution),
        n_crossings=int(n),
        first_time=float(first) if n else float("nan"),
        last_time=float(last) if n else float("nan"),
        timezone=timezone,
    )


def _by_grouping_sets(conn: psycopg.Connection, t: sql.Composable, timezone: str) -> dict:
    """The local-time counts straight from PostgreSQL's ``AT TIME ZONE`` (any zone)."""
    rows = conn.execute(_GROUPS.format(t=t), {"tz": timezone}).fetchall()
    df = pd.DataFrame(rows, columns=[SEGMENT_ID, DATE, HOUR, WEEKDAY, DIRECTION, COUNT, "g"])
    if len(df):
        df[DATE] = pd.to_datetime(df[DATE])

    def part(mask: int, key: str) -> pd.DataFrame:
        sel = df[df["g"] == mask]
        return _tidy(sel.set_index([SEGMENT_ID, key])[COUNT], [SEGMENT_ID, key])

    return {
        "by_segment_day": part(_BY_DAY, DATE),
        "by_segment_hour": part(_BY_HOUR, HOUR),
        "by_segment_weekday": part(_BY_WEEKDAY, WEEKDAY),
        "by_segment_direction": part(_BY_DIRECTION, DIRECTION),
    }


def _by_bins(conn: psycopg.Connection, t: sql.Composable, timezone: str) -> dict | None:
    """The local-time counts from counts per segment, direction and UTC bin (an hour, else 15
    minutes): the database reduces the rows to bins, and each bin's local day, hour and weekday
    are looked up once. None when some bin straddles a change of the zone's offset (then
    :func:`_by_grouping_sets` does it row by row)."""
    for width in (3600, 900):
        q = sql.SQL(
            "SELECT segment_id, direction, floor(time / %(w)s)::int8 AS b, count(*) FROM {} "
            "GROUP BY 1, 2, 3"
        ).format(t)
        with conn.cursor(binary=True) as cur:
            rows = cur.execute(q, {"w": float(width)}).fetchall()
        df = pd.DataFrame(rows, columns=[SEGMENT_ID, DIRECTION, "b", COUNT])
        bins = np.unique(df["b"].to_numpy(np.int64))
        start = pd.DatetimeIndex(pd.to_datetime(bins * width, unit="s", utc=True))
        end = pd.DatetimeIndex(pd.to_datetime(bins * width + width - 1, unit="s", utc=True))
        a, z = start.tz_convert(timezone), end.tz_convert(timezone)
        offset_a = (a.tz_localize(None) - start.tz_localize(None)).total_seconds()
        offset_z = (z.tz_localize(None) - end.tz_localize(None)).total_seconds()
        if np.array_equal(offset_a, offset_z) and not np.any(np.asarray(offset_a) % width):
            break
    else:
        return None
    pos = np.searchsorted(bins, df["b"].to_numpy(np.int64))
    local = a.tz_localize(None)
    keyed = pd.DataFrame(
        {
            SEGMENT_ID: df[SEGMENT_ID].astype(str).to_numpy(),
            DIRECTION: df[DIRECTION].astype(str).to_numpy(),
            DATE: local.floor("D").astype("datetime64[ns]")[pos],
            HOUR: local.hour.to_numpy().astype(np.int64)[pos],
            WEEKDAY: local.day_of_week.to_numpy().astype(np.int64)[pos],
            COUNT: df[COUNT].to_numpy(np.int64),
        }
    )

    def total(key: str) -> pd.DataFrame:
        return _tidy(keyed.groupby([SEGMENT_ID, key])[COUNT].sum(), [SEGMENT_ID, key])

    return {
        "by_segment_day": total(DATE),
        "by_segment_hour": total(HOUR),
        "by_segment_weekday": total(WEEKDAY),
        "by_segment_direction": total(DIRECTION),
    }


def _cells_db(conn: psycopg.Connection, t: sql.Composable, resolution: int | None) -> pd.DataFrame:
    """Crossings per H3 cell, positions streamed in chunks of :data:`CELL_CHUNK_ROWS`."""
    if resolution is None:
        return pd.DataFrame({CELL: pd.Series(dtype=str), COUNT: pd.Series(dtype=np.int64)})
    total: pd.Series | None = None
    with conn.transaction(), conn.cursor(name="vigil_cells") as cur:
        cur.itersize = CELL_CHUNK_ROWS
        cur.execute(sql.SQL("SELECT lat, lon FROM {}").format(t))
        while chunk := cur.fetchmany(CELL_CHUNK_ROWS):
            ll = np.asarray(chunk, dtype=np.float64)
            cells = pd.Series(h3_cells(ll[:, 0], ll[:, 1], resolution)).value_counts()
            total = cells if total is None else total.add(cells, fill_value=0)
    if total is None:
        return pd.DataFrame({CELL: pd.Series(dtype=str), COUNT: pd.Series(dtype=np.int64)})
    total.index.name = CELL
    out = _tidy(total.astype(np.int64), [CELL])
    import h3

    out[CELL] = [h3.int_to_str(int(c)) for c in out[CELL]]
    return out


def segment_period_counts_db(
    conn: psycopg.Connection, *, schema: str = DEFAULT_SCHEMA, period_s: int = 3600
) -> pd.DataFrame:
    """Crossings per segment and UTC period (default: hour), ``segment_id, period, count``.

    The database groups; the result equals
    :func:`vigil.geo.patterns.aggregate.segment_period_counts` over the same crossings.
    """
    if period_s <= 0:
        raise ValueError(f"period_s={period_s!r}; expected a positive number of seconds")
    q = sql.SQL(
        "SELECT segment_id, (floor(time / %(p)s) * %(p)s)::int8 AS period, count(*) "
        "FROM {} GROUP BY 1, 2"
    ).format(_table(schema))
    rows = conn.execute(q, {"p": float(period_s)}).fetchall()
    df = pd.DataFrame(rows, columns=[SEGMENT_ID, "period", COUNT])
    return _tidy(df.set_index([SEGMENT_ID, "period"])[COUNT], [SEGMENT_ID, "period"])
