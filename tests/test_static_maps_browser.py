"""The three static maps (``vigil map``, the demo's ``map.html``, the report of ``vigil analyze``)
open in headless Chromium with every off-machine request blocked, with no console error and no
uncaught exception, and every layer their layer control promises is there and drawn."""

from __future__ import annotations

import re
from pathlib import Path

import pyogrio
import pytest
from static_map_page import control_layers, open_map

from vigil.cli import main
from vigil.config import load_default
from vigil.geo.patterns.synthetic import corridor_rates, night_schedule, simulate_crossings

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site():
    return load_default().site


@pytest.fixture(scope="module")
def map_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("situation") / "map.html"
    assert main(["map", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    args = ["demo", "--hours", "0.05", "--seed", "1", "--fps", "1", "--quiet", "--out", str(out)]
    assert main(args) == 0
    return out


@pytest.fixture(scope="module")
def report_file(site, tmp_path_factory) -> Path:
    border = site.border()
    rates = corridor_rates(len(border.segments), [(5, 6.0, 1.5)])
    table, _ = simulate_crossings(
        border, days=30, rates=rates, hourly=night_schedule(2),
        timezone=site.sector.timezone, seed=3,
    )  # fmt: skip
    root = tmp_path_factory.mktemp("analyze")
    table.to_csv(root / "crossings.csv", index=False)
    assert main(["analyze", str(root / "crossings.csv"), "--out", str(root / "out")]) == 0
    return root / "out" / "report.html"


def _clean(offline_page, errors: list[str]) -> None:
    assert errors == [], f"uncaught exceptions in the page: {errors}"
    assert offline_page.console_errors == [], offline_page.console_errors
    assert offline_page.blocked == [], f"requests left the machine: {offline_page.blocked}"


def _every_layer_drawn(layers) -> None:
    for layer in layers.values():
        assert layer.on, f"layer {layer.name!r} is not on the map"
        assert layer.leaves > 0, f"layer {layer.name!r} is empty"
        assert layer.drawn == layer.leaves, layer


def _readable(offline_page, title: str, legend: list[str]) -> None:
    """Title, legend entries, country names and the GeoNames basemap, without hovering."""
    page = offline_page.page
    assert title in page.locator(".vigil-title").inner_text()
    entries = page.locator(".vigil-legend-entry").all_inner_texts()
    basemap = ["town (GeoNames)", "United States (Natural Earth)", "Mexico (Natural Earth)"]
    for entry in ["international boundary", *basemap, *legend]:
        assert entry in entries, (entry, entries)
    countries = sorted(page.locator(".vigil-country").all_inner_texts())
    assert countries == ["MEXICO", "UNITED STATES"], countries
    us, mx = (
        page.locator(f".vigil-country:text-is('{c}')").bounding_box() for c in countries[::-1]
    )
    assert us["y"] < mx["y"], "the United States is drawn north of Mexico"
    names = page.locator(".vigil-place-name").all_inner_texts()
    assert names.count("Nogales") == 2, names  # Nogales, Arizona and Nogales, Sonora
    credits = page.locator(".leaflet-control-attribution").inner_text()
    assert "GeoNames" in credits and "Natural Earth" in credits, credits


def test_situation_map(site, map_file: Path, offline_page) -> None:
    errors = open_map(offline_page, map_file)
    _readable(offline_page, "tucson sector", ["camera tower", "ground sensor: magnetic"])
    page = offline_page.page
    # labels by zoom: towers named at the opening zoom, segments only when zoomed in
    assert page.locator(".vigil-label-tower").first.is_visible()
    assert not page.locator(".vigil-label-segment").first.is_visible()
    page.locator(".vigil-tower").first.click()
    assert "mast" in page.locator(".leaflet-popup-content").inner_text()
    name = re.search(r"var (map_[0-9a-f]+) = L\.map\(", map_file.read_text()).group(1)
    page.evaluate(f"{name}.setZoom(14, {{animate: false}})")
    page.wait_for_timeout(300)
    assert page.locator(".vigil-label-segment").first.is_visible()
    assert page.locator(".vigil-label-sensor").first.is_visible()
    layers = control_layers(offline_page, map_file)
    _every_layer_drawn(layers)
    assert layers["places (GeoNames)"].classes["vigil-place"] >= 5
    assert layers["countries (Natural Earth)"].classes["vigil-country-area"] == 2  # US, MX
    assert layers["border segments"].classes["vigil-segment"] == len(site.border().segments)
    towers = layers["towers and fields of view"].classes
    assert towers["vigil-tower"] == towers["vigil-fov"] == len(site.towers) == 6
    assert layers["ground sensors"].classes["vigil-sensor"] == len(site.sensors) == 60
    assert layers["zones"].classes["vigil-zone"] == len(site.zones)
    assert layers["patrol units"].classes["vigil-unit"] == len(site.units)
    assert layers["aircraft"].classes["vigil-orbit"] == len(site.aircraft)
    _clean(offline_page, errors)


def test_demo_map(site, demo_dir: Path, offline_page) -> None:
    """The demo's map draws its tracks, crossings and alerts (a script error stopped it)."""
    path = demo_dir / "map.html"
    errors = open_map(offline_page, path)
    _readable(offline_page, "tucson sector", ["northbound crossing into the US", "crossing alert"])
    page = offline_page.page
    page.locator(".vigil-crossing").first.click()
    details = page.locator(".leaflet-popup-content").inner_text()
    assert "segment" in details and "America/" in details, details  # local time with its zone
    layers = control_layers(offline_page, path)
    _every_layer_drawn(layers)
    gpkg = demo_dir / "events.gpkg"
    tracks = pyogrio.read_dataframe(gpkg, layer="track_paths")
    trails = int((tracks.geometry.geom_type == "LineString").sum())
    crossings = len(pyogrio.read_dataframe(gpkg, layer="crossings"))
    alerts = len(pyogrio.read_dataframe(gpkg, layer="alerts"))
    assert trails > 0 and crossings > 0 and alerts > 0, (trails, crossings, alerts)
    assert layers["tracks"].classes["vigil-track"] == trails
    assert layers["crossings"].classes["vigil-crossing"] == crossings
    assert layers["alerts"].classes["vigil-alert"] == alerts
    assert layers["towers and fields of view"].classes["vigil-tower"] == len(site.towers)
    _clean(offline_page, errors)


def test_report_map(report_file: Path, offline_page) -> None:
    errors = open_map(offline_page, report_file)
    _readable(offline_page, "Crossings", ["no crossings"])
    page = offline_page.page
    box = page.locator("path.vigil-segment").nth(5).bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    assert "per day" in page.locator(".leaflet-popup-content").inner_text()
    layers = control_layers(offline_page, report_file)
    _every_layer_drawn(layers)
    assert layers["crossings per segment"].classes["vigil-segment"] > 10
    _clean(offline_page, errors)


HOSTILE = (
    "`;window.__pwned=1;` ${window.__pwned=2} \\` </script><img src=x onerror=window.__pwned=3>"
)


def test_hostile_names_stay_text(site, tmp_path: Path, offline_page) -> None:
    """A zone name or alert summary can break neither the HTML nor folium's script literals."""
    import msgspec

    from vigil.maps.offline import save_offline
    from vigil.maps.situation import add_events, situation_map

    zone = msgspec.structs.replace(site.zones[0], name=HOSTILE)
    m = situation_map(msgspec.structs.replace(site, zones=[zone, *site.zones[1:]]), title=HOSTILE)
    alert = {"lat": 31.36, "lon": -110.95, "alert_id": "a1", "kind": "zone", "priority": 2,
             "summary": HOSTILE, "time": 1_780_000_000.0}  # fmt: skip
    add_events(m, {}, [], [alert])
    path = save_offline(m, tmp_path / "hostile.html")
    errors = open_map(offline_page, path)
    page = offline_page.page
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert HOSTILE in page.locator(".vigil-title").inner_text()
    page.locator(".vigil-alert").first.click()
    assert HOSTILE in page.locator(".leaflet-popup-content").inner_text()
    page.locator(".vigil-alert").first.hover()
    assert HOSTILE in page.locator(".leaflet-tooltip").inner_text()
    _every_layer_drawn(control_layers(offline_page, path))
    _clean(offline_page, errors)
