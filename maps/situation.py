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
    lat: float, lon: float, css: str, label: str, tooltip: str, colour: str, size: int = 12
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
    return folium.Marker((lat, lon), icon=icon, tooltip=tooltip)


def situation_map(
    site: Site,
    *,
    tiles_url: str | None = None,
    tiles_attribution: str = "local tiles",
    zoom_start: int = 11,
) -> folium.Map:
    """Draw a deployment on an offline folium map (Leaflet inlined, no CDN)."""
    frame = site.frame()
    border = site.border(frame)
    m = offline_map(
        site.sector.centre,
        zoom_start,
        tiles_url=tiles_url,
        tiles_attribution=tiles_attribution,
    )

    segs = folium.FeatureGroup(name="border segments")
    for seg in border.segments:
        pts = _latlon(frame, np.asarray(seg.line.coords))
        folium.PolyLine(
            pts,
            color=SEGMENT_COLOURS[seg.index % 2],
            weight=5,
            opacity=0.9,
            class_name="vigil-segment",
            tooltip=(f"{seg.segment_id}: km {seg.chainage_start_km:.1f}–{seg.chainage_end_km:.1f}"),
        ).add_to(segs)
    segs.add_to(m)

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
                tooltip=f"zone {z.id}: {z.name} (priority {z.priority})",
            ).add_to(zones)
        zones.add_to(m)

    if site.roads or site.corridors:
        ways = folium.FeatureGroup(name="roads and corridors")
        for r in site.roads:
            folium.PolyLine(
                [tuple(p) for p in r.path], color="#444", weight=2, tooltip=f"road {r.id}"
            ).add_to(ways)
        for c in site.corridors:
            folium.PolyLine(
                [tuple(p) for p in c.path],
                color="#984ea3",
                weight=2,
                dash_array="6 4",
                tooltip=f"corridor {c.id}: {c.groups_per_day:g} groups/day",
            ).add_to(ways)
        ways.add_to(m)

    towers = folium.FeatureGroup(name="towers and fields of view")
    for t in site.towers:
        cam = tower_camera(t, frame)
        fov = np.asarray(cam.footprint().exterior.coords)
        folium.Polygon(
            _latlon(frame, fov),
            color="#045a8d",
            weight=1,
            fill=True,
            fill_opacity=0.08,
            class_name="vigil-fov",
            tooltip=f"{t.id} field of view (pan {t.pan_deg:.0f}°, {t.range_m / 1000:g} km)",
        ).add_to(towers)
        _div_marker(
            t.lat,
            t.lon,
            "vigil-tower",
            t.id,
            f"tower {t.id}: mast {t.mast_height_m:g} m, {t.width}×{t.height} @ {t.fps:g} fps",
            "#045a8d",
            14,
        ).add_to(towers)
    towers.add_to(m)

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
        ).add_to(sensors)
    sensors.add_to(m)

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
                tooltip=f"{a.id} orbit, {a.altitude_agl_m:g} m above ground",
            ).add_to(air)
        air.add_to(m)

    if site.units:
        units = folium.FeatureGroup(name="patrol units")
        for u in site.units:
            _div_marker(
                u.lat, u.lon, "vigil-unit", u.id, f"unit {u.id} ({u.kind})", "#238b45", 12
            ).add_to(units)
        units.add_to(m)

    folium.LayerControl(collapsed=True).add_to(m)
    lon0, lat0, lon1, lat1 = (float(v) for v in border.segments_frame.total_bounds)
    m.fit_bounds([[lat0 - 0.03, lon0], [lat1 + 0.08, lon1]])
    return m


def write_situation_map(
    site: Site, out: str | Path, *, tiles_url: str | None = None, tiles_attribution: str = ""
) -> Path:
    """Draw a deployment and save it as one self-contained HTML file."""
    m = situation_map(site, tiles_url=tiles_url, tiles_attribution=tiles_attribution or "tiles")
    return save_offline(m, out)


CLASS_COLOURS = {"person": "#d7301f", "vehicle": "#2c7fb8", "animal": "#8c6d31", "unknown": "#777"}


def add_events(
    m: folium.Map,
    track_paths: dict[str, tuple[str, list[tuple[float, float]]]],
    crossings: list[dict],
    alerts: list[dict],
) -> folium.Map:
    """Draw tracks (class-coloured trails), crossings and alerts on a situation map.

    ``track_paths`` maps a track id to its class and ``(lat, lon)`` trail; ``crossings`` and
    ``alerts`` are dicts with at least ``lat``, ``lon`` and a label (``segment_id``/``direction``
    for crossings, ``alert_id``/``kind``/``priority``/``summary`` for alerts).
    """
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
            tooltip=f"track {tid} ({cls}), {len(pts)} updates",
        ).add_to(tracks)
    tracks.add_to(m)
    xs = folium.FeatureGroup(name="crossings")
    for c in crossings:
        _div_marker(
            c["lat"],
            c["lon"],
            "vigil-crossing",
            c.get("crossing_id", ""),
            f"{c.get('direction', '')} crossing on {c.get('segment_id', '')} "
            f"by {c.get('track_id', '')}",
            "#ff7f00" if c.get("direction") == "northbound" else "#999",
            10,
        ).add_to(xs)
    xs.add_to(m)
    al = folium.FeatureGroup(name="alerts")
    for a in alerts:
        _div_marker(
            a["lat"],
            a["lon"],
            "vigil-alert",
            a.get("alert_id", ""),
            f"P{a.get('priority', '?')} {a.get('kind', '')}: {a.get('summary', '')}",
            "#e31a1c" if a.get("kind") == "crossing" else "#fd8d3c",
            16,
        ).add_to(al)
    al.add_to(m)
    return m
