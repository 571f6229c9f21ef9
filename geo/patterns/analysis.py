"""Every planner's analysis of a crossing table or an aggregate counts table, in one call.

:func:`analyze_crossing_table` aggregates once (in memory or on Dask) and derives from the
counts: rates per segment, local hour and weekday profiles, the daily series with its STL trend,
Gi* hotspots along the border, hot H3 cells, displacement after falls, and, given footprints,
coverage and the best place for one more tower. :func:`analyze_counts_table` does the
seasonal side for aggregate ``time, area, count`` tables. Both return plain tables and a
JSON-ready summary; :mod:`vigil.maps.report` draws them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from shapely.geometry.base import BaseGeometry

from vigil.geo.border import Border
from vigil.geo.patterns import counts
from vigil.geo.patterns.aggregate import CrossingAggregates, aggregate_crossings, is_dask
from vigil.geo.patterns.coverage import best_new_tower, segment_coverage, uncovered_segments
from vigil.geo.patterns.displacement import displacement, find_drops
from vigil.geo.patterns.hotspots import cell_hotspots, corridors, segment_hotspots
from vigil.geo.patterns.seasonality import (
    MONTH_NAMES,
    busiest_by_year,
    group_seasonality,
    monthly_profile,
    monthly_wide,
    stl_trend,
)


@dataclass
class CrossingAnalysis:
    """Results over a crossing table; tables are small (per segment, hour, day, cell)."""

    aggregates: CrossingAggregates
    segments: pd.DataFrame
    hour_profile: pd.DataFrame
    weekday_profile: pd.DataFrame
    daily: pd.Series
    trend: dict
    drops: pd.DataFrame
    displacement: pd.DataFrame
    cells: pd.DataFrame
    corridors: pd.DataFrame
    monthly_profile: pd.Series | None = None
    best_towers: pd.DataFrame | None = None
    summary: dict = field(default_factory=dict)


def analyze_crossing_table(
    table,
    *,
    border: Border | None = None,
    timezone: str = "UTC",
    footprints: Sequence[BaseGeometry] | None = None,
    candidates: Mapping[str, BaseGeometry] | None = None,
    path_density: pd.DataFrame | None = None,
    h3_resolution: int = 8,
    bandwidth: int = 1,
    seed: int = 0,
) -> CrossingAnalysis:
    """Run every crossing analysis over a normalised crossing table.

    Parameters
    ----------
    table
        Normalised crossings (pandas, or Dask computed on the active scheduler).
    border
        The sector's border: gives every segment (those with no crossing too), chainage
        order for adjacency, and geometry for coverage. Without it, segments are the ids seen,
        in sorted order.
    timezone
        IANA zone of the sector, for hour, weekday and day.
    footprints, candidates
        Local-frame polygons of what towers and sensors see now, and of candidate new towers
        (needs ``border``).
    path_density
        Distinct tracks per H3 cell over track paths (:func:`vigil.geo.patterns.hotspots.
        path_density`); without it, inland cells are counted from crossing positions.
    h3_resolution
        Resolution of the crossing-position cells.
    bandwidth
        Segments either side that are Gi* neighbours.
    seed
        Seed for the Gi* permutations.
    """
    agg = aggregate_crossings(table, timezone=timezone, h3_resolution=h3_resolution)
    if agg.n_crossings == 0:
        raise ValueError("the crossing table is empty; nothing to analyse")
    ids = border.segment_ids if border is not None else None
    rates = counts.segment_rates(agg, ids)
    segments = segment_hotspots(rates, bandwidth=bandwidth, seed=seed)
    if border is not None:
        segments.insert(1, "chainage_start_km", [s.chainage_start_km for s in border.segments])
        segments.insert(2, "chainage_end_km", [s.chainage_end_km for s in border.segments])

    best = None
    if footprints is not None:
        if border is None:
            raise ValueError("coverage needs the border: pass border= with footprints=")
        cov = segment_coverage(border, footprints)
        segments["covered"] = cov["covered"].to_numpy()
        if candidates:
            best = best_new_tower(
                border, footprints, dict(zip(rates.segment_id, rates.crossings, strict=True)),
                candidates,
            )  # fmt: skip

    hour = counts.hour_profile(agg)
    week = counts.weekday_profile(agg)
    daily = counts.daily_totals(agg)
    trend = stl_trend(daily, period=7)
    month_profile = None
    if len(daily) >= 2 * 365:
        monthly = daily.resample("MS").sum()
        month_profile = monthly_profile(monthly)
        trend = stl_trend(monthly, period=12)

    wide = counts.segment_day_matrix(agg, list(rates.segment_id))
    drops = find_drops(wide)
    moved = displacement(wide) if len(drops) else displacement(wide.iloc[:0])

    if path_density is not None:
        cells = cell_hotspots(path_density, value="tracks", seed=seed)
        corr = corridors(path_density)
    elif len(agg.by_cell) >= 3:
        density = agg.by_cell.rename(columns={"count": "tracks"})
        cells = cell_hotspots(density, value="tracks", seed=seed)
        corr = corridors(density)
    else:
        cells = pd.DataFrame(columns=["cell", "tracks", "gi_z", "p", "class", "lat", "lon"])
        corr = pd.DataFrame(columns=["corridor", "cells", "tracks_max", "tracks_sum", "geometry"])

    result = CrossingAnalysis(
        aggregates=agg,
        segments=segments,
        hour_profile=hour,
        weekday_profile=week,
        daily=daily,
        trend=trend,
        drops=drops,
        displacement=moved,
        cells=cells,
        corridors=corr,
        monthly_profile=month_profile,
        best_towers=best,
    )
    result.summary = crossing_summary(result, backend="dask" if is_dask(table) else "pandas")
    return result


def _iso(t: float, timezone: str) -> str:
    return pd.Timestamp(t, unit="s", tz="UTC").tz_convert(timezone).isoformat()


def crossing_summary(a: CrossingAnalysis, *, backend: str = "pandas") -> dict:
    """The headline numbers of a crossing analysis, JSON-ready."""
    agg = a.aggregates
    seg = a.segments
    busiest = seg.sort_values("crossings", ascending=False).head(5)
    hot = seg[seg["class"] == "hot"].sort_values("gi_z", ascending=False)
    top_gi = seg.sort_values("gi_z", ascending=False).iloc[0]
    week = a.weekday_profile
    out = {
        "crossings": agg.n_crossings,
        "backend": backend,
        "timezone": agg.timezone,
        "first": _iso(agg.first_time, agg.timezone),
        "last": _iso(agg.last_time, agg.timezone),
        "days": len(a.daily),
        "segments": len(seg),
        "segments_with_crossings": int((seg["crossings"] > 0).sum()),
        "busiest_segments": [
            {"segment_id": r.segment_id, "crossings": int(r.crossings), "per_day": r.per_day}
            for r in busiest.itertuples()
        ],
        "top_hotspot": {
            "segment_id": top_gi.segment_id,
            "gi_z": float(top_gi.gi_z),
            "p": float(top_gi.p),
        },
        "hot_segments": hot["segment_id"].tolist(),
        "cold_segments": seg.loc[seg["class"] == "cold", "segment_id"].tolist(),
        "peak_hour": int(a.hour_profile["crossings"].to_numpy().argmax()),
        "quiet_hour": int(a.hour_profile["crossings"].to_numpy().argmin()),
        "peak_weekday": str(week["day"].iloc[int(week["per_day"].to_numpy().argmax())]),
        "trend": {
            k: (float(v) if isinstance(v, float | np.floating) else v)
            for k, v in a.trend.items()
            if k in {"slope_per_year", "percent_per_year", "direction", "reason"}
        },
        "directions": {
            str(k): int(v)
            for k, v in agg.by_segment_direction.groupby("direction")["count"].sum().items()
        },
        "drops": [
            {
                "segment_id": r.segment_id,
                "at": pd.Timestamp(r.at).date().isoformat(),
                "before_per_day": float(r.before_per_day),
                "after_per_day": float(r.after_per_day),
            }
            for r in a.drops.itertuples()
        ],
        "displacement": [
            {
                "from": r.segment_id,
                "to": r.neighbour_id,
                "share": float(r.share),
                "rise_per_day": float(r.rise_per_day),
            }
            for r in a.displacement.head(10).itertuples()
        ],
        "hot_cells": a.cells.loc[a.cells["class"] == "hot", "cell"].head(20).tolist(),
        "corridors": len(a.corridors),
    }
    if a.monthly_profile is not None:
        p = a.monthly_profile.dropna()
        out["peak_month"] = MONTH_NAMES[int(p.idxmax()) - 1]
        out["trough_month"] = MONTH_NAMES[int(p.idxmin()) - 1]
    if "covered" in a.segments.columns:
        cov = a.segments
        out["uncovered_segments"] = uncovered_segments(cov)
        seen = float((cov["covered"] * cov["crossings"]).sum())
        out["crossings_in_coverage"] = seen / max(float(cov["crossings"].sum()), 1.0)
    if a.best_towers is not None and len(a.best_towers):
        b = a.best_towers.iloc[0]
        out["best_new_tower"] = {
            "candidate": b.candidate,
            "gain": float(b.gain),
            "gain_share": float(b.gain_share),
        }
    return out


@dataclass
class CountsAnalysis:
    """Results over an aggregate counts table: months by group, seasonality, busiest."""

    wide: pd.DataFrame
    seasonality: dict
    busiest: pd.DataFrame
    summary: dict = field(default_factory=dict)


def monthly_counts(counts) -> pd.DataFrame:
    """Months by group from a normalised counts table, pandas or Dask."""
    if is_dask(counts):
        month = counts["time"].dt.to_period("M").dt.to_timestamp()
        summed = counts.assign(time=month).groupby(["time", "group"])["value"].sum().compute()
        long = summed.reset_index()
        return monthly_wide(long)
    return monthly_wide(counts)


def analyze_counts_table(
    counts, *, year_start_month: int = 1, busiest_year_start_month: int | None = None
) -> CountsAnalysis:
    """Seasonality, trend and the busiest group per year of an aggregate counts table.

    Parameters
    ----------
    counts
        Normalised ``time, group, value`` (:func:`vigil.geo.patterns.io.normalise_counts`), pandas
        or Dask.
    year_start_month
        Month the years of the monthly profile start (1 calendar, 10 US fiscal).
    busiest_year_start_month
        Month the years of the busiest-group table start (default ``year_start_month``).
    """
    wide = monthly_counts(counts)
    seasonality = group_seasonality(wide, year_start_month=year_start_month)
    busy_start = year_start_month if busiest_year_start_month is None else busiest_year_start_month
    busiest = busiest_by_year(wide, year_start_month=busy_start)
    total = wide.sum(axis=1)
    overall = group_seasonality(total.to_frame("all"), year_start_month=year_start_month)["all"]
    summary = {
        "groups": [str(g) for g in wide.columns],
        "months": len(wide),
        "first_month": wide.index.min().date().isoformat(),
        "last_month": wide.index.max().date().isoformat(),
        "total": float(total.sum()),
        "year_start_month": year_start_month,
        "all": {k: overall[k] for k in ("peak_month", "trough_month", "trend")},
        "peaks": {g: s["peak_month"] for g, s in seasonality.items()},
        "troughs": {g: s["trough_month"] for g, s in seasonality.items()},
        "busiest_by_year": {
            int(r.year): {"group": r.busiest, "count": float(r.count), "share": float(r.share)}
            for r in busiest.itertuples()
        },
    }
    return CountsAnalysis(wide=wide, seasonality=seasonality, busiest=busiest, summary=summary)
