"""What makes the static maps readable (title, legend, country names, places, popups) and the
layer-control order, checked on the rendered HTML; the browser checks are in
tests/test_static_maps_browser.py."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from vigil.cli import main
from vigil.config import load_default
from vigil.geo.border import Border
from vigil.geo.frames import LocalFrame
from vigil.maps.basemap import (
    _boundary_lines,
    countries,
    extract_countries,
    extract_places,
    place_rank,
    places,
    places_in,
)
from vigil.maps.cartography import country_label_points, local_span, local_time
from vigil.maps.offline import render_offline
from vigil.maps.situation import add_events, situation_map

HOSTILE = '<img src=x onerror="alert(1)">'


@pytest.fixture(scope="module")
def site():
    return load_default().site


def _side(border: Border, point: tuple[float, float]) -> int:
    x, y = border.frame.to_local(*point)
    return int(border.side(x, y)[0])


def test_country_names_fall_on_their_side_of_the_us_mexico_border(site) -> None:
    border = site.border()
    points = country_label_points(border)
    assert set(points) == {"UNITED STATES", "MEXICO"}
    assert _side(border, points["UNITED STATES"]) == 1
    assert _side(border, points["MEXICO"]) == -1
    assert points["UNITED STATES"][0] > points["MEXICO"][0]  # north of it, in Arizona


def test_country_names_fall_on_their_side_of_the_us_canada_border() -> None:
    border = Border(
        "blaine", LocalFrame(49.0, -122.5), "us_ca", start=(49.0, -122.75), end=(49.0, -122.25)
    )
    points = country_label_points(border)
    assert set(points) == {"UNITED STATES", "CANADA"}
    assert _side(border, points["UNITED STATES"]) == 1
    assert _side(border, points["CANADA"]) == -1
    assert points["CANADA"][0] > points["UNITED STATES"][0]


def test_shipped_places_name_both_nogales() -> None:
    near = places_in((31.2, -111.1, 31.5, -110.8))
    named = {(p[0], p[1]) for p in near}
    assert {("Nogales", "US"), ("Nogales", "MX")} <= named
    assert all(p[1] in {"US", "MX", "CA"} for p in places())
    assert [p[3] for p in places()] == sorted((p[3] for p in places()), reverse=True)
    assert place_rank(264_782) == 1 and place_rank(20_252) == 2 and place_rank(1_191) == 3


def test_extract_places_keeps_the_border_band_only() -> None:
    def city(gid, name, cc, lat, lon, pop):
        return {
            "geonameid": gid, "name": name, "countrycode": cc, "admin1code": "x",
            "latitude": lat, "longitude": lon, "population": pop,
        }  # fmt: skip

    cities = {
        "1": city(1, "Nogales", "US", 31.34035, -110.93425, 20252),
        "2": city(2, "Phoenix", "US", 33.44838, -112.07404, 1_600_000),  # ~230 km away
        "3": city(3, "Tijuana", "MX", 32.5027, -117.00371, 1_922_523),
        "4": city(4, "Guatemala", "GT", 14.64072, -90.51327, 994_938),  # not US/MX/CA
        "5": city(5, "Blaine", "US", 48.99372, -122.74712, 5_000),  # by the US-Canada line
    }
    rows = extract_places(cities, _boundary_lines(), max_km=100.0)
    assert [r[0] for r in rows] == ["Tijuana", "Nogales", "Blaine"]  # largest first
    assert rows[1][4:6] == [31.34035, -110.93425]


def test_blank_fallback_has_no_places(tmp_path: Path) -> None:
    blank, full = tmp_path / "blank.html", tmp_path / "full.html"
    assert main(["map", "--out", str(blank), "--basemap", "none"]) == 0
    assert main(["map", "--out", str(full)]) == 0
    assert "places (GeoNames)" not in blank.read_text()
    assert "countries (Natural Earth)" not in blank.read_text()
    text = full.read_text()
    assert "places (GeoNames)" in text and "Nogales" in text and "CC BY 4.0" in text
    assert "countries (Natural Earth)" in text
    for page in (blank, full):  # both are readable without hovering
        text = page.read_text()
        assert "vigil-title" in text and "vigil-legend" in text and "UNITED STATES" in text


def test_layer_control_is_rendered_after_every_layer(site) -> None:
    """The demo adds its layers after the control; the control's script must still come last."""
    m = situation_map(site, basemap=False)
    add_events(
        m,
        {"tr1": ("person", [(31.33, -110.95), (31.34, -110.95)])},
        [{"lat": 31.333, "lon": -110.95, "crossing_id": "c1", "direction": "northbound",
          "time": 1_780_000_000.0}],
        [{"lat": 31.333, "lon": -110.95, "alert_id": "a1", "kind": "crossing", "priority": 1,
          "time": 1_780_000_000.0}],
    )  # fmt: skip
    page = render_offline(m)
    control = page.index("L.control.layers(")
    defined = [
        mt.start() for mt in re.finditer(r"var feature_group_[0-9a-f]+ = L\.featureGroup", page)
    ]
    assert defined and max(defined) < control
    assert "crossing alert" in page and "northbound crossing" in page  # legend entries
    assert "2026-05-28 13:26:40 -07:00 (America/Phoenix)" in page  # popup times, local


def test_strings_from_files_and_the_wire_are_escaped(site) -> None:
    zone = msgspec.structs.replace(site.zones[0], name=HOSTILE)
    hostile_site = msgspec.structs.replace(site, zones=[zone, *site.zones[1:]])
    m = situation_map(hostile_site, title=HOSTILE)
    add_events(
        m, {}, [],
        [{"lat": 31.333, "lon": -110.95, "alert_id": "a1", "kind": "zone", "priority": 2,
          "summary": HOSTILE, "time": 1_780_000_000.0}],
    )  # fmt: skip
    page = render_offline(m)
    assert "<img src=x" not in page
    assert "&lt;img src=x" in page


def test_local_time_names_its_offset() -> None:
    assert local_time(0.0, "America/Phoenix") == "1969-12-31 17:00:00 -07:00 (America/Phoenix)"
    assert local_time(None, "UTC") == "?"
    assert local_time(float("nan"), "UTC") == "?"
    assert local_time(0.0, "Not/AZone").endswith("(UTC)")
    phoenix = "America/Phoenix"
    assert (
        local_span(0.0, 3600.0, phoenix) == "1969-12-31 17:00:00–18:00:00 -07:00 (America/Phoenix)"
    )
    assert local_span(0.0, 86_400.0, "UTC") == (
        "1970-01-01 00:00:00 +00:00 (UTC) – 1970-01-02 00:00:00 +00:00 (UTC)"
    )


def test_shipped_countries_hold_their_towns() -> None:
    import shapely

    areas = {code: geom for code, _name, geom in countries()}
    assert set(areas) == {"US", "MX", "CA"}
    assert areas["US"].contains(shapely.Point(-110.93425, 31.34035))  # Nogales, Arizona
    assert areas["MX"].contains(shapely.Point(-110.94217, 31.30862))  # Nogales, Sonora
    assert areas["CA"].contains(shapely.Point(-123.1207, 49.2827))  # Vancouver
    assert not areas["US"].contains(shapely.Point(-110.94217, 31.30862))


def test_extract_countries_decodes_topojson_arcs() -> None:
    # a 0.2° square north of Nogales as two quantised arcs, the second used reversed
    topology = {
        "transform": {"scale": [0.01, 0.01], "translate": [-111.0, 31.4]},
        "arcs": [[[0, 0], [20, 0], [0, 20]], [[0, 0], [0, 20], [20, 0]]],
        "objects": {"countries": {"geometries": [
            {"type": "Polygon", "id": "840", "arcs": [[0, -2]],
             "properties": {"name": "United States of America"}},
            {"type": "Polygon", "id": "250", "arcs": [[0, -2]], "properties": {"name": "France"}},
        ]}},
    }  # fmt: skip
    doc = extract_countries(topology, _boundary_lines())
    assert [f["properties"]["country"] for f in doc["features"]] == ["US"]
    from shapely.geometry import shape

    square = shape(doc["features"][0]["geometry"])
    assert square.area == pytest.approx(0.04, rel=1e-6)
    assert square.bounds == pytest.approx((-111.0, 31.4, -110.8, 31.6))


def test_crossings_into_the_us_stand_out_on_either_border(site) -> None:
    """Orange marks the direction that enters the US at the crossing's place: northbound on
    the US-Mexico line, southbound on the 45th parallel (Swanton); the other direction is grey."""
    from vigil.config import load

    swanton = load(Path(__file__).resolve().parents[1] / "vigil/data/swanton.toml").site
    cases = [
        (site, 31.333, -110.95, "northbound", "southbound"),
        (swanton, 45.0030, -73.150, "southbound", "northbound"),
    ]
    for where, lat, lon, entry, leaving in cases:
        m = situation_map(where, basemap=False)
        add_events(
            m, {},
            [{"lat": lat, "lon": lon, "crossing_id": "in", "direction": entry},
             {"lat": lat, "lon": lon, "crossing_id": "out", "direction": leaving}],
            [],
        )  # fmt: skip
        page = render_offline(m)
        assert f"{entry} crossing into the US" in page
        assert f"{leaving} crossing into the US" not in page and f"{leaving} crossing" in page
