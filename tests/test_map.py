"""The deployment map opens in headless Chromium with every non-local request blocked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vigil.cli import main
from vigil.config import load_default
from vigil.maps.offline import OfflineMapError, offline_map, remote_references, render_offline


@pytest.fixture(scope="module")
def map_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("map") / "map.html"
    assert main(["map", "--out", str(out)]) == 0
    return out


def test_map_file_names_no_remote_asset(map_file: Path) -> None:
    html = map_file.read_text()
    assert remote_references(html) == []
    assert not re.search(r"https?://[^\"' ]*(cdn|unpkg|jsdelivr|bootstrap|jquery)", html)


def test_remote_asset_is_refused() -> None:
    import folium

    m = offline_map((31.3, -110.9), base_layer=False)
    m.get_root().header.add_child(folium.JavascriptLink("https://cdn.example.org/x.js"))
    with pytest.raises(OfflineMapError, match="remote"):
        render_offline(m)


@pytest.mark.browser
def test_map_draws_offline_in_chromium(map_file: Path, offline_page) -> None:
    site = load_default().site
    page = offline_page.page
    page.goto(map_file.as_uri())
    page.wait_for_selector(".leaflet-pane", state="attached", timeout=20_000)
    assert page.evaluate("typeof L") == "object"
    assert page.evaluate("L.version") == "1.9.4"
    page.wait_for_selector(".vigil-tower", state="attached")
    n_segments = len(site.border().segments)
    assert page.locator("path.vigil-segment").count() == n_segments
    assert page.locator(".vigil-tower").count() == len(site.towers) == 6
    assert page.locator(".vigil-sensor").count() == len(site.sensors) == 60
    assert page.locator(".vigil-unit").count() == len(site.units)
    assert page.locator("path.vigil-zone").count() == len(site.zones)
    assert page.locator("path.vigil-fov").count() == len(site.towers)
    # the shipped boundary is the base layer: drawn without any tile request
    assert page.locator(".leaflet-tile").count() == 0
    assert offline_page.blocked == []
    assert offline_page.console_errors == []


@pytest.mark.browser
def test_blocking_is_real(offline_page, tmp_path: Path) -> None:
    """The guard counts what tries to leave: a page that asks for a CDN script is caught."""
    page_file = tmp_path / "leaky.html"
    page_file.write_text('<html><script src="https://cdn.example.org/leaflet.js"></script></html>')
    offline_page.page.goto(page_file.as_uri())
    assert any("cdn.example.org" in u for u in offline_page.blocked)


def test_local_tile_server_option(tmp_path: Path) -> None:
    out = tmp_path / "tiles.html"
    assert main(["map", "--out", str(out), "--tiles", "http://127.0.0.1:8080/{z}/{x}/{y}.png"]) == 0
    html = out.read_text()
    assert re.search(r"127\.0\.0\.1:8080/\{z\}/\{x\}/\{y\}\.png", html)
