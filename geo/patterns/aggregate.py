"""The one pass over a crossing table: counts per segment and day, hour, weekday, direction, cell.

Everything a planner asks of months or years of crossings starts from a handful of counts
tables, small whatever the size of the input. :func:`aggregate_crossings` builds them from a
pandas table in memory or from a Dask (dask-geopandas) table over partitioned GeoParquet, with
the same code per partition, and returns identical tables either way; the analyses downstream
(rates, profiles, trend, hotspots, displacement, coverage) only see these.

Local time: hours, weekdays and days are in the sector's time zone (an IANA name such as
``"America/Phoenix"``); crossing times themselves stay UTC seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vigil.geo.patterns.io import DIRECTION, LAT, LON, SEGMENT_ID, TIME

DATE, HOUR, WEEKDAY, CELL, HOUR_BIN, COUNT = "date", "hour", "weekday", "cell", "hour_bin", "count"


@dataclass(frozen=True)
class CrossingAggregates:
    """Counts tables from one pass over a crossing table.

    Attributes
    ----------
    by_segment_day
        ``segment_id, date, count``; ``date`` is the local calendar day (naive, midnight).
    by_segment_hour
        ``segment_id, hour, count``; local hour of day 0-23.
    by_segment_weekday
        ``segment_id, weekday, count``; local day of week, 0 = Monday.
    by_segment_direction
        ``segment_id, direction, count`` (empty when the table has no direction).
    by_cell
        ``cell, count``: crossings per H3 cell (hex string), empty without positions.
    n_crossings
        Rows in the input.
    first_time, last_time
        Earliest and latest crossing, UTC seconds.
    timezone
        The time zone the local keys are in.
    """

    by_segment_day: pd.DataFrame
    by_segment_hour: pd.DataFrame
    by_segment_weekday: pd.DataFrame
    by_segment_direction: pd.DataFrame
    by_cell: pd.DataFrame
    n_crossings: int
    first_time: float
    last_time: float
    timezone: str

    def tables(self) -> dict[str, pd.DataFrame]:
        """The counts tables by name (for comparing two runs)."""
        return {
            "by_segment_day": self.by_segment_day,
            "by_segment_hour": self.by_segment_hour,
            "by_segment_weekday": self.by_segment_weekday,
            "by_segment_direction": self.by_segment_direction,
            "by_cell": self.by_cell,
        }


def with_keys(part: pd.DataFrame, timezone: str, h3_resolution: int | None) -> pd.DataFrame:
    """Grouping keys for one partition: segment, local day/hour/weekday, hour bin, H3 cell."""
    local = pd.to_datetime(part[TIME].to_numpy(np.float64), unit="s", utc=True)
    local = pd.DatetimeIndex(local).tz_convert(timezone)
    out = pd.DataFrame(
        {
            SEGMENT_ID: part[SEGMENT_ID].astype(str).to_numpy(),
            DATE: local.tz_localize(None).floor("D").astype("datetime64[ns]"),
            HOUR: local.hour.to_numpy().astype(np.int64),
            WEEKDAY: local.day_of_week.to_numpy().astype(np.int64),
            HOUR_BIN: (np.floor(part[TIME].to_numpy(np.float64) / 3600.0) * 3600).astype(np.int64),
        },
        index=part.index,
    )
    if DIRECTION in part.columns:
        out[DIRECTION] = part[DIRECTION].astype(str).to_numpy()
    if h3_resolution is not None and LAT in part.columns and LON in part.columns:
        out[CELL] = h3_cells(part[LAT].to_numpy(), part[LON].to_numpy(), h3_resolution)
    return out


def h3_cells(lat: np.ndarray, lon: np.ndarray, resolution: int) -> np.ndarray:
    """H3 cell of each point as int64 (the H3 index fits in 63 bits)."""
    import h3.api.basic_int as h3i

    if not 0 <= resolution <= 15:
        raise ValueError(f"h3 resolution={resolution!r}; expected 0..15")
    return np.fromiter(
        (
            h3i.latlng_to_cell(a, b, resolution)
            for a, b in zip(lat.tolist(), lon.tolist(), strict=True)
        ),
        dtype=np.int64,
        count=len(lat),
    )


def is_dask(table: object) -> bool:
    """Whether a table is a Dask (or dask-geopandas) DataFrame."""
    return type(table).__module__.split(".")[0] in {"dask", "dask_geopandas", "dask_expr"}


def _keyed(table, timezone: str, h3_resolution: int | None):
    if is_dask(table):
        meta = with_keys(table._meta, timezone, h3_resolution)
        return table.map_partitions(with_keys, timezone, h3_resolution, meta=meta)
    return with_keys(table, timezone, h3_resolution)


def _counts(keyed, keys: list[str]):
    return keyed.groupby(keys).size()


def _tidy(counts: pd.Series, keys: list[str]) -> pd.DataFrame:
    """A counts result as a sorted table with plain dtypes, the same from either backend."""
    out = counts.rename(COUNT).reset_index()
    for k in keys:
        if k in (SEGMENT_ID, DIRECTION):
            out[k] = out[k].astype(object).astype(str)
        elif k == DATE:
            out[k] = out[k].astype("datetime64[ns]")
        else:
            out[k] = out[k].astype(np.int64)
    out[COUNT] = out[COUNT].astype(np.int64)
    return out.sort_values(keys, kind="stable").reset_index(drop=True)


def aggregate_crossings(
    table, *, timezone: str = "UTC", h3_resolution: int | None = 8
) -> CrossingAggregates:
    """Count crossings per segment and local day, hour, weekday, direction and H3 cell.

    Parameters
    ----------
    table
        A normalised crossing table (:func:`vigil.geo.patterns.io.normalise_crossings`): pandas in
        memory, or a Dask DataFrame, computed on the active Dask scheduler.
    timezone
        IANA time zone for the local keys.
    h3_resolution
        Resolution of the H3 cells that crossing positions are counted in (None: skip).
    """
    keyed = _keyed(table, timezone, h3_resolution)
    columns = list(keyed.columns)
    plans = {
        "by_segment_day": [SEGMENT_ID, DATE],
        "by_segment_hour": [SEGMENT_ID, HOUR],
        "by_segment_weekday": [SEGMENT_ID, WEEKDAY],
    }
    if DIRECTION in columns:
        plans["by_segment_direction"] = [SEGMENT_ID, DIRECTION]
    if CELL in columns:
        plans["by_cell"] = [CELL]
    lazy = {name: _counts(keyed, keys) for name, keys in plans.items()}
    lazy["n"] = table[TIME].count()
    lazy["first"] = table[TIME].min()
    lazy["last"] = table[TIME].max()
    if is_dask(table):
        import dask

        names = list(lazy)
        done = dict(zip(names, dask.compute(*lazy.values()), strict=True))
    else:
        done = lazy
    tables = {name: _tidy(done[name], keys) for name, keys in plans.items()}
    empty_direction = pd.DataFrame(
        {SEGMENT_ID: pd.Series(dtype=str), DIRECTION: pd.Series(dtype=str), COUNT: []}
    )
    by_cell = tables.get("by_cell")
    if by_cell is not None:
        import h3

        by_cell[CELL] = [h3.int_to_str(int(c)) for c in by_cell[CELL]]
    else:
        by_cell = pd.DataFrame({CELL: pd.Series(dtype=str), COUNT: pd.Series(dtype=np.int64)})
    n = int(done["n"])
    return CrossingAggregates(
        by_segment_day=tables["by_segment_day"],
        by_segment_hour=tables["by_segment_hour"],
        by_segment_weekday=tables["by_segment_weekday"],
        by_segment_direction=tables.get("by_segment_direction", empty_direction),
        by_cell=by_cell,
        n_crossings=n,
        first_time=float(done["first"]) if n else float("nan"),
        last_time=float(done["last"]) if n else float("nan"),
        timezone=timezone,
    )


def segment_period_counts(table, *, period_s: int = 3600) -> pd.DataFrame:
    """Crossings per segment and UTC period (default: hour), ``segment_id, period, count``.

    ``period`` is the period's start in UTC seconds. Runs in memory or on Dask alike.
    """
    if period_s <= 0:
        raise ValueError(f"period_s={period_s!r}; expected a positive number of seconds")

    def keys(part: pd.DataFrame) -> pd.DataFrame:
        t = part[TIME].to_numpy(np.float64)
        return pd.DataFrame(
            {
                SEGMENT_ID: part[SEGMENT_ID].astype(str).to_numpy(),
                "period": (np.floor(t / period_s) * period_s).astype(np.int64),
            },
            index=part.index,
        )

    if is_dask(table):
        keyed = table.map_partitions(keys, meta=keys(table._meta))
        counts = keyed.groupby([SEGMENT_ID, "period"]).size().compute()
    else:
        counts = keys(table).groupby([SEGMENT_ID, "period"]).size()
    return _tidy(counts, [SEGMENT_ID, "period"])
