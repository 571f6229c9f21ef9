"""The live page: Leaflet and the live script, loaded from the app itself, with no inline script.

The page is plain HTML: it loads ``/static/leaflet/leaflet.{css,js}`` and
``/static/live/live.{css,js}`` and carries its options (initial view, the local tile server,
the shipped boundary lines as the base layer) in a ``<script type="application/json"
id="vigil-live-options">`` block, which the browser never runs. ``live.js`` reads it with
``textContent``, builds the Leaflet map and draws the layers that change (segments, towers and
fields of view, sensors, units, the aircraft, tracks, alerts) from ``/api/site`` and the
WebSocket. So the content security policy needs no ``'unsafe-inline'`` for scripts
(:mod:`~vigil.maps.live.security`), and nothing on the page names another host.
"""

from __future__ import annotations

import html
import json
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from vigil.geo.site import Site
from vigil.maps.live.auth import ROLES
from vigil.maps.offline import OfflineMapError, remote_references

LIVE_ASSETS_VERSION = "7"
BASE_LAYERS = ("us_mx_border.geojson", "us_ca_border.geojson")


def json_for_script(value: Any) -> str:
    """``value`` as JSON that is safe inside a ``<script type="application/json">`` block.

    ``<``, ``>`` and ``&`` are written as ``\\u003c`` etc., so no string in it can close the
    element (``</script>``) or open a comment; ``JSON.parse`` reads them back unchanged.
    """
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@cache
def _base_layers() -> tuple[dict[str, Any], ...]:
    """The shipped international boundary lines (GeoJSON, EPSG:4326)."""
    data = resources.files("vigil.geo").joinpath("data")
    return tuple(
        json.loads(data.joinpath(name).read_text(encoding="utf-8")) for name in BASE_LAYERS
    )


PANEL = """
<aside id="vigil-panel">
  <header>
    <strong>Vigil</strong> <span id="sector-name">{sector}</span>
    <span id="whoami"></span>
    <form id="logout-form" method="post" action="/logout">
      <input type="hidden" name="csrf" id="logout-csrf" value="">
      <button type="submit" class="logout">log out</button>
    </form>
  </header>
  <div id="live-status" data-state="connecting">connecting…</div>
  <section id="alerts-section">
    <h2>Alerts <span id="alert-count">0</span> <span id="alert-mode"></span></h2>
    <div id="alert-queue"></div>
  </section>
  <section id="playback">
    <h2>History</h2>
    <label><input type="checkbox" id="history-toggle"> playback</label>
    <select id="history-hours">
      <option value="1">1 h</option><option value="2">2 h</option>
      <option value="4" selected>4 h</option><option value="8">8 h</option>
    </select>
    <input type="range" id="history-slider" min="0" max="1000" value="1000" disabled>
    <div id="history-time"></div>
  </section>
</aside>
"""

LIVE_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vigil live: {sector}</title>
<link rel="stylesheet" href="/static/leaflet/leaflet.css">
<link rel="stylesheet" href="/static/live/live.css?v={version}">
<script src="/static/leaflet/leaflet.js"></script>
<script src="/static/live/live.js?v={version}"></script>
</head>
<body class="vigil-live">
<div id="vigil-map" class="vigil-map"></div>
{panel}
<script type="application/json" id="vigil-live-options">{options}</script>
</body></html>
"""


def live_options(
    site: Site, *, tiles_url: str | None = None, tiles_attribution: str = ""
) -> dict[str, Any]:
    """What the page needs before ``/api/site``: initial view (degrees), the local tile server
    (or None), the base layer's GeoJSON and the sector's time zone (IANA name: the page shows
    every time in it, with its offset)."""
    border = site.border()
    lon0, lat0, lon1, lat1 = (float(v) for v in border.segments_frame.total_bounds)
    return {
        "centre": [float(v) for v in site.sector.centre],
        "zoom": 11,
        "bounds": [[lat0 - 0.03, lon0], [lat1 + 0.08, lon1]],
        "tiles": (
            {"url": tiles_url, "attribution": tiles_attribution or "local tiles"}
            if tiles_url
            else None
        ),
        "base": list(_base_layers()),
        "timezone": site.sector.timezone,
    }


def live_page(site: Site, *, tiles_url: str | None = None, tiles_attribution: str = "") -> str:
    """The live map page's HTML for a sector (the same for every user; roles come from
    ``/api/me``). Raises :class:`~vigil.maps.offline.OfflineMapError` if it would name a
    remote asset."""
    sector = html.escape(site.sector.name)
    page = LIVE_PAGE.format(
        sector=sector,
        version=LIVE_ASSETS_VERSION,
        panel=PANEL.format(sector=sector),
        options=json_for_script(
            live_options(site, tiles_url=tiles_url, tiles_attribution=tiles_attribution)
        ),
    )
    remote = remote_references(page)
    if remote:
        raise OfflineMapError(f"page would load {len(remote)} remote asset(s): {remote[0]!r}")
    return page


def _latlon(frame, coords) -> list[list[float]]:
    xy = np.asarray(coords)
    lat, lon = frame.to_wgs84(xy[:, 0], xy[:, 1])
    return [[round(float(a), 6), round(float(o), 6)] for a, o in zip(lat, lon, strict=True)]


def site_view(site: Site) -> dict[str, Any]:
    """The sector's layout as JSON for the page (``/api/site``)."""
    frame = site.frame()
    border = site.border(frame)
    return {
        "sector": site.sector.name,
        "centre": list(site.sector.centre),
        "segments": [
            {
                "id": s.segment_id,
                "index": s.index,
                "km": [round(s.chainage_start_km, 2), round(s.chainage_end_km, 2)],
                "line": _latlon(frame, s.line.coords),
            }
            for s in border.segments
        ],
        "towers": [
            {"id": t.id, "lat": t.lat, "lon": t.lon, "mast": t.mast_height_m, "range": t.range_m}
            for t in site.towers
        ],
        "sensors": [
            {"id": s.id, "lat": s.lat, "lon": s.lon, "modality": s.modality, "radius": s.radius_m}
            for s in site.sensors
        ],
        "units": [{"id": u.id, "lat": u.lat, "lon": u.lon, "kind": u.kind} for u in site.units],
        "aircraft": [
            {"id": a.id, "orbit": list(a.orbit_centre), "radius": a.orbit_radius_m}
            for a in site.aircraft
        ],
        "zones": [
            {
                "id": z.id,
                "name": z.name,
                "priority": z.priority,
                "polygon": [list(p) for p in z.polygon],
            }
            for z in site.zones
        ],
        "roads": [{"id": r.id, "path": [list(p) for p in r.path]} for r in site.roads],
        "corridors": [{"id": c.id, "path": [list(p) for p in c.path]} for c in site.corridors],
    }


LOGIN_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Vigil: log in</title>
<link rel="stylesheet" href="/static/live/live.css?v={version}"></head>
<body class="vigil-login">
<form method="post" action="/login" id="login-form">
  <h1>Vigil <small>{sector}</small></h1>
  {message}
  <label>user <input name="username" id="username" autocomplete="username" required></label>
  <label>password <input name="password" id="password" type="password"
    autocomplete="current-password" required></label>
  <button type="submit" id="login-button">log in</button>
</form>
</body></html>
"""


def login_page(sector: str, message: str = "") -> str:
    """The login form (``message``: an error to show, plain text)."""
    shown = f'<p class="error" id="login-error">{html.escape(message)}</p>' if message else ""
    return LOGIN_PAGE.format(version=LIVE_ASSETS_VERSION, sector=html.escape(sector), message=shown)


def admin_page() -> str:
    """The admin page: the users (add, remove) and the audit log, filled by ``admin.js``."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Vigil users'
        '</title><link rel="stylesheet" href="/static/live/live.css">'
        '<script src="/static/live/admin.js"></script></head>'
        '<body class="vigil-admin"><h1>Users</h1><table id="users"></table>'
        '<form id="add-user"><input name="name" placeholder="name" required>'
        '<select name="role">'
        + "".join(f"<option>{r}</option>" for r in ROLES)
        + '</select><input name="unit" placeholder="unit (agents)">'
        '<input name="password" type="password" placeholder="password" required>'
        '<button type="submit">add</button></form><p id="admin-message"></p>'
        '<h1>Audit log</h1><table id="audit"></table></body></html>'
    )
