"""The situation map of a deployment: border segments, towers and their fields of view,
ground sensors, zones, the aircraft's orbit, patrol units, roads and corridors.

Each feature is drawn with a CSS class (``vigil-segment``, ``vigil-tower``, ``vigil-sensor``,
``vigil-unit``, ``vigil-zone``, ``vigil-fov``) so that a browser test, or a user's style
sheet, can find it.
"""

from __future__ import annotations

import html
from pathlib import Path

import folium
import numpy as np

from vigil.geo.frames import LocalFrame
from vigil.geo.site import Site, tower_camera
from vigil.maps.basemap import add_basemap
from vigil.maps.cartography import (
    MapTitle,
    add_cartography_css,
    add_country_labels,
    add_label,
    legend_of,
    local_span,
    local_time,
    popup,
    tip,
    title_of,
)
from vigil.maps.offline import offline_map, save_offline

MODALITY_COLOURS = {
    "seismic": "#8c510a",
    "magnetic": "#5e3c99",
    "pir": "#d7301f",
    "acoustic": "#2b8cbe",
}
SEGMENT_COLOURS = ("#b2182b", "#ef8a62")


def _latlon(frame: LocalFrame, xy: np.ndarray) -> list[tuple[float, float]]:
    lat, lon = frame.to_wgs84(xy[:, 0], xy[:, 1])
    return [(float(a), float(o)) for a, o in zip(lat, lon, strict=True)]


def _div_marker(
    lat: float,
    lon: float,
    css: str,
    label: str,
    tooltip: str,
    colour: str,
    size: int = 12,
    details: folium.Popup | None = None,
) -> folium.Marker:
    icon = folium.DivIcon(
        html=(
            f'<div class="{css}" title="{html.escape(label)}" style="width:{size}px;'
            f"height:{size}px;background:{colour};border:2px solid #fff;border-radius:50%;"
            'box-shadow:0 0 2px #000"></div>'
        ),
        icon_size=(size + 4, size + 4),
        icon_anchor=((size + 4) // 2, (size + 4) // 2),
        class_name=f"{css}-icon",
    )
    return folium.Marker((lat, lon), icon=icon, tooltip=tip(tooltip), popup=details)


def _bounds(border) -> tuple[float, float, float, float]:
    lon0, lat0, lon1, lat1 = (float(v) for v in border.segments_frame.total_bounds)
    return lat0, lon0, lat1, lon1


def situation_map(
    site: Site,
    *,
    tiles_url: str | None = None,
    tiles_attribution: str = "local tiles",
    zoom_start: int = 11,
    title: str | None = None,
    basemap: bool = True,
) -> folium.Map:
    """Draw a deployment on an offline folium map (Leaflet inlined, no CDN).

    The map has a title, a legend, the country names on either side of the border, labels
    that appear as the user zooms in (towers from zoom 11, segments from 13, sensors from 14)
    and a popup with the details of every feature on click. ``basemap`` draws the GeoNames
    places shipped with the package (:mod:`vigil.maps.basemap`); without it the base is the
    boundary line alone.
    """
    frame = site.frame()
    border = site.border(frame)
    tz = site.sector.timezone
    m = offline_map(
        site.sector.centre,
        zoom_start,
        tiles_url=tiles_url,
        tiles_attribution=tiles_attribution,
        base_layer=not basemap,
    )
    m.vigil_timezone = tz  # for add_events' popups
    m.vigil_entry = (border, frame)  # for add_events: which direction enters the US where
    add_cartography_css(m)
    MapTitle(
        title or f"Vigil · {site.sector.name} sector",
        f"deployment: {len(site.towers)} towers, {len(site.sensors)} ground sensors, "
        f"{len(border.segments)} border segments",
    ).add_to(m)
    legend = legend_of(m)
    legend.title = "Legend"
    lat0, lon0, lat1, lon1 = _bounds(border)
    if basemap:
        pad = 0.6
        add_basemap(m, (lat0 - pad, lon0 - pad, lat1 + pad, lon1 + pad), legend)
    else:
        legend.add("dash", "#555", "international boundary")
    add_country_labels(m, border)

    segs = folium.FeatureGroup(name="border segments")
    for seg in border.segments:
        pts = _latlon(frame, np.asarray(seg.line.coords))
        span = f"km {seg.chainage_start_km:.1f}–{seg.chainage_end_km:.1f}"
        folium.PolyLine(
            pts,
            color=SEGMENT_COLOURS[seg.index % 2],
            weight=5,
            opacity=0.9,
            class_name="vigil-segment",
            tooltip=tip(f"{seg.segment_id}: {span}"),
            popup=popup(
                f"border segment {seg.segment_id}",
                [("chainage", span), ("length", f"{seg.length_m / 1000:.2f} km")],
            ),
        ).add_to(segs)
        mid = pts[len(pts) // 2]
        add_label(segs, mid[0], mid[1], seg.segment_id, "segment")
    segs.add_to(m)
    legend.add("line", SEGMENT_COLOURS[0], "border segments (alternating shades)")

    if site.zones:
        zones = folium.FeatureGroup(name="zones")
        for z in site.zones:
            folium.Polygon(
                [tuple(p) for p in z.polygon],
                color="#1a9850",
                fill=True,
                fill_opacity=0.15,
                weight=2,
                class_name="vigil-zone",
                tooltip=tip(f"zone {z.id}: {z.name} (priority {z.priority})"),
                popup=popup(f"zone {z.name}", [("id", z.id), ("priority", str(z.priority))]),
            ).add_to(zones)
        zones.add_to(m)
        legend.add("area", "#1a9850", "zones")

    if site.roads or site.corridors:
        ways = folium.FeatureGroup(name="roads and corridors")
        for r in site.roads:
            folium.PolyLine(
                [tuple(p) for p in r.path],
                color="#444",
                weight=2,
                class_name="vigil-road",
                tooltip=tip(f"road {r.id}"),
                popup=popup(f"road {r.id}", []),
            ).add_to(ways)
        for c in site.corridors:
            folium.PolyLine(
                [tuple(p) for p in c.path],
                color="#984ea3",
                weight=2,
                dash_array="6 4",
                class_name="vigil-corridor",
                tooltip=tip(f"corridor {c.id}: {c.groups_per_day:g} groups/day"),
                popup=popup(
                    f"corridor {c.id}", [("simulated use", f"{c.groups_per_day:g} groups/day")]
                ),
            ).add_to(ways)
        ways.add_to(m)
        if site.roads:
            legend.add("line", "#444", "roads")
        if site.corridors:
            legend.add("dash", "#984ea3", "smuggling corridors (simulated)")

    towers = folium.FeatureGroup(name="towers and fields of view")
    for t in site.towers:
        cam = tower_camera(t, frame)
        fov = np.asarray(cam.footprint().exterior.coords)
        details = [
            ("mast", f"{t.mast_height_m:g} m"),
            ("camera", f"{t.width}×{t.height} @ {t.fps:g} fps"),
            ("pan", f"{t.pan_deg:.0f}°"),
            ("range", f"{t.range_m / 1000:g} km"),
            ("position", f"{t.lat:.5f}, {t.lon:.5f}"),
        ]
        folium.Polygon(
            _latlon(frame, fov),
            color="#045a8d",
            weight=1,
            fill=True,
            fill_opacity=0.08,
            class_name="vigil-fov",
            tooltip=tip(f"{t.id} field of view (pan {t.pan_deg:.0f}°, {t.range_m / 1000:g} km)"),
            popup=popup(f"tower {t.id}: field of view", details),
        ).add_to(towers)
        _div_marker(
            t.lat,
            t.lon,
            "vigil-tower",
            t.id,
            f"tower {t.id}: mast {t.mast_height_m:g} m, {t.width}×{t.height} @ {t.fps:g} fps",
            "#045a8d",
            14,
            popup(f"tower {t.id}", details),
        ).add_to(towers)
        add_label(towers, t.lat, t.lon, t.id, "tower")
    towers.add_to(m)
    legend.add("dot", "#045a8d", "camera tower")
    legend.add("area", "#045a8d", "camera field of view")

    sensors = folium.FeatureGroup(name="ground sensors")
    for s in site.sensors:
        _div_marker(
            s.lat,
            s.lon,
            "vigil-sensor",
            s.id,
            f"sensor {s.id}: {s.modality}, radius {s.radius_m:g} m",
            MODALITY_COLOURS[s.modality],
            8,
            popup(
                f"ground sensor {s.id}",
                [
                    ("modality", s.modality),
                    ("radius", f"{s.radius_m:g} m"),
                    ("position", f"{s.lat:.5f}, {s.lon:.5f}"),
                ],
            ),
        ).add_to(sensors)
        add_label(sensors, s.lat, s.lon, s.id, "sensor")
    sensors.add_to(m)
    for modality in sorted({s.modality for s in site.sensors}):
        legend.add("dot", MODALITY_COLOURS[modality], f"ground sensor: {modality}")

    if site.aircraft:
        air = folium.FeatureGroup(name="aircraft")
        for a in site.aircraft:
            folium.Circle(
                tuple(a.orbit_centre),
                radius=a.orbit_radius_m,
                color="#e7298a",
                weight=2,
                fill=False,
                class_name="vigil-orbit",
                tooltip=tip(f"{a.id} orbit, {a.altitude_agl_m:g} m above ground"),
                popup=popup(
                    f"aircraft {a.id}",
                    [
                        ("orbit radius", f"{a.orbit_radius_m / 1000:g} km"),
                        ("altitude", f"{a.altitude_agl_m:g} m above ground"),
                    ],
                ),
            ).add_to(air)
        air.add_to(m)
        legend.add("ring", "#e7298a", "aircraft orbit")

    if site.units:
        units = folium.FeatureGroup(name="patrol units")
        for u in site.units:
            _div_marker(
                u.lat,
                u.lon,
                "vigil-unit",
                u.id,
                f"unit {u.id} ({u.kind})",
                "#238b45",
                12,
                popup(f"patrol unit {u.id}", [("kind", u.kind)]),
            ).add_to(units)
            add_label(units, u.lat, u.lon, u.id, "unit")
        units.add_to(m)
        legend.add("dot", "#238b45", "patrol unit")

    folium.LayerControl(collapsed=True).add_to(m)
    m.fit_bounds([[lat0 - 0.03, lon0], [lat1 + 0.08, lon1]])
    return m


def write_situation_map(
    site: Site,
    out: str | Path,
    *,
    tiles_url: str | None = None,
    tiles_attribution: str = "",
    basemap: bool = True,
) -> Path:
    """Draw a deployment and save it as one self-contained HTML file."""
    m = situation_map(
        site,
        tiles_url=tiles_url,
        tiles_attribution=tiles_attribution or "tiles",
        basemap=basemap,
    )
    return save_offline(m, out)


CLASS_COLOURS = {"person": "#d7301f", "vehicle": "#2c7fb8", "animal": "#8c6d31", "unknown": "#777"}


def _entry_directions(m: folium.Map, crossings: list[dict]) -> list[str]:
    """The compass direction that enters the US at each crossing's point (``northbound`` on
    the US-Mexico line, ``southbound`` on most of the northern one), from the border that
    :func:`situation_map` recorded; ``northbound`` for a map made elsewhere."""
    recorded = getattr(m, "vigil_entry", None)
    if recorded is None or not crossings:
        return ["northbound"] * len(crossings)
    border, frame = recorded
    x, y = frame.to_local(
        [float(c["lat"]) for c in crossings], [float(c["lon"]) for c in crossings]
    )
    return [str(d) for d in border.entry_direction(x, y)]


def add_events(
    m: folium.Map,
    track_paths: dict[str, tuple[str, list[tuple[float, float]]]],
    crossings: list[dict],
    alerts: list[dict],
    *,
    timezone: str | None = None,
) -> folium.Map:
    """Draw tracks (class-coloured trails), crossings and alerts on a situation map.

    ``track_paths`` maps a track id to its class and ``(lat, lon)`` trail; ``crossings`` and
    ``alerts`` are dicts with at least ``lat``, ``lon`` and a label (``segment_id``/``direction``
    for crossings, ``alert_id``/``kind``/``priority``/``summary`` for alerts) and ``time``
    (UTC seconds), shown in ``timezone`` (default: the sector's, from :func:`situation_map`).
    The layer control is rendered after these layers (:func:`vigil.maps.offline.render_offline`).
    """
    tz = timezone or getattr(m, "vigil_timezone", "UTC")
    legend = legend_of(m)
    tracks = folium.FeatureGroup(name="tracks")
    for tid, (cls, pts) in track_paths.items():
        if len(pts) < 2:
            continue
        folium.PolyLine(
            pts,
            color=CLASS_COLOURS.get(cls, "#777"),
            weight=2,
            opacity=0.8,
            class_name="vigil-track",
            tooltip=tip(f"track {tid} ({cls}), {len(pts)} updates"),
            popup=popup(f"track {tid}", [("class", str(cls)), ("updates", str(len(pts)))]),
        ).add_to(tracks)
    if tracks._children:  # the layer menu lists only what is drawn
        tracks.add_to(m)
    for cls in sorted({cls for cls, pts in track_paths.values() if len(pts) >= 2}):
        legend.add("line", CLASS_COLOURS.get(cls, "#777"), f"track: {cls}")
    xs = folium.FeatureGroup(name="crossings")
    entries = _entry_directions(m, crossings)
    for c, entry in zip(crossings, entries, strict=True):
        direction = str(c.get("direction", ""))
        colour = "#ff7f00" if direction == entry else "#999"
        _div_marker(
            c["lat"],
            c["lon"],
            "vigil-crossing",
            str(c.get("crossing_id", "")),
            f"{direction} crossing on {c.get('segment_id', '')} by {c.get('track_id', '')}",
            colour,
            10,
            popup(
                f"{direction} crossing {c.get('crossing_id', '')}",
                [
                    ("time", local_time(c.get("time"), tz)),
                    ("segment", str(c.get("segment_id", ""))),
                    ("track", str(c.get("track_id", ""))),
                    ("confidence", f"{float(c.get('confidence', 1.0)):.2f}"),
                ],
            ),
        ).add_to(xs)
        legend.add(
            "dot", colour, f"{direction} crossing" + (" into the US" if direction == entry else "")
        )
    if xs._children:  # the layer menu lists only what is drawn
        xs.add_to(m)
    al = folium.FeatureGroup(name="alerts")
    for a in alerts:
        colour = "#e31a1c" if a.get("kind") == "crossing" else "#fd8d3c"
        _div_marker(
            a["lat"],
            a["lon"],
            "vigil-alert",
            str(a.get("alert_id", "")),
            f"P{a.get('priority', '?')} {a.get('kind', '')}: {a.get('summary', '')}",
            colour,
            16,
            popup(
                f"alert {a.get('alert_id', '')}: {a.get('kind', '')}",
                [
                    ("time", local_time(a.get("time"), tz)),
                    ("priority", str(a.get("priority", "?"))),
                    ("state", str(a.get("state", ""))),
                    ("segment", str(a.get("segment_id") or "")),
                    ("zone", str(a.get("zone") or "")),
                    ("track", str(a.get("track_id") or "")),
                    ("summary", str(a.get("summary", ""))),
                ],
            ),
        ).add_to(al)
        legend.add("dot", colour, "crossing alert" if a.get("kind") == "crossing" else "alert")
    if al._children:  # the layer menu lists only what is drawn
        al.add_to(m)
    title = title_of(m)
    if title is not None:
        times = [float(e["time"]) for e in (*crossings, *alerts) if e.get("time") is not None]
        when = local_span(min(times), max(times), tz) if times else ""
        title.subtitle = (
            f"{len(tracks._children)} tracks, {len(crossings)} crossings, {len(alerts)} alerts"
            + (f" · {when}" if when else "")
        )
    return m
