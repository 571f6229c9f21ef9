"""The map of the planners' crossing report (:mod:`vigil.maps.report_crossings`): segments
shaded by crossings per day, Gi* hot and cold segments, inland cells, corridors and footprints,
with a title, a legend, the country names on either side, GeoNames places and a popup with
each segment's figures on click."""

from __future__ import annotations

from collections.abc import Sequence

import folium
import numpy as np
from shapely.geometry.base import BaseGeometry

from vigil.geo.border import Border
from vigil.geo.patterns.analysis import CrossingAnalysis
from vigil.geo.patterns.hotspots import cell_polygon
from vigil.maps.basemap import add_basemap
from vigil.maps.cartography import (
    MapTitle,
    add_cartography_css,
    add_country_labels,
    add_label,
    legend_of,
    popup,
    tip,
)
from vigil.maps.offline import offline_map
from vigil.maps.report_page import COLD_COLOUR, HOT_COLOUR, colour_scale


def _segment_popup(row) -> folium.Popup:
    return popup(
        f"segment {row.segment_id}",
        [
            ("crossings", f"{int(row.crossings):,}"),
            ("per day", f"{float(row.per_day):.2f}"),
            ("Gi* z", f"{float(row.gi_z):.2f}" if np.isfinite(row.gi_z) else "–"),
            ("hotspot", str(row.hotspot)),
        ],
    )


def _segments(m: folium.Map, segs, legend) -> None:
    colours = colour_scale(segs["per_day"].to_numpy())
    layer = folium.FeatureGroup(name="crossings per segment", show=True)
    cols = ["segment_id", "crossings", "per_day", "gi_z", "class", "geometry"]
    data = segs[cols].rename(columns={"class": "hotspot"})
    for row, colour in zip(data.itertuples(index=False), colours, strict=True):
        if row.geometry is None or row.geometry.is_empty:
            continue
        lines = getattr(row.geometry, "geoms", [row.geometry])
        for line in lines:
            pts = [(lat, lon) for lon, lat in np.asarray(line.coords)[:, :2]]
            folium.PolyLine(
                pts,
                color=colour,
                weight=7,
                opacity=0.9,
                class_name="vigil-segment",
                tooltip=tip(
                    f"{row.segment_id}: {int(row.crossings)} crossings, {row.per_day:.2f}/day"
                ),
                popup=_segment_popup(row),
            ).add_to(layer)
        mid = line.interpolate(0.5, normalized=True)
        add_label(layer, mid.y, mid.x, str(row.segment_id), "segment")
    layer.add_to(m)
    top = float(segs["per_day"].max()) if len(segs) else 0.0
    low, high = colour_scale(np.array([0.0, max(top, 1e-9)]))
    legend.add("line", low, "no crossings")
    legend.add("line", high, f"most crossings ({top:.2f} per day)")


def _hot_halos(m: folium.Map, segs, legend) -> None:
    hot = segs[segs["class"] != "-"]
    if len(hot):
        hl = folium.FeatureGroup(name="Gi* hot and cold segments", show=True)
        for row in hot.rename(columns={"class": "hotspot"}).itertuples(index=False):
            colour = HOT_COLOUR if row.hotspot == "hot" else COLD_COLOUR
            for line in getattr(row.geometry, "geoms", [row.geometry]):
                folium.PolyLine(
                    [(la, lo) for lo, la in np.asarray(line.coords)[:, :2]],
                    color=colour,
                    weight=14,
                    opacity=0.35,
                    class_name=f"vigil-gi-{row.hotspot}",
                    tooltip=tip(f"{row.segment_id}: Gi* {row.hotspot}"),
                ).add_to(hl)
        hl.add_to(m)
        present = set(hot["class"])
        if "hot" in present:
            legend.add("line", HOT_COLOUR, "Gi* hot segment (halo)")
        if "cold" in present:
            legend.add("line", COLD_COLOUR, "Gi* cold segment (halo)")


def crossing_map(
    analysis: CrossingAnalysis,
    segs,
    border: Border | None,
    footprints: Sequence[BaseGeometry] | None,
    title: str = "Crossings",
    *,
    basemap: bool = True,
) -> folium.Map:
    """The report's folium map; ``segs`` is the segments layer (WGS84 lines or None)."""
    if border is not None:
        lat, lon = border.frame.lat0, border.frame.lon0
    elif len(analysis.cells):
        lat, lon = float(analysis.cells["lat"].mean()), float(analysis.cells["lon"].mean())
    else:
        lat, lon = 31.33, -110.94
    m = offline_map((lat, lon), zoom_start=11, base_layer=not (basemap and border is not None))
    add_cartography_css(m)
    n = int(analysis.segments["crossings"].sum()) if len(analysis.segments) else 0
    MapTitle(title, f"{n:,} crossings; click a segment for its figures").add_to(m)
    legend = legend_of(m)
    legend.title = "Legend"
    if border is not None:
        lon0, lat0, lon1, lat1 = (float(v) for v in segs.total_bounds)
        if basemap:
            add_basemap(m, (lat0 - 0.6, lon0 - 0.6, lat1 + 0.6, lon1 + 0.6), legend)
    if not (basemap and border is not None):
        legend.add("dash", "#555", "international boundary")
    if border is not None:
        add_country_labels(m, border)
        m.fit_bounds([[lat0, lon0], [lat1, lon1]])
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
                class_name="vigil-cell",
                tooltip=tip(f"{c['cell']}: {int(c['tracks'])} ({c['class']})"),
                popup=popup(
                    f"H3 cell {c['cell']}",
                    [("tracks", str(int(c["tracks"]))), ("hotspot", str(c["class"]))],
                ),
            ).add_to(cl)
        cl.add_to(m)
        legend.add("area", colour_scale(np.array([1.0]), "PuRd")[0], "inland cell with tracks")
    if len(analysis.corridors):
        co = folium.FeatureGroup(name="corridors", show=False)
        for r in analysis.corridors.itertuples():
            folium.GeoJson(
                r.geometry.__geo_interface__,
                style_function=lambda _f: {"color": "#542788", "weight": 2, "fillOpacity": 0.1},
                tooltip=tip(f"corridor {r.corridor}: up to {r.tracks_max}"),
            ).add_to(co)
        co.add_to(m)
        legend.add("area", "#542788", "corridor (hidden at first: layer menu)")
    if footprints and border is not None:
        fl = folium.FeatureGroup(name="tower and sensor footprints", show=True)
        # a viewshed is many polygons with holes (what hills hide): each drawn with its holes
        parts = [p for fp in footprints for p in getattr(fp, "geoms", [fp])]
        for part in parts:
            if part.is_empty or part.geom_type != "Polygon":
                continue
            rings = []
            for ring in (part.exterior, *part.interiors):
                x, y = np.asarray(ring.coords).T
                la, lo = border.frame.to_wgs84(x, y)
                rings.append(list(zip(la, lo, strict=True)))
            folium.Polygon(
                rings if len(rings) > 1 else rings[0],
                color="#1a9850",
                weight=1,
                fill=True,
                fill_opacity=0.12,
                class_name="vigil-footprint",
            ).add_to(fl)
        fl.add_to(m)
        legend.add("area", "#1a9850", "tower and sensor footprints")
    if border is not None:  # the segments on top, so that a click reaches them
        _hot_halos(m, segs, legend)
        _segments(m, segs, legend)
    folium.LayerControl(collapsed=False).add_to(m)
    return m
