"""The national view: several sectors on one server, an overview and a sector picker.

:class:`NationalApp` is an ASGI app that serves

- ``/``: the all-sectors overview (Leaflet: each sector's border line and a label with its
  open alerts; a list and a picker), drawn by ``/static/live/national.js`` from
  ``/api/sectors`` (per-sector alert counts, polled);
- ``/s/{sector}/``: that sector's whole live map (:class:`~vigil.maps.live.app.LiveMapApp`,
  the same page, API and WebSocket as a one-sector ``vigil serve``, below the prefix);
- everything else (``/login``, ``/logout``, ``/admin``, ``/static``...): a login and admin
  app that draws no sector.

It subscribes only to what it draws: for the overview, each sector's ``alerts`` (the counts);
a sector's map topics (:func:`~vigil.maps.live.state.map_topics`) only once a logged-in user
opens that sector (the sector's map is made then, and kept). One login serves every sector:
the apps share one :class:`~vigil.maps.live.auth.Sessions`.

Every sector's topics come through one bus, typically a connection to a national broker node
(``vigil broker national``; :mod:`vigil.bridge`).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from vigil.geo.dem import ElevationModel
from vigil.geo.site import Site
from vigil.ingest.bus import Bus
from vigil.ingest.schema import Alert
from vigil.maps.live.app import LiveMapApp, _allowed
from vigil.maps.live.audit import AuditLog
from vigil.maps.live.auth import Sessions, UserStore
from vigil.maps.live.guard import BodyLimit, HostCheck, refuse
from vigil.maps.live.page import (
    LIVE_ASSETS_VERSION,
    _base_layers,
    _latlon,
    json_for_script,
)
from vigil.maps.live.security import SecurityHeaders
from vigil.maps.offline import OfflineMapError, remote_references

#: Alerts remembered per sector for the counts (the oldest closed ones are forgotten first).
MAX_ALERTS_KEPT = 20_000

_json = msgspec.json.Encoder()

NATIONAL_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vigil: all sectors</title>
<link rel="stylesheet" href="/static/leaflet/leaflet.css">
<link rel="stylesheet" href="/static/live/live.css?v={version}">
<script src="/static/leaflet/leaflet.js"></script>
<script src="/static/live/national.js?v={version}"></script>
</head>
<body class="vigil-live">
<div id="vigil-map" class="vigil-map"></div>
<aside id="vigil-panel">
  <header>
    <strong>Vigil</strong> <span id="sector-name">all sectors</span>
    <form id="logout-form" method="post" action="/logout">
      <input type="hidden" name="csrf" id="logout-csrf" value="">
      <button type="submit" class="logout">log out</button>
    </form>
  </header>
  <label>sector <select id="sector-picker"><option value="">all sectors</option></select></label>
  <section id="sectors-section">
    <h2>Open alerts <span id="national-open">0</span></h2>
    <table id="sector-table"><thead><tr><th>sector</th><th>open</th><th>seen</th></tr></thead>
    <tbody id="sector-rows"></tbody></table>
  </section>
</aside>
<script type="application/json" id="vigil-national-options">{options}</script>
</body></html>
"""


def sector_outline(site: Site) -> dict[str, Any]:
    """A sector for the overview: its name, centre and border line (degrees)."""
    frame = site.frame()
    border = site.border(frame)
    line: list[list[float]] = []
    for s in border.segments:
        pts = _latlon(frame, s.line.coords)
        line += pts if not line else pts[1:]
    return {
        "id": site.sector.name,
        "centre": [float(v) for v in site.sector.centre],
        "line": line,
        "towers": len(site.towers),
    }


def national_page(sites: Iterable[Site]) -> str:
    """The overview page's HTML (no inline script: the options are a JSON block)."""
    options = {"sectors": [sector_outline(s) for s in sites], "base": list(_base_layers())}
    page = NATIONAL_PAGE.format(version=LIVE_ASSETS_VERSION, options=json_for_script(options))
    remote = remote_references(page)
    if remote:
        raise OfflineMapError(f"page would load {len(remote)} remote asset(s): {remote[0]!r}")
    return page


class SectorAlerts:
    """A sector's alerts as the overview counts them: open (not closed) and seen."""

    def __init__(self) -> None:
        self._state: dict[str, str] = {}
        self._lock = threading.Lock()
        self.last_time: float | None = None

    def apply(self, msg: Any) -> None:
        """Take an :class:`~vigil.ingest.schema.Alert` (anything else is ignored)."""
        if not isinstance(msg, Alert):
            return
        with self._lock:
            self._state.pop(msg.alert_id, None)  # re-inserted last: the newest stay
            self._state[msg.alert_id] = msg.state
            while len(self._state) > MAX_ALERTS_KEPT:
                closed = next((k for k, v in self._state.items() if v == "closed"), None)
                self._state.pop(closed if closed is not None else next(iter(self._state)))
            self.last_time = max(self.last_time or msg.time, msg.time)

    def counts(self) -> dict[str, Any]:
        """``{"open": n, "seen": n, "last": t}`` (UTC seconds or None)."""
        with self._lock:
            open_ = sum(1 for v in self._state.values() if v != "closed")
            return {"open": open_, "seen": len(self._state), "last": self.last_time}


class NationalApp:
    """Several sectors' live maps behind one login, with an all-sectors overview.

    Parameters
    ----------
    sites
        The sectors' layouts (distinct sector names), in the picker's order.
    bus
        One bus that carries every sector's topics (a national broker node).
    users, audit
        As for :class:`~vigil.maps.live.app.LiveMapApp` (one login for every sector).
    dems
        Per sector name, its ground for the towers' coverage (optional).
    allowed_hosts
        As for :class:`~vigil.maps.live.app.LiveMapApp`.
    options
        Passed on to each :class:`~vigil.maps.live.app.LiveMapApp` (``tick_s``,
        ``tiles_url``, ``state_options``...).
    """

    def __init__(
        self,
        sites: Iterable[Site],
        bus: Bus,
        users: UserStore,
        audit: AuditLog,
        *,
        secret: bytes | None = None,
        dems: Mapping[str, ElevationModel | None] | None = None,
        allowed_hosts: Iterable[str] = (),
        tiles_url: str | None = None,
        **options: Any,
    ) -> None:
        self.sites = {s.sector.name: s for s in sites}
        if not self.sites:
            raise ValueError("sites: expected at least one sector")
        self.bus = bus
        self.users = users
        self.audit = audit
        self.dems = dict(dems or {})
        self.allowed = list(allowed_hosts)
        self.tiles_url = tiles_url
        self.options = options
        self.sessions = Sessions(secret)
        first = next(iter(self.sites.values()))
        # the login, logout, admin and static files: an app that subscribes to nothing
        self.portal = self._sector_app(first, subscribe=False)
        self.alerts = {name: SectorAlerts() for name in self.sites}
        self._subscriptions = [
            bus.subscribe(f"vigil/v1/{name}/alerts", self._on_alert) for name in self.sites
        ]
        self.maps: dict[str, LiveMapApp] = {}
        self._tickers: list[asyncio.Task] = []
        self._maps_lock = asyncio.Lock()
        self.page_html = national_page(self.sites.values())
        overview = Starlette(
            routes=[Route("/", self.overview), Route("/api/sectors", self.sectors_api)]
        )
        overview.add_middleware(BodyLimit, max_bytes=64 * 1024)
        overview.add_middleware(SecurityHeaders, tiles_url=tiles_url)
        overview.add_middleware(HostCheck, allowed=_allowed(self.allowed))
        self.overview_app = overview

    def _sector_app(self, site: Site, subscribe: bool = True) -> LiveMapApp:
        return LiveMapApp(
            site,
            self.bus,
            self.users,
            self.audit,
            tiles_url=self.tiles_url,
            allowed_hosts=self.allowed,
            dem=self.dems.get(site.sector.name),
            sessions=self.sessions,
            subscribe=subscribe,
            **self.options,
        )

    # -- the bus side ------------------------------------------------------------------------

    def _on_alert(self, topic: str, msg: Any) -> None:
        sector = topic.split("/")[2]
        if sector in self.alerts:
            self.alerts[sector].apply(msg)

    def subscribed_topics(self) -> list[str]:
        """Every filter this app holds a subscription to now (for tests and status)."""
        from vigil.maps.live.state import map_topics

        out = [f"vigil/v1/{name}/alerts" for name in self.sites]
        for name in self.maps:
            out += map_topics(name)
        return out

    def close(self) -> None:
        """Stop listening to the bus (the overview and every sector map made)."""
        for sub in self._subscriptions:
            self.bus.unsubscribe(sub)
        for app in self.maps.values():
            app.close()

    # -- the overview ------------------------------------------------------------------------

    def _viewer(self, conn: HTTPConnection):
        session = self.portal.guard.session(conn)
        if session is None or not session.user.can("map"):
            return None
        return session

    async def overview(self, request: Request) -> Response:
        """``GET /``: the overview (to the login without a session)."""
        session = self.portal.guard.session(request)
        if session is None:
            return RedirectResponse("/login", status_code=303)
        if not session.user.can("map"):
            return RedirectResponse("/admin", status_code=303)
        return HTMLResponse(self.page_html)

    async def sectors_api(self, request: Request) -> Response:
        """``GET /api/sectors``: each sector's alert counts, whether its map is open here,
        and the session's CSRF token (for the logout form)."""
        session = self.portal.guard.api_session(request, "map")
        if isinstance(session, Response):
            return session
        body = {
            "sectors": [
                {"id": name, "map_open": name in self.maps, **self.alerts[name].counts()}
                for name in self.sites
            ],
            "csrf": self.sessions.csrf_token(session),
            "connected": bool(getattr(self.bus, "connected", True)),
        }
        return Response(_json.encode(body), media_type="application/json")

    # -- dispatch ----------------------------------------------------------------------------

    async def _map_for(self, name: str) -> LiveMapApp:
        async with self._maps_lock:
            app = self.maps.get(name)
            if app is None:  # subscribes now: the first time someone opens this sector
                app = self._sector_app(self.sites[name])
                # the sector's page links back to the overview
                app.page_html = app.page_html.replace(
                    '<span id="sector-name">',
                    '<a href="/" id="national-link">all sectors</a> <span id="sector-name">',
                    1,
                )
                self.maps[name] = app
                self._tickers.append(asyncio.create_task(app.feed.run()))
            return app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path = scope["path"]
        if path in ("/", "/api/sectors"):
            await self.overview_app(scope, receive, send)
            return
        if not path.startswith("/s/"):
            await self.portal(scope, receive, send)
            return
        name, _, rest = path[3:].partition("/")
        if name not in self.sites:
            await self.portal(scope, receive, send)  # its 404
            return
        if scope["type"] == "http" and not rest and not path.endswith("/"):
            await RedirectResponse(f"/s/{html.escape(name)}/", status_code=307)(
                scope, receive, send
            )
            return
        if self._viewer(HTTPConnection(scope)) is None and name not in self.maps:
            # no sector map is made (and subscribed) for someone who may not see it
            if scope["type"] == "http":
                if path.startswith(f"/s/{name}/api/"):
                    await refuse(401, "not logged in: no valid session")(scope, receive, send)
                else:
                    await RedirectResponse("/login", status_code=303)(scope, receive, send)
            else:
                await send({"type": "websocket.close", "code": 4401})
            return
        app = await self._map_for(name)
        child = dict(scope, root_path=scope.get("root_path", "") + f"/s/{name}")
        await app(child, receive, send)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in self._tickers:
                    task.cancel()
                for task in self._tickers:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await send({"type": "lifespan.shutdown.complete"})
                return
