"""Folium maps that load nothing from the network.

folium links Leaflet, jQuery, Bootstrap and icon fonts from CDNs. An air-gapped watch floor
cannot reach them, so every map here is built with :func:`offline_map`, which drops those
links and inlines the Leaflet shipped in ``maps/static/leaflet`` (images as data URIs), and
saved with :func:`save_offline`, which refuses to write a page that still names a remote
script, style or image. The base layer is drawn from the shipped border lines; a local tile
server can be added with ``tiles_url``.
"""

from __future__ import annotations

import base64
import re
from functools import cache
from importlib import resources
from pathlib import Path

import folium

STATIC = resources.files("vigil.maps").joinpath("static")
_REMOTE = re.compile(
    r"""<(?:script|img|iframe|source)\b[^>]*\bsrc\s*=\s*["']?(?:https?:)?//"""
    r"""|<link\b[^>]*\bhref\s*=\s*["']?(?:https?:)?//"""
    r"""|url\(\s*["']?(?:https?:)?//|@import\s+["'](?:https?:)?//""",
    re.IGNORECASE,
)
_CSS_URL = re.compile(r"""url\((['"]?)(?!data:)([^)'"]+)\1\)""")


class OfflineMapError(RuntimeError):
    """A page that would load something from the network."""


@cache
def leaflet_js() -> str:
    """Leaflet's JavaScript as shipped in the package."""
    return STATIC.joinpath("leaflet", "leaflet.js").read_text(encoding="utf-8")


@cache
def leaflet_css() -> str:
    """Leaflet's CSS with its images inlined as data URIs."""
    css = STATIC.joinpath("leaflet", "leaflet.css").read_text(encoding="utf-8")

    def inline(match: re.Match[str]) -> str:
        rel = match.group(2)
        path = STATIC.joinpath("leaflet", *rel.split("/"))
        if not path.is_file():
            return match.group(0)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f"url(data:image/png;base64,{data})"

    return _CSS_URL.sub(inline, css)


def offline_map(
    location: tuple[float, float],
    zoom_start: int = 11,
    *,
    tiles_url: str | None = None,
    tiles_attribution: str = "local tiles",
    base_layer: bool = True,
) -> folium.Map:
    """A folium map with Leaflet inlined and no CDN links.

    Parameters
    ----------
    location
        ``(lat, lon)`` of the initial centre, degrees.
    zoom_start
        Initial zoom level.
    tiles_url
        Optional URL template of a local tile server (``http://tiles.local/{z}/{x}/{y}.png``).
    base_layer
        Draw the shipped US-Mexico and US-Canada boundary lines as the base layer.
    """
    m = folium.Map(location=list(location), zoom_start=zoom_start, tiles=None, control_scale=True)
    m.default_js = []
    m.default_css = []
    root = m.get_root()
    root.header.add_child(folium.Element(f"<style>{leaflet_css()}</style>"), name="leaflet_css")
    root.header.add_child(folium.Element(f"<script>{leaflet_js()}</script>"), name="leaflet_js")
    root.header.add_child(
        folium.Element(
            "<style>.leaflet-container{background:#e9e4d8}"
            ".vigil-label{font:12px sans-serif;color:#222}</style>"
        ),
        name="vigil_css",
    )
    if tiles_url:
        folium.TileLayer(tiles=tiles_url, attr=tiles_attribution, name="local tiles").add_to(m)
    if base_layer:
        add_base_layer(m)
    return m


def add_base_layer(m: folium.Map) -> None:
    """Draw the shipped international boundary lines as a thin base layer."""
    group = folium.FeatureGroup(name="international boundary", show=True)
    for name in ("us_mx_border.geojson", "us_ca_border.geojson"):
        text = resources.files("vigil.geo").joinpath("data", name).read_text(encoding="utf-8")
        folium.GeoJson(
            text,
            name=name,
            style_function=lambda _f: {"color": "#555", "weight": 1.5, "dashArray": "4 3"},
            control=False,
        ).add_to(group)
    group.add_to(m)


def remote_references(html: str) -> list[str]:
    """Every script, stylesheet, image or CSS ``url()`` in a page that points off the machine."""
    return [html[m.start() : m.start() + 120] for m in _REMOTE.finditer(html)]


def layer_controls_last(m: folium.Figure | folium.Map) -> None:
    """Move every layer control to the end of its map's children.

    Leaflet's layer control is built from the layers that exist when its script runs; a
    layer added to the map after the control (as :func:`vigil.maps.situation.add_events`
    does) would be named by the control before its variable is defined, and the page would
    stop with a ``TypeError`` before drawing it.
    """
    root = m.get_root()
    maps = [c for c in root._children.values() if isinstance(c, folium.Map)]
    if isinstance(m, folium.Map) and m not in maps:
        maps.append(m)
    for each in maps:
        for key in [k for k, c in each._children.items() if isinstance(c, folium.LayerControl)]:
            each._children.move_to_end(key)


def render_offline(m: folium.Figure | folium.Map) -> str:
    """Render a map to HTML, raising :class:`OfflineMapError` if it names a remote asset.

    Layer controls are moved after every layer first (:func:`layer_controls_last`).
    """
    layer_controls_last(m)
    html = m.get_root().render()
    remote = remote_references(html)
    if remote:
        raise OfflineMapError(
            f"page would load {len(remote)} remote asset(s), first: {remote[0]!r}"
        )
    return html


def save_offline(m: folium.Map, path: str | Path) -> Path:
    """Write a map as one self-contained HTML file that loads nothing from the network."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_offline(m), encoding="utf-8")
    return out
