"""The planners' report: ``vigil analyze`` writes a self-contained HTML page and GIS layers.

For a crossing table, :func:`analyze_crossings` writes to ``out_dir``:

- ``report.html``: a folium map (segments shaded by crossings per day, Gi* hot and cold
  segments, hot H3 cells and corridors, tower and sensor footprints), matplotlib plots of the
  per-segment rates, local hour and weekday profiles and the daily series with its trend, and
  a short written summary. Leaflet is inlined and plots are PNG data URIs: it opens with no
  network;
- ``segments.gpkg`` (every segment with its counts, Gi* and coverage), ``hotspots.gpkg``
  (layers ``segments``, ``cells``, ``corridors``) and ``summary.json``.

For an aggregate counts table, :func:`analyze_counts` writes ``report.html`` (plots and
tables), ``seasonality.json`` (each group's monthly profile, peak and trough month, trend) and
``summary.json``.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from shapely.geometry.base import BaseGeometry

from vigil.geo.border import Border
from vigil.geo.patterns.analysis import (
    CountsAnalysis,
    CrossingAnalysis,
    analyze_counts_table,
    analyze_crossing_table,
)
from vigil.geo.patterns.hotspots import cell_polygon
from vigil.geo.patterns.hotspots import path_density as _path_density
from vigil.geo.patterns.io import normalise_counts, read_counts, read_crossings
from vigil.geo.patterns.scale import dask_scheduler, open_crossings_dask
from vigil.geo.patterns.seasonality import MONTH_NAMES, stl_trend
from vigil.maps.offline import offline_map, save_offline

HOT_COLOUR, COLD_COLOUR = "#b2182b", "#2166ac"


# -- entry points --------------------------------------------------------------------------
def analyze_crossings(
    input_path: str | Path,
    out_dir: str | Path,
    *,
    border: Border | None = None,
    timezone: str = "UTC",
    dask: str | None = None,
    footprints: Sequence[BaseGeometry] | None = None,
    candidates: Mapping[str, BaseGeometry] | None = None,
    paths: pd.DataFrame | None = None,
    npartitions: int = 8,
    title: str | None = None,
) -> dict:
    """Analyse a crossing table and write the report, GIS layers and summary.

    Parameters
    ----------
    input_path
        CSV, (Geo)Parquet file or folder of parts, GeoPackage, or the SQLite store.
    out_dir
        Folder for ``report.html``, ``segments.gpkg``, ``hotspots.gpkg``, ``summary.json``.
    border
        The sector's border (segments, chainage, geometry); strongly advised.
    timezone
        The sector's IANA time zone for hour-of-day and weekday profiles.
    dask
        None (in memory), ``"local"``, ``"synchronous"`` or a scheduler address.
    footprints, candidates
        Local-frame polygons seen by towers and sensors now, and candidate new towers.
    paths
        Track samples ``track_id, lat, lon`` for inland path density and corridors.

    Returns
    -------
    dict
        The summary written to ``summary.json``, with ``files``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    density = None
    if paths is not None:
        density = _path_density(paths["track_id"], paths["lat"], paths["lon"], resolution=9)
    with dask_scheduler(dask):
        table = (
            read_crossings(input_path)
            if dask is None
            else open_crossings_dask(input_path, npartitions=npartitions)
        )
        analysis = analyze_crossing_table(
            table,
            border=border,
            timezone=timezone,
            footprints=footprints,
            candidates=candidates,
            path_density=density,
        )
    analysis.summary["input"] = str(input_path)
    files = write_crossings_report(analysis, out, border=border, footprints=footprints, title=title)
    analysis.summary["files"] = {k: str(v) for k, v in files.items()}
    return _write_json(out / "summary.json", analysis.summary)


def analyze_counts(
    csv: str | Path,
    time_col: str,
    group_col: str,
    value_col: str,
    out_dir: str | Path,
    dask: str | None = None,
    *,
    year_start_month: int = 1,
    busiest_year_start_month: int | None = None,
    title: str | None = None,
) -> dict:
    """Analyse an aggregate counts table (time, area, count) and write the report.

    Parameters
    ----------
    csv
        The table (CSV or Parquet).
    time_col, group_col, value_col
        Columns holding the period start, the area (sector, segment) and the count.
    out_dir
        Folder for ``report.html``, ``seasonality.json`` and ``summary.json``.
    dask
        None (in memory), ``"local"``, ``"synchronous"`` or a scheduler address.
    year_start_month
        Month the years of the monthly profile start (1: calendar years, 10: US fiscal).
    busiest_year_start_month
        Month the years of the busiest-area table start (default ``year_start_month``).

    Returns
    -------
    dict
        The summary written to ``summary.json``, with ``files``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with dask_scheduler(dask):
        if dask is None:
            counts = read_counts(csv, time_col, group_col, value_col)
        else:
            import dask.dataframe as dd

            raw = dd.read_csv(str(csv))
            meta = normalise_counts(raw._meta, time_col, group_col, value_col, source=str(csv))
            counts = raw.map_partitions(
                normalise_counts, time_col, group_col, value_col, source=str(csv), meta=meta
            )
        analysis = analyze_counts_table(
            counts,
            year_start_month=year_start_month,
            busiest_year_start_month=busiest_year_start_month,
        )
    analysis.summary.update(
        {"input": str(csv), "time": time_col, "group": group_col, "value": value_col}
    )
    files = write_counts_report(analysis, out, title=title or f"{value_col} by {group_col}")
    analysis.summary["files"] = {k: str(v) for k, v in files.items()}
    return _write_json(out / "summary.json", analysis.summary)


# -- crossing report -----------------------------------------------------------------------
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
    report = _page(m, name, _crossing_head(analysis, name), _crossing_body(analysis))
    return {"report": report(out / "report.html"), "segments": segs_path, "hotspots": hot_path}


def _colour(values: np.ndarray, cmap: str = "YlOrRd") -> list[str]:
    import matplotlib
    from matplotlib.colors import to_hex

    v = np.asarray(values, dtype=np.float64)
    top = float(v.max()) if v.size and v.max() > 0 else 1.0
    colours = matplotlib.colormaps[cmap](0.15 + 0.85 * v / top)
    return [to_hex(c) for c in colours]


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
        colours = dict(zip(segs["segment_id"], _colour(segs["per_day"].to_numpy()), strict=True))
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
        cell_colours = _colour(shown["tracks"].to_numpy(), "PuRd")
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


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img class="plot" alt="plot" src="data:image/png;base64,{data}">'


def _figure(width: float = 7.5, height: float = 3.0):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def _crossing_plots(a: CrossingAnalysis) -> list[str]:
    tz = a.aggregates.timezone
    plots = []
    fig, ax = _figure(9.0, 3.2)
    seg = a.segments
    colour = np.where(
        seg["class"] == "hot", HOT_COLOUR, np.where(seg["class"] == "cold", COLD_COLOUR, "#999")
    )
    ax.bar(np.arange(len(seg)), seg["per_day"], color=colour)
    step = max(1, len(seg) // 12)
    ax.set_xticks(np.arange(0, len(seg), step), seg["segment_id"].iloc[::step], rotation=45)
    ax.set_ylabel("crossings per day")
    ax.set_title("Crossings per segment (red: Gi* hot, blue: cold)")
    plots.append(_png(fig))

    fig, ax = _figure(4.5, 3.0)
    ax.bar(a.hour_profile["hour"], a.hour_profile["share"] * 100, color="#4d4d4d")
    ax.set_xlabel(f"hour of day ({tz})")
    ax.set_ylabel("% of crossings")
    ax.set_title("Time of day")
    plots.append(_png(fig))

    fig, ax = _figure(4.5, 3.0)
    ax.bar(a.weekday_profile["day"], a.weekday_profile["per_day"], color="#4d4d4d")
    ax.set_ylabel("crossings per day")
    ax.set_title("Day of week")
    plots.append(_png(fig))

    fig, ax = _figure(9.0, 3.0)
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
    plots.append(_png(fig))
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


def _table(df: pd.DataFrame, max_rows: int = 15) -> str:
    return df.head(max_rows).to_html(index=False, float_format=lambda v: f"{v:.3g}", border=0)


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
    parts.append(_table(a.segments.sort_values("gi_z", ascending=False)[cols]))
    if len(a.displacement):
        parts.append("<h2>Displacement</h2>" + _table(a.displacement))
    if a.best_towers is not None:
        parts.append("<h2>Where one more tower helps most</h2>")
        parts.append(_table(a.best_towers.drop(columns="geometry"), 5))
    return "\n".join(parts)


_CSS = """<style>
html, body {height: auto !important; margin: 0; font: 14px/1.45 sans-serif; color: #222;}
body {display: flex; flex-direction: column;}
.report-head {order: 0;} .folium-map {order: 1;} .report {order: 2;}
.folium-map {position: relative !important; height: 560px !important; width: 100% !important;}
.report, .report-head {max-width: 1100px; width: 100%; margin: 0 auto; padding: 8px 18px;}
.report img.plot {max-width: 100%; margin: 6px 8px 6px 0;}
.report table {border-collapse: collapse; margin: 6px 0 18px;}
.report td, .report th {padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: right;}
</style>"""


def _page(m, name: str, head: str, body: str):
    """A writer for the page: title and summary, then the map, then plots and tables."""
    import folium

    root = m.get_root()
    root.header.add_child(folium.Element(f"<title>{html.escape(name)}</title>"), name="title")
    root.header.add_child(folium.Element(_CSS), name="report_css")
    root.html.add_child(folium.Element(f'<div class="report-head">{head}</div>'), name="head")
    root.html.add_child(folium.Element(f'<div class="report">{body}</div>'), name="report")
    return lambda path: save_offline(m, path)


# -- counts report -------------------------------------------------------------------------
def _counts_plots(a: CountsAnalysis, top: int = 6) -> list[str]:
    wide = a.wide
    order = wide.sum().sort_values(ascending=False).index[:top]
    plots = []
    fig, ax = _figure(8.0, 3.4)
    months = np.arange(1, 13)
    for g in order:
        prof = a.seasonality[str(g)]["monthly_profile"]
        ax.plot(months, [prof[MONTH_NAMES[i - 1]] for i in months], marker="o", label=str(g))
    ax.axhline(1.0, color="#999", lw=0.8)
    ax.set_xticks(months, MONTH_NAMES)
    ax.set_ylabel("ratio to the yearly mean")
    ax.set_title("Monthly profile")
    ax.legend(fontsize=8, ncol=2)
    plots.append(_png(fig))

    fig, ax = _figure(8.0, 3.4)
    for g in order:
        s = wide[g]
        (line,) = ax.plot(s.index, s.to_numpy(), lw=0.6, alpha=0.6)
        tr = stl_trend(s, period=12).get("trend")
        if isinstance(tr, pd.Series):
            ax.plot(tr.index, tr.to_numpy(), lw=2, color=line.get_color(), label=str(g))
    ax.set_ylabel("per month")
    ax.set_title("Monthly counts and STL trend")
    ax.legend(fontsize=8, ncol=2)
    plots.append(_png(fig))

    fig, ax = _figure(8.0, 3.0)
    b = a.busiest
    groups = list(dict.fromkeys(b["busiest"]))
    colours = {g: f"C{i % 10}" for i, g in enumerate(groups)}
    ax.bar(b["year"], b["share"] * 100, color=[colours[g] for g in b["busiest"]])
    for g in groups:
        ax.bar([], [], color=colours[g], label=g)
    ax.set_ylabel("% of the year's total")
    ax.set_title("Busiest area each year")
    ax.legend(fontsize=8)
    plots.append(_png(fig))
    return plots


def write_counts_report(a: CountsAnalysis, out_dir: str | Path, *, title: str) -> dict[str, Path]:
    """Write ``report.html`` and ``seasonality.json`` for a counts analysis."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seasonality_path = out / "seasonality.json"
    _write_json(seasonality_path, a.seasonality)
    s = a.summary
    lines = [
        f"{len(s['groups'])} areas, {s['months']} months from {s['first_month']} to "
        f"{s['last_month']}, {s['total']:,.0f} in all.",
        f"All areas together peak in {s['all']['peak_month']} and are lowest in "
        f"{s['all']['trough_month']}; the trend is {s['all']['trend'].get('direction')}.",
    ]
    years = sorted(s["busiest_by_year"])
    if years:
        first, last = s["busiest_by_year"][years[0]], s["busiest_by_year"][years[-1]]
        lines.append(
            f"Busiest area: {first['group']} in {years[0]}, {last['group']} in {years[-1]}."
        )
    table = pd.DataFrame(
        [
            {
                "area": g,
                "total": v["total"],
                "peak": v["peak_month"],
                "peak ratio": v["peak_ratio"],
                "trough": v["trough_month"],
                "trough ratio": v["trough_ratio"],
                "trend %/yr": v["trend"].get("percent_per_year"),
                "trend": v["trend"].get("direction"),
            }
            for g, v in a.seasonality.items()
        ]
    ).sort_values("total", ascending=False)
    head = f"<h1>{html.escape(title)}</h1><ul>" + "".join(
        f"<li>{html.escape(x)}</li>" for x in lines
    )
    body = "\n".join(
        [
            '<div class="plots">' + "".join(_counts_plots(a)) + "</div>",
            "<h2>Seasonality by area</h2>",
            _table(table, 50),
            "<h2>Busiest area by year</h2>",
            _table(a.busiest, 60),
        ]
    )
    m = offline_map((39.0, -98.0), zoom_start=4)  # the boundary lines, for orientation
    report = _page(m, title, head + "</ul>", body)
    return {"report": report(out / "report.html"), "seasonality": seasonality_path}


def _jsonable(o):
    """Plain JSON values: numpy scalars unwrapped, NaN and infinities as null."""
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, float | np.floating):
        return float(o) if np.isfinite(o) else None
    if isinstance(o, pd.Timestamp):
        return o.isoformat()
    if isinstance(o, pd.Series | pd.DataFrame):
        return None
    return o


def _write_json(path: Path, data: dict) -> dict:
    """Write ``data`` as JSON and return it as read back (string keys, nulls for NaN)."""
    text = json.dumps(_jsonable(data), indent=2)
    path.write_text(text, encoding="utf-8")
    return json.loads(text)
