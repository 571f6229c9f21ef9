"""The live page: a folium-built Leaflet map with the sector's layout, plus the live script.

folium builds the page (Leaflet inlined, base layer from the shipped boundary lines, an optional
local tile server); the page then loads ``/static/live/live.css`` and ``/static/live/live.js``
from the app itself and calls ``VigilLive.start(map, options)``, which draws the layers that
change (segments, towers and fields of view, sensors, units, the aircraft, tracks, alerts) from
``/api/site`` and the WebSocket. Nothing on the page names another host.
"""

from __future__ import annotations

import html
import json
from typing import Any

import folium
import numpy as np
from branca.element import MacroElement
from jinja2 import Template

from vigil.geo.site import Site
from vigil.maps.live.auth import ROLES
from vigil.maps.offline import offline_map, render_offline

LIVE_ASSETS_VERSION = "1"


class _StartLive(MacroElement):
    """Calls ``VigilLive.start`` once the folium map exists (rendered after the map's script)."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "VigilLive.start({{ this._parent.get_name() }}, {{ this.options }});"
        "{% endmacro %}"
    )

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__()
        self._name = "VigilLiveStart"
        # '</' cannot close the script element from inside a JSON string
        self.options = json.dumps(options).replace("</", "<\\/")


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
    <h2>Alerts <span id="alert-count">0</span></h2>
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


def live_page(site: Site, *, tiles_url: str | None = None, tiles_attribution: str = "") -> str:
    """The live map page's HTML for a sector (the same for every user; roles come from
    ``/api/me``)."""
    m = offline_map(
        site.sector.centre,
        11,
        tiles_url=tiles_url,
        tiles_attribution=tiles_attribution or "local tiles",
    )
    root = m.get_root()
    root.header.add_child(
        folium.Element(
            f"<title>Vigil live: {html.escape(site.sector.name)}</title>"
            f'<link rel="stylesheet" href="/static/live/live.css?v={LIVE_ASSETS_VERSION}">'
            f'<script src="/static/live/live.js?v={LIVE_ASSETS_VERSION}"></script>'
        ),
        name="vigil_live_assets",
    )
    root.html.add_child(folium.Element(PANEL.format(sector=html.escape(site.sector.name))))
    border = site.border()
    lon0, lat0, lon1, lat1 = (float(v) for v in border.segments_frame.total_bounds)
    _StartLive({"bounds": [[lat0 - 0.03, lon0], [lat1 + 0.08, lon1]]}).add_to(m)
    return render_offline(m)


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
