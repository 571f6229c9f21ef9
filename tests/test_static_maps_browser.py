"""The three static maps (``vigil map``, the demo's ``map.html``, the report of ``vigil analyze``)
open in headless Chromium with every off-machine request blocked, with no console error and no
uncaught exception, and every layer their layer control promises is there and drawn."""

from __future__ import annotations

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


def test_situation_map(site, map_file: Path, offline_page) -> None:
    errors = open_map(offline_page, map_file)
    layers = control_layers(offline_page, map_file)
    _every_layer_drawn(layers)
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
    layers = control_layers(offline_page, path)
    _every_layer_drawn(layers)
    gpkg = demo_dir / "events.gpkg"
    tracks = pyogrio.read_dataframe(gpkg, layer="tracks")
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
    layers = control_layers(offline_page, report_file)
    _every_layer_drawn(layers)
    assert layers["crossings per segment"].leaves > 10
    _clean(offline_page, errors)
