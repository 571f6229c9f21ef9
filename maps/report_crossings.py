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
from vigil.geo.patterns.analysis import CrossingAnalysis
from vigil.geo.patterns.hotspots import cell_polygon
from vigil.maps.offline import offline_map
from vigil.maps.report_page import (
    COLD_COLOUR,
    HOT_COLOUR,
    colour_scale,
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
    segs.to_file(segs_path, layer="segments", driver="GPKG", engine="pyogrio")

    hot_path = out / "hotspots.gpkg"
    hot_segs = segs[segs["class"] != "-"]
    hot_segs.to_file(hot_path, layer="segments", driver="GPKG", engine="pyogrio")
    cells = cells_layer(analysis.cells[analysis.cells["class"] != "-"])
    cells.to_file(hot_path, layer="cells", driver="GPKG", engine="pyogrio")
    corr = gpd.GeoDataFrame(
        analysis.corridors.drop(columns="geometry"),
        geometry=list(analysis.corridors["geometry"]),
        crs="EPSG:4326",
    )
    corr.to_file(hot_path, layer="corridors", driver="GPKG", engine="pyogrio")

    name = title or (f"Crossings, {border.sector} sector" if border else "Crossings")
    m = _crossing_map(analysis, segs, border, footprints)
    report = report_page(m, name, _crossing_head(analysis, name), _crossing_body(analysis))
    return {"report": report(out / "report.html"), "segments": segs_path, "hotspots": hot_path}


def _crossing_map(analysis, segs, border, footprints):
    import folium

    if border is not None:
        lat, lon = border.frame.lat0, border.frame.lon0
    elif len(analysis.cells):
        lat, lon = float(analysis.cells["lat"].mean()), float(analysis.cells["lon"].mean())
    else:
        lat, lon = 31.33, -110.94
    m = offline_map((lat, lon), zoom_start=11)
    if border is not None:
        colours = dict(
            zip(segs["segment_id"], colour_scale(segs["per_day"].to_numpy()), strict=True)
        )
        layer = folium.FeatureGroup(name="crossings per segment", show=True)
        data = segs[["segment_id", "crossings", "per_day", "gi_z", "class", "geometry"]]
        folium.GeoJson(
            data.to_json(),
            style_function=lambda f: {
                "color": colours[f["properties"]["segment_id"]],
                "weight": 7,
                "opacity": 0.9,
            },
            tooltip=folium.GeoJsonTooltip(
                fields=["segment_id", "crossings", "per_day", "gi_z", "class"],
                aliases=["segment", "crossings", "per day", "Gi* z", "hotspot"],
            ),
        ).add_to(layer)
        layer.add_to(m)
        hot = segs[segs["class"] != "-"]
        if len(hot):
            hl = folium.FeatureGroup(name="Gi* hot and cold segments", show=True)
            folium.GeoJson(
                hot[["segment_id", "class", "gi_z", "geometry"]].to_json(),
                style_function=lambda f: {
                    "color": HOT_COLOUR if f["properties"]["class"] == "hot" else COLD_COLOUR,
                    "weight": 14,
                    "opacity": 0.35,
                },
            ).add_to(hl)
            hl.add_to(m)
        m.fit_bounds([[b[1], b[0]] for b in (segs.total_bounds[:2], segs.total_bounds[2:])])
    cells = analysis.cells
    if len(cells):
        cl = folium.FeatureGroup(name="inland cells (Gi*)", show=True)
        shown = cells[cells["tracks"] > 0]
        cell_colours = colour_scale(shown["tracks"].to_numpy(), "PuRd")
        for (_, c), colour in zip(shown.iterrows(), cell_colours, strict=True):
            ring = [(lat_, lon_) for lon_, lat_ in cell_polygon(c["cell"]).exterior.coords]
            folium.Polygon(
                ring,
                color=HOT_COLOUR if c["class"] == "hot" else "#666",
                weight=2 if c["class"] == "hot" else 0.5,
                fill=True,
                fill_color=colour,
                fill_opacity=0.45,
                tooltip=f"{c['cell']}: {int(c['tracks'])} ({c['class']})",
            ).add_to(cl)
        cl.add_to(m)
    if len(analysis.corridors):
        co = folium.FeatureGroup(name="corridors", show=False)
        for r in analysis.corridors.itertuples():
            folium.GeoJson(
                r.geometry.__geo_interface__,
                style_function=lambda _f: {"color": "#542788", "weight": 2, "fillOpacity": 0.1},
                tooltip=f"corridor {r.corridor}: up to {r.tracks_max}",
            ).add_to(co)
        co.add_to(m)
    if footprints and border is not None:
        fl = folium.FeatureGroup(name="tower and sensor footprints", show=True)
        for fp in footprints:
            x, y = np.asarray(fp.exterior.coords).T
            la, lo = border.frame.to_wgs84(x, y)
            folium.Polygon(
                list(zip(la, lo, strict=True)),
                color="#1a9850",
                weight=1,
                fill=True,
                fill_opacity=0.12,
            ).add_to(fl)
        fl.add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    return m


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
    ax.set_title(f"Daily crossings and trend ({a.trend.get('direction', '?')})")
    ax.legend(loc="upper left")
    plots.append(png_img(fig))
    return plots


def _sentence_summary(s: dict) -> list[str]:
    lines = [
        f"{s['crossings']:,} crossings from {s['first'][:10]} to {s['last'][:10]} "
        f"({s['days']} days) on {s['segments_with_crossings']} of {s['segments']} segments.",
    ]
    if s["busiest_segments"]:
        b = s["busiest_segments"][0]
        lines.append(f"Busiest segment: {b['segment_id']} at {b['per_day']:.1f} crossings a day.")
    top = s["top_hotspot"]
    hot = ", ".join(s["hot_segments"][:8]) or "none"
    lines.append(f"Strongest Gi* hotspot: {top['segment_id']} (z = {top['gi_z']:.1f}); hot: {hot}.")
    lines.append(
        f"Crossings peak at {s['peak_hour']:02d}:00 local time ({s['timezone']}) and are "
        f"fewest at {s['quiet_hour']:02d}:00; the busiest day of the week is "
        f"{s['peak_weekday']}."
    )
    tr = s["trend"]
    if tr.get("direction") in {"rising", "falling"}:
        lines.append(f"The trend is {tr['direction']} ({tr['percent_per_year']:+.0f} % a year).")
    else:
        lines.append(f"The trend is {tr.get('direction', 'unknown')}.")
    if "peak_month" in s:
        lines.append(f"Busiest month {s['peak_month']}, quietest {s['trough_month']}.")
    for d in s["displacement"][:3]:
        lines.append(
            f"After {d['from']} fell, {d['to']} rose by {d['rise_per_day']:.1f} a day "
            f"({100 * d['share']:.0f} % of the fall)."
        )
    if "uncovered_segments" in s:
        lines.append(
            f"{len(s['uncovered_segments'])} segments are less than half covered; "
            f"{100 * s['crossings_in_coverage']:.0f} % of crossings happen in coverage."
        )
    if "best_new_tower" in s:
        b = s["best_new_tower"]
        lines.append(
            f"One more tower at {b['candidate']} would newly cover "
            f"{100 * b['gain_share']:.0f} % of crossings."
        )
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
