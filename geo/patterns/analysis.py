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
from vigil.geo.patterns import counts, evidence
from vigil.geo.patterns.aggregate import CrossingAggregates, aggregate_crossings, is_dask
from vigil.geo.patterns.counts_table import CountsAnalysis, analyze_counts_table
from vigil.geo.patterns.coverage import best_new_tower, segment_coverage, uncovered_segments
from vigil.geo.patterns.displacement import displacement, find_drops
from vigil.geo.patterns.hotspots import (
    HOT,
    NOT_SIGNIFICANT,
    cell_hotspots,
    corridors,
    segment_hotspots,
)
from vigil.geo.patterns.seasonality import MONTH_NAMES, monthly_profile, stl_trend

__all__ = [
    "CountsAnalysis",
    "CrossingAnalysis",
    "analyze_counts_table",
    "analyze_crossing_table",
    "crossing_summary",
]


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
    aggregates: CrossingAggregates | None = None,
    backend: str | None = None,
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
    aggregates, backend
        Counts already made elsewhere (in the database: :mod:`vigil.maps.report_db`), used
        instead of aggregating ``table``; the summary's ``backend`` then says where.
    """
    agg = aggregates or aggregate_crossings(table, timezone=timezone, h3_resolution=h3_resolution)
    if agg.n_crossings == 0:
        raise ValueError("the crossing table is empty; nothing to analyse")
    ids = border.segment_ids if border is not None else None
    rates = counts.segment_rates(agg, ids)
    segments = segment_hotspots(rates, bandwidth=bandwidth, seed=seed)
    # Gi* of a handful of crossings is noise, and a segment with none is at most next to a
    # hotspot (Gi* counts its neighbours): neither is called hot or cold.
    if agg.n_crossings < evidence.MIN_CROSSINGS_HOTSPOT:
        segments["class"] = NOT_SIGNIFICANT
    segments.loc[(segments["class"] == HOT) & (segments["crossings"] == 0), "class"] = (
        NOT_SIGNIFICANT
    )
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
        if agg.n_crossings < evidence.MIN_CROSSINGS_HOTSPOT:
            cells["class"] = NOT_SIGNIFICANT
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
    backend = backend or ("dask" if is_dask(table) else "pandas")
    result.summary = crossing_summary(result, backend=backend)
    return result


def _iso(t: float, timezone: str) -> str:
    return pd.Timestamp(t, unit="s", tz="UTC").tz_convert(timezone).isoformat()


def _profile_peak(observed: np.ndarray, expected: np.ndarray) -> float:
    """p-value of a chi-square test of observed counts against expected shares."""
    from scipy.stats import chisquare

    exp = expected / expected.sum() * observed.sum()
    return float(chisquare(observed, exp).pvalue)


def crossing_summary(a: CrossingAnalysis, *, backend: str = "pandas") -> dict:
    """The headline numbers of a crossing analysis, JSON-ready.

    A statement the crossings cannot support (:mod:`~vigil.geo.patterns.evidence`) is left
    out (its value is None) and listed under ``withheld`` with what the data hold and what it
    would need.
    """
    agg = a.aggregates
    seg = a.segments
    n = agg.n_crossings
    span_days = (agg.last_time - agg.first_time) / 86400.0
    withheld: list[dict[str, str]] = []
    have = f"{n:,} crossings over {evidence.span_phrase(agg.last_time - agg.first_time)}"
    rates_ok = n >= evidence.MIN_CROSSINGS_RATE and span_days >= evidence.MIN_DAYS_RATE
    if not rates_ok:
        withheld.append(
            evidence.withheld(
                "crossings per day and the busiest segment",
                have,
                f"{evidence.MIN_CROSSINGS_RATE} crossings over {evidence.MIN_DAYS_RATE} days",
            )
        )
    busiest = seg[seg["crossings"] > 0].sort_values("crossings", ascending=False).head(5)
    hot = seg[seg["class"] == "hot"].sort_values("gi_z", ascending=False)
    top_gi = seg.sort_values("gi_z", ascending=False).iloc[0]
    hotspots_ok = n >= evidence.MIN_CROSSINGS_HOTSPOT
    if not hotspots_ok:
        withheld.append(
            evidence.withheld(
                "Gi* hot and cold segments", have, f"{evidence.MIN_CROSSINGS_HOTSPOT} crossings"
            )
        )
    hours = a.hour_profile["crossings"].to_numpy()
    flat: list[dict] = []  # profiles with enough data whose bins differ no more than chance
    hour_ok = n >= evidence.MIN_CROSSINGS_HOUR
    p_hour = _profile_peak(hours, np.ones(24)) if hour_ok else float("nan")
    if hour_ok and not p_hour < evidence.ALPHA:
        hour_ok = False
        flat.append({"statement": "hour of day", "p": p_hour})
    elif not hour_ok:
        withheld.append(
            evidence.withheld("the busiest hour", have, f"{evidence.MIN_CROSSINGS_HOUR} crossings")
        )
    week = a.weekday_profile
    weeks = len(a.daily) / 7.0
    weekday_ok = n >= evidence.MIN_CROSSINGS_WEEKDAY and weeks >= evidence.MIN_WEEKS_WEEKDAY
    if weekday_ok:
        days = np.bincount(pd.DatetimeIndex(a.daily.index).day_of_week, minlength=7)
        p_week = _profile_peak(week["crossings"].to_numpy(), days.astype(float))
        if not p_week < evidence.ALPHA:
            weekday_ok = False
            flat.append({"statement": "day of the week", "p": p_week})
    else:
        withheld.append(
            evidence.withheld(
                "the busiest day of the week",
                have,
                f"{evidence.MIN_CROSSINGS_WEEKDAY} crossings over "
                f"{7 * evidence.MIN_WEEKS_WEEKDAY} days",
            )
        )
    trend = {
        k: (float(v) if isinstance(v, float | np.floating) else v)
        for k, v in a.trend.items()
        if k in {"slope_per_year", "percent_per_year", "direction", "reason"}
    }
    if trend.get("direction") == "unknown":
        need = f"{2 * (7 if len(a.daily) < 2 * 365 else 12) + 1} days"
        withheld.append(evidence.withheld("a trend", have, need))
    out = {
        "crossings": n,
        "backend": backend,
        "timezone": agg.timezone,
        "first": _iso(agg.first_time, agg.timezone),
        "last": _iso(agg.last_time, agg.timezone),
        "days": len(a.daily),
        "span_days": span_days,
        "segments": len(seg),
        "segments_with_crossings": int((seg["crossings"] > 0).sum()),
        "busiest_segments": [
            {
                "segment_id": r.segment_id,
                "crossings": int(r.crossings),
                "per_day": r.per_day if rates_ok else None,
            }
            for r in (busiest.itertuples() if rates_ok else [])
        ],
        "top_hotspot": (
            {"segment_id": top_gi.segment_id, "gi_z": float(top_gi.gi_z), "p": float(top_gi.p)}
            if hotspots_ok and len(hot)
            else None
        ),
        "hot_segments": hot["segment_id"].tolist(),
        "cold_segments": seg.loc[seg["class"] == "cold", "segment_id"].tolist(),
        "peak_hour": int(hours.argmax()) if hour_ok else None,
        "quiet_hour": int(hours.argmin()) if hour_ok else None,
        "peak_weekday": (
            str(week["day"].iloc[int(week["per_day"].to_numpy().argmax())]) if weekday_ok else None
        ),
        "trend": trend,
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
        share = seen / max(float(cov["crossings"].sum()), 1.0)
        out["crossings_in_coverage"] = share if n >= evidence.MIN_CROSSINGS_RATE else None
        if n < evidence.MIN_CROSSINGS_RATE:
            withheld.append(
                evidence.withheld(
                    "the share of crossings in coverage and the best new tower",
                    have,
                    f"{evidence.MIN_CROSSINGS_RATE} crossings",
                )
            )
    if a.best_towers is not None and len(a.best_towers) and n >= evidence.MIN_CROSSINGS_RATE:
        b = a.best_towers.iloc[0]
        out["best_new_tower"] = {
            "candidate": b.candidate,
            "gain": float(b.gain),
            "gain_share": float(b.gain_share),
        }
    out["withheld"] = withheld
    out["no_peak"] = flat
    return out
