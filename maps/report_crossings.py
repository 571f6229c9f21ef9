"""The planners' crossing report (:func:`vigil.maps.report.analyze_crossings`): the folium map of
segments, Gi* hot and cold segments, inland cells, corridors and footprints, the plots, the
written summary and the GIS layers."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from shapely.geometry.base import BaseGeometry

from vigil.geo.border import Border
from vigil.geo.export import write_geoparquet, write_gpkg_layer
from vigil.geo.patterns.analysis import CrossingAnalysis
from vigil.geo.patterns.evidence import withheld_sentence
from vigil.geo.patterns.hotspots import cell_polygon
from vigil.maps.crossing_map import crossing_map
from vigil.maps.report_page import (
    COLD_COLOUR,
    HOT_COLOUR,
    html_table,
    new_figure,
    png_img,
    report_page,
)


def segments_layer(analysis: CrossingAnalysis, border: Border | None):  # -> GeoDataFrame
    """Every segment with its counts, Gi* and coverage, WGS84 lines (None without a border)."""
    import geopandas as gpd

    seg = analysis.segments.copy()
    if border is not None:
        geom = border.segments_frame.set_index("segment_id").geometry
        geometry = geom.reindex(seg["segment_id"]).to_numpy()
    else:
        geometry = [None] * len(seg)
    return gpd.GeoDataFrame(seg, geometry=list(geometry), crs="EPSG:4326")


def cells_layer(cells: pd.DataFrame):  # -> GeoDataFrame
    """H3 cells with their density and Gi* as WGS84 polygons."""
    import geopandas as gpd

    geoms = [cell_polygon(c) for c in cells["cell"]]
    return gpd.GeoDataFrame(cells.reset_index(drop=True), geometry=geoms, crs="EPSG:4326")


def write_crossings_report(
    analysis: CrossingAnalysis,
    out_dir: str | Path,
    *,
    border: Border | None = None,
    footprints: Sequence[BaseGeometry] | None = None,
    title: str | None = None,
) -> dict[str, Path]:
    """Write ``report.html``, ``segments.gpkg`` and ``hotspots.gpkg`` for an analysis."""
    import geopandas as gpd

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    segs = segments_layer(analysis, border)
    segs_path = out / "segments.gpkg"
    hot_path = out / "hotspots.gpkg"
    for stale in (segs_path, hot_path):
        stale.unlink(missing_ok=True)
    write_gpkg_layer(segs, segs_path, "segments", geometry_type="LineString")
    segs_parquet = write_geoparquet(segs, out / "segments.parquet")

    hot_segs = segs[segs["class"] != "-"]
    write_gpkg_layer(hot_segs, hot_path, "segments", geometry_type="LineString")
    cells = cells_layer(analysis.cells[analysis.cells["class"] != "-"])
    write_gpkg_layer(cells, hot_path, "cells", geometry_type="Polygon")
    corr = gpd.GeoDataFrame(
        analysis.corridors.drop(columns="geometry"),
        geometry=list(analysis.corridors["geometry"]),
        crs="EPSG:4326",
    )
    write_gpkg_layer(corr, hot_path, "corridors", geometry_type="MultiPolygon")

    name = title or (f"Crossings, {border.sector} sector" if border else "Crossings")
    m = crossing_map(analysis, segs, border, footprints, name)
    report = report_page(m, name, _crossing_head(analysis, name), _crossing_body(analysis))
    return {
        "report": report(out / "report.html"),
        "segments": segs_path,
        "hotspots": hot_path,
        "segments_parquet": segs_parquet,
    }


def _crossing_plots(a: CrossingAnalysis) -> list[str]:
    tz = a.aggregates.timezone
    plots = []
    fig, ax = new_figure(9.0, 3.2)
    seg = a.segments
    colour = np.where(
        seg["class"] == "hot", HOT_COLOUR, np.where(seg["class"] == "cold", COLD_COLOUR, "#999")
    )
    ax.bar(np.arange(len(seg)), seg["per_day"], color=colour)
    step = max(1, len(seg) // 12)
    ax.set_xticks(np.arange(0, len(seg), step), seg["segment_id"].iloc[::step], rotation=45)
    ax.set_ylabel("crossings per day")
    ax.set_title("Crossings per segment (red: Gi* hot, blue: cold)")
    plots.append(png_img(fig))

    fig, ax = new_figure(4.5, 3.0)
    ax.bar(a.hour_profile["hour"], a.hour_profile["share"] * 100, color="#4d4d4d")
    ax.set_xlabel(f"hour of day ({tz})")
    ax.set_ylabel("% of crossings")
    ax.set_title("Time of day")
    plots.append(png_img(fig))

    fig, ax = new_figure(4.5, 3.0)
    ax.bar(a.weekday_profile["day"], a.weekday_profile["per_day"], color="#4d4d4d")
    ax.set_ylabel("crossings per day")
    ax.set_title("Day of week")
    plots.append(png_img(fig))

    fig, ax = new_figure(9.0, 3.0)
    ax.plot(a.daily.index, a.daily.to_numpy(), lw=0.7, color="#888", label="per day")
    trend = a.trend.get("trend")
    if isinstance(trend, pd.Series) and trend.notna().any():
        idx = trend.index
        scale = 1.0
        if len(idx) < len(a.daily):  # monthly trend over a daily series: per-day level
            scale = 1.0 / idx.days_in_month.to_numpy()
        ax.plot(idx, trend.to_numpy() * scale, lw=2, color=HOT_COLOUR, label="STL trend")
    ax.set_ylabel("crossings")
    direction = a.trend.get("direction")
    known = direction in {"rising", "falling", "flat"}
    ax.set_title(f"Daily crossings and trend ({direction})" if known else "Daily crossings")
    ax.legend(loc="upper left")
    plots.append(png_img(fig))
    return plots


def _sentence_summary(s: dict) -> list[str]:
    """The written summary: only what the crossings support (None in the summary is withheld,
    and the last line says what was withheld and why)."""
    lines = [
        f"{s['crossings']:,} crossings from {s['first'][:10]} to {s['last'][:10]} "
        f"({s['days']} day{'s' if s['days'] != 1 else ''}) on {s['segments_with_crossings']} of "
        f"{s['segments']} segments.",
    ]
    if s["busiest_segments"]:
        b = s["busiest_segments"][0]
        lines.append(f"Busiest segment: {b['segment_id']} at {b['per_day']:.1f} crossings a day.")
    top = s["top_hotspot"]
    if top is not None:
        hot = ", ".join(s["hot_segments"][:8]) or "none"
        lines.append(
            f"Strongest Gi* hotspot: {top['segment_id']} (z = {top['gi_z']:.1f}); hot: {hot}."
        )
    if s["peak_hour"] is not None:
        lines.append(
            f"Crossings peak at {s['peak_hour']:02d}:00 local time ({s['timezone']}) and are "
            f"fewest at {s['quiet_hour']:02d}:00."
        )
    if s["peak_weekday"] is not None:
        lines.append(f"The busiest day of the week is {s['peak_weekday']}.")
    tr = s["trend"]
    if tr.get("direction") in {"rising", "falling"}:
        lines.append(f"The trend is {tr['direction']} ({tr['percent_per_year']:+.0f} % a year).")
    elif tr.get("direction") == "flat":
        lines.append("The trend is flat.")
    if "peak_month" in s:
        lines.append(f"Busiest month {s['peak_month']}, quietest {s['trough_month']}.")
    for d in s["displacement"][:3]:
        lines.append(
            f"After {d['from']} fell, {d['to']} rose by {d['rise_per_day']:.1f} a day "
            f"({100 * d['share']:.0f} % of the fall)."
        )
    if "uncovered_segments" in s:
        line = f"{len(s['uncovered_segments'])} segments are less than half covered"
        if s.get("coverage_from") == "viewsheds":
            line += " (by what the towers see over the relief, hills hiding the rest)"
        if s.get("crossings_in_coverage") is not None:
            line += f"; {100 * s['crossings_in_coverage']:.0f} % of crossings happen in coverage"
        lines.append(line + ".")
    if "best_new_tower" in s:
        b = s["best_new_tower"]
        lines.append(
            f"One more tower at {b['candidate']} would newly cover "
            f"{100 * b['gain_share']:.0f} % of crossings."
        )
    for f in s.get("no_peak", []):
        lines.append(
            f"No {f['statement']} stands out (chi-square test against an even spread, "
            f"p = {f['p']:.2f})."
        )
    too_little = withheld_sentence(s.get("withheld", []))
    if too_little:
        lines.append(too_little)
    return lines


def _crossing_head(a: CrossingAnalysis, name: str) -> str:
    lines = "".join(f"<li>{html.escape(line)}</li>" for line in _sentence_summary(a.summary))
    return f"<h1>{html.escape(name)}</h1><ul>{lines}</ul>"


def _crossing_body(a: CrossingAnalysis) -> str:
    parts = []
    parts.append('<div class="plots">' + "".join(_crossing_plots(a)) + "</div>")
    cols = ["segment_id", "crossings", "per_day", "gi_z", "p", "class"]
    if "covered" in a.segments.columns:
        cols.append("covered")
    parts.append("<h2>Segments by Gi*</h2>")
    parts.append(html_table(a.segments.sort_values("gi_z", ascending=False)[cols]))
    if len(a.displacement):
        parts.append("<h2>Displacement</h2>" + html_table(a.displacement))
    if a.best_towers is not None:
        parts.append("<h2>Where one more tower helps most</h2>")
        parts.append(html_table(a.best_towers.drop(columns="geometry"), 5))
    return "\n".join(parts)
