"""Crossing tables with planted patterns, to check that the analyses find what was planted.

Not a world simulator (that is ``sim/``): this draws crossing events directly, fast
enough for the 10-million-row benchmark, from known per-segment rates (corridors), an hour of
day schedule in local time, a day-of-week schedule and an optional change of rates at a date
(displacement). Same seed, same table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from vigil.geo.border import Border


@dataclass(frozen=True)
class PlantedPattern:
    """What was planted: the truth the analyses are scored against.

    ``rates`` are mean crossings per day per segment (in ``border.segment_ids`` order) before
    ``change_day``; ``rates_after`` from then on (same as ``rates`` without a change).
    ``hourly`` and ``weekday`` are the relative weights (sum 1) of each local hour and day.
    """

    rates: np.ndarray
    rates_after: np.ndarray
    hourly: np.ndarray
    weekday: np.ndarray
    change_day: int | None


def corridor_rates(
    n_segments: int,
    corridors: Sequence[tuple[int, float, float]],
    *,
    background: float = 0.5,
) -> np.ndarray:
    """Per-segment crossings per day: a background plus Gaussian bumps along the border.

    ``corridors`` holds ``(centre_segment, peak_per_day, width_segments)``.
    """
    i = np.arange(n_segments, dtype=np.float64)
    rates = np.full(n_segments, float(background))
    for centre, peak, width in corridors:
        rates += peak * np.exp(-0.5 * ((i - centre) / width) ** 2)
    return rates


def night_schedule(peak_hour: int = 2, spread_h: float = 3.0, floor: float = 0.15) -> np.ndarray:
    """Hour-of-day weights peaking at ``peak_hour`` local (circular Gaussian), summing to 1."""
    h = np.arange(24, dtype=np.float64)
    d = np.minimum(np.abs(h - peak_hour), 24 - np.abs(h - peak_hour))
    w = floor + np.exp(-0.5 * (d / spread_h) ** 2)
    return w / w.sum()


def simulate_crossings(
    border: Border,
    *,
    days: int,
    rates: np.ndarray,
    hourly: np.ndarray | None = None,
    weekday: np.ndarray | None = None,
    start: str = "2024-01-01",
    timezone: str = "UTC",
    rates_after: np.ndarray | None = None,
    change_day: int | None = None,
    positions: bool = True,
    seed: int = 0,
) -> tuple[pd.DataFrame, PlantedPattern]:
    """Draw a crossing table with planted per-segment rates and local-time schedules.

    Parameters
    ----------
    border
        The sector's border; crossings are placed uniformly along their segment.
    days
        Length of the period, days, from local midnight of ``start``.
    rates
        Mean crossings per day for each segment.
    hourly, weekday
        Relative weights per local hour (24) and weekday (7, Monday first); uniform if None.
    timezone
        IANA time zone the schedules are in.
    rates_after, change_day
        From local day ``change_day`` on, segments cross at ``rates_after`` per day.
    positions
        Add ``lat``/``lon`` (and ``x``/``y``) of each crossing on its segment.
    seed
        Seed of the random generator.

    Returns
    -------
    (table, planted)
        ``crossing_id, track_id, time, segment_id, segment_index, direction`` (+ positions),
        sorted by time; and the planted truth.
    """
    n_seg = len(border.segments)
    rates = np.asarray(rates, dtype=np.float64)
    if rates.shape != (n_seg,) or (rates < 0).any():
        raise ValueError(f"rates has shape {rates.shape}; expected {n_seg} non-negative rates")
    after = rates if rates_after is None else np.asarray(rates_after, dtype=np.float64)
    if after.shape != (n_seg,):
        raise ValueError(f"rates_after has shape {after.shape}; expected ({n_seg},)")
    hourly = np.full(24, 1 / 24) if hourly is None else np.asarray(hourly, np.float64)
    weekday = np.full(7, 1 / 7) if weekday is None else np.asarray(weekday, np.float64)
    hourly, weekday = hourly / hourly.sum(), weekday / weekday.sum()
    rng = np.random.default_rng(seed)

    day0 = pd.Timestamp(start).normalize()
    day_index = np.arange(days)
    dow = (day0.day_of_week + day_index) % 7
    day_weight = weekday[dow] * 7.0  # mean 1 over a whole week
    changed = np.zeros(days, bool) if change_day is None else day_index >= change_day
    # Expected counts per (day, segment), then Poisson draws.
    lam = day_weight[:, None] * np.where(changed[:, None], after[None, :], rates[None, :])
    counts = rng.poisson(lam)
    total = int(counts.sum())
    flat = np.repeat(np.arange(days * n_seg), counts.ravel())
    day_of, seg_of = np.divmod(flat, n_seg)
    hour = rng.choice(24, size=total, p=hourly)
    second = rng.uniform(0.0, 3600.0, size=total)
    local_ns = (
        day0.value
        + day_of.astype(np.int64) * 86_400 * 10**9
        + hour.astype(np.int64) * 3_600 * 10**9
        + (second * 1e9).astype(np.int64)
    )
    local = pd.DatetimeIndex(local_ns.astype("datetime64[ns]"))
    utc = local.tz_localize(timezone, ambiguous="NaT", nonexistent="shift_forward")
    keep = ~utc.isna()
    t = (utc[keep].asi8 / 1e9).astype(np.float64)
    seg_of = seg_of[keep]
    order = np.argsort(t, kind="stable")
    t, seg_of = t[order], seg_of[order]
    n = t.shape[0]
    ids = np.asarray(border.segment_ids, dtype=object)
    table = pd.DataFrame(
        {
            "crossing_id": np.arange(n, dtype=np.int64),
            "track_id": np.arange(n, dtype=np.int64),
            "time": t,
            "segment_id": ids[seg_of],
            "segment_index": seg_of.astype(np.int64),
            "direction": np.where(rng.random(n) < 0.9, "northbound", "southbound"),
        }
    )
    if positions and n:
        lines = np.asarray([s.line for s in border.segments], dtype=object)
        lengths = shapely.length(lines)
        pts = shapely.line_interpolate_point(lines[seg_of], rng.random(n) * lengths[seg_of])
        x, y = shapely.get_x(pts), shapely.get_y(pts)
        lat, lon = border.frame.to_wgs84(x, y)
        table["x"], table["y"], table["lat"], table["lon"] = x, y, lat, lon
    return table, PlantedPattern(
        rates=rates,
        rates_after=after,
        hourly=hourly,
        weekday=weekday,
        change_day=change_day,
    )
