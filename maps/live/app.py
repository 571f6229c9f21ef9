"""The live map web app: Starlette, fed by the bus, pushing to browsers over a WebSocket.

:class:`LiveMapApp` subscribes to exactly the topics it draws
(:func:`~vigil.maps.live.state.map_topics`); every message updates a
:class:`~vigil.maps.live.state.LiveState` on the publisher's thread, and a ticker on the event loop
sends what changed to each browser every ``tick_s`` (one JSON batch per tick however many
messages arrived, so a thousand tracks at 1 Hz cost a few batches a second, not a thousand
frames). Alert actions come back as POSTs carrying the session's CSRF token; each is checked
against the user's role, written to the audit log and published on the bus as an
:class:`~vigil.ingest.schema.AlertAction`.

The parts: :mod:`~vigil.maps.live.guard` (sessions, roles, origin and CSRF checks),
:mod:`~vigil.maps.live.feed` (the WebSocket and the ticker), :mod:`~vigil.maps.live.actions` (alert
actions), :mod:`~vigil.maps.live.admin` (users and the audit log), :mod:`~vigil.maps.live.security`
(response headers); this module holds the login, the pages and the map's read APIs, and wires
the routes.

Routes
------
``GET /login``, ``POST /login``, ``POST /logout``; ``GET /`` (the map), ``GET /admin``;
``GET /api/me``, ``/api/site``, ``/api/snapshot``, ``/api/history``, ``/api/audit``,
``/api/users``, ``/api/tracks/{id}/labels``; ``POST /api/alerts/{id}/{acknowledge|assign|close}``,
``POST /api/tracks/{id}/label`` (operators' labels, :mod:`~vigil.maps.live.labelling`),
``POST /api/users``, ``DELETE /api/users/{name}``; ``WS /ws``; ``/static/...`` (Leaflet and the
live script).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from importlib import resources

import msgspec
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from vigil.geo.dem import ElevationModel
from vigil.geo.site import Site
from vigil.ingest.bus import Bus
from vigil.ingest.schema import Track
from vigil.maps.live.actions import AlertActions
from vigil.maps.live.admin import UserAdmin
from vigil.maps.live.audit import AuditLog
from vigil.maps.live.auth import PERMISSIONS, USER_NAME, Sessions, UserStore
from vigil.maps.live.feed import LiveFeed, for_user, visible_alert
from vigil.maps.live.guard import (
    COOKIE,
    BodyLimit,
    Guard,
    HostCheck,
    allowed_hosts,
    read_form,
    refuse,
    same_origin,
)
from vigil.maps.live.labelling import TrackLabelling
from vigil.maps.live.page import live_page, login_page, site_view
from vigil.maps.live.security import SecurityHeaders
from vigil.maps.live.state import LiveState, history_from_tracks, map_topics
from vigil.maps.live.throttle import GateBusyError, LoginThrottle, VerifyGate
from vigil.maps.live.write_rate import WriteRate
from vigil.maps.track_labels import TrackLabels

__all__ = ["MAX_HISTORY_HOURS", "LiveMapApp", "visible_alert"]

#: History playback may ask for at most this many hours.
MAX_HISTORY_HOURS = 48.0
#: The cookie that marks a browser which has logged in as a user before (see throttle).
DEVICE_COOKIE = "vigil_device"
#: How long a browser stays known to its user, seconds.
DEVICE_LIFETIME_S = 30 * 86400
#: Failed logins with unknown names and refused attempts are written to the audit log as one
#: summary at most this often, seconds (never one row per attempt: that could flood it).
LOGIN_SUMMARY_S = 60.0

HistorySource = Callable[[float, float], Iterable[Track]]

_json = msgspec.json.Encoder()


class LiveMapApp(Starlette):
    """The commander's live map for one sector, as a Starlette (ASGI) app.

    Parameters
    ----------
    site
        The sector's layout.
    bus
        Where the messages come from and where alert actions go.
    users
        Who may log in.
    audit
        Where logins, actions and refusals are written.
    history
        Optional ``history(t0, t1) -> iterable of Track`` (UTC seconds) from the store for
        playback; without it playback reads the server's own ring of recent tracks.
    tiles_url
        Optional local tile server URL template for the base layer.
    secret
        Key that signs session cookies and CSRF tokens (32 random bytes when omitted, so
        sessions end when the process does).
    tick_s
        How often changes go out to browsers, seconds.
    state_options
        Passed to :class:`~vigil.maps.live.state.LiveState` (windows and timeouts, seconds).
    allowed_hosts
        Host names the server answers to besides the local ones, this machine's name and the
        address a client connected to (a certificate's names, a public name); ``["*"]`` for
        any. Requests naming another host are refused, which defeats DNS rebinding.
    login_throttle, verify_gate
        The admission of login attempts and the gate in front of argon2 (defaults in
        :mod:`~vigil.maps.live.throttle`).
    max_body
        The most bytes a request body may hold (413 beyond, read no further).
    dem
        The sector's ground (:func:`~vigil.maps.live.coverage.live_relief`): with it the
        towers' coverage layer draws what each camera sees on the relief (viewsheds, computed
        here once); None draws flat wedges.
    sessions
        Sessions shared with other apps of one server (the national view's sector maps and
        its login); ``secret`` and ``session_lifetime_s`` are then unused.
    subscribe
        False: subscribe to nothing (the national view's login and admin pages, which draw
        no sector).
    write_rate
        How often one user may POST (alert actions, labels, user changes; 429 beyond, see
        :mod:`~vigil.maps.live.write_rate`).
    """

    def __init__(
        self,
        site: Site,
        bus: Bus,
        users: UserStore,
        audit: AuditLog,
        history: HistorySource | None = None,
        tiles_url: str | None = None,
        *,
        tiles_attribution: str = "",
        secret: bytes | None = None,
        tick_s: float = 0.15,
        session_lifetime_s: float | None = None,
        state_options: dict[str, float] | None = None,
        allowed_hosts: Iterable[str] = (),
        login_throttle: LoginThrottle | None = None,
        verify_gate: VerifyGate | None = None,
        max_body: int = 64 * 1024,
        dem: ElevationModel | None = None,
        sessions: Sessions | None = None,
        subscribe: bool = True,
        write_rate: WriteRate | None = None,
    ) -> None:
        self.site = site
        self.bus = bus
        self.users = users
        self.audit = audit
        self.history_source = history
        self.tick_s = tick_s
        self.sector = site.sector.name
        self.live = LiveState(site, dem=dem, **(state_options or {}))
        self.sessions = sessions or (
            Sessions(secret)
            if session_lifetime_s is None
            else Sessions(secret, lifetime_s=session_lifetime_s)
        )
        self.throttle = login_throttle or LoginThrottle()
        self.verify_gate = verify_gate or VerifyGate()
        self._login_summary_at = time.monotonic()
        self._login_summary: dict[str, int] = {}
        self.unit_ids = {u.id for u in site.units}
        self.page_html = live_page(site, tiles_url=tiles_url, tiles_attribution=tiles_attribution)
        # the layer menu names the towers' coverage by what it shows (viewsheds or wedges)
        self.site_json = _json.encode(dict(site_view(site), coverage=self.live.coverage_from))
        self.guard = Guard(self.sessions, audit, users, write_rate)
        # a map fed over MQTT says on the page whether its broker connection holds
        link = (lambda: bool(bus.connected)) if hasattr(type(bus), "connected") else None
        self.feed = LiveFeed(self.live, self.guard, tick_s, link)
        self.actions = AlertActions(self.guard, self.live, bus, audit, self.sector, self.unit_ids)
        self.admin = UserAdmin(self.guard, users, self.sessions, audit)
        # operators' labels live in the audit database: the latest ones are shown at once
        self.labels = TrackLabels(audit, self.sector, site.sector.timezone)
        for made in self.labels.latest():
            self.live.set_label(made.view(), announce=False)
        self.labelling = TrackLabelling(self.guard, self.live, self.labels)
        self._ticker: asyncio.Task | None = None
        static = str(resources.files("vigil.maps").joinpath("static"))
        routes = [
            Route("/", self.index),
            Route("/favicon.ico", self.favicon),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/admin", self.admin.page),
            Route("/api/me", self.me),
            Route("/api/site", self.site_api),
            Route("/api/snapshot", self.snapshot_api),
            Route("/api/history", self.history_api),
            Route("/api/audit", self.admin.audit_api),
            Route("/api/users", self.admin.users_api, methods=["GET", "POST"]),
            Route("/api/users/{name}", self.admin.user_delete, methods=["DELETE"]),
            Route("/api/alerts/{alert_id}/{action}", self.actions.handle, methods=["POST"]),
            Route("/api/tracks/{track_id}/label", self.labelling.label, methods=["POST"]),
            Route("/api/tracks/{track_id}/labels", self.labelling.history),
            WebSocketRoute("/ws", self.feed.websocket),
            Mount("/static", app=StaticFiles(directory=static), name="static"),
        ]
        super().__init__(routes=routes, lifespan=self._lifespan)
        self.add_middleware(BodyLimit, max_bytes=max_body)
        self.add_middleware(SecurityHeaders, tiles_url=tiles_url)
        self.allowed_hosts = _allowed(allowed_hosts)
        self.add_middleware(HostCheck, allowed=self.allowed_hosts)
        topics = map_topics(self.sector) if subscribe else []
        self._subscriptions = [bus.subscribe(p, self._on_message) for p in topics]

    # -- the bus side ---------------------------------------------------------------------------

    def _on_message(self, topic: str, msg) -> None:
        # runs on the publisher's thread; LiveState takes its own lock
        self.live.apply(topic, msg, arrival=time.time())

    def close(self) -> None:
        """Stop listening to the bus."""
        for sub in self._subscriptions:
            self.bus.unsubscribe(sub)

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app):
        self._ticker = asyncio.create_task(self.feed.run())
        try:
            yield
        finally:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker

    # -- pages -----------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        """``GET /``: the map (to the login without a session, to /admin without the map)."""
        session = self.guard.session(request)
        if session is None:
            return RedirectResponse("/login", status_code=303)
        if not session.user.can("map"):
            return RedirectResponse("/admin", status_code=303)
        return HTMLResponse(self.page_html)

    async def favicon(self, request: Request) -> Response:
        """``GET /favicon.ico``: none (204), so browsers stop asking."""
        return Response(status_code=204)

    async def login_form(self, request: Request) -> Response:
        """``GET /login``: the login form, or the map for a logged-in user."""
        if self.guard.session(request) is not None:
            return RedirectResponse("/", status_code=303)
        return HTMLResponse(login_page(self.sector))

    async def login(self, request: Request) -> Response:
        """``POST /login``: admit the attempt (throttle), check the password behind the gate
        and open a session; failures of real users and every success are audited."""
        if not same_origin(request):
            return HTMLResponse(login_page(self.sector, "cross-origin login refused"), 403)
        form = await read_form(request)
        peer = request.client.host if request.client else "-"
        name = form.get("username", "")
        password = form.get("password", "")
        valid = bool(USER_NAME.match(name))
        device = self.sessions.device(request.cookies.get(DEVICE_COOKIE), name) if valid else None
        attempt = self.throttle.admit(peer, name if valid else "", device)
        if isinstance(attempt, float):
            self._summarise("refused")
            wait = max(1, round(attempt))
            return HTMLResponse(
                login_page(self.sector, f"too many login attempts; try again in {wait} s"),
                429,
                headers={"Retry-After": str(wait)},
            )
        try:
            user = (
                await self.verify_gate.run(
                    self.users.verify, name, password, trusted=device is not None, address=peer
                )
                if valid
                else None
            )
        except GateBusyError:
            self.throttle.undo(attempt)
            self._summarise("busy")
            return HTMLResponse(
                login_page(self.sector, "the server is busy; try again in a few seconds"),
                503,
                headers={"Retry-After": "2"},
            )
        if user is None:
            self.throttle.failed(attempt)
            if valid and self.users.generation(name) is not None:
                self.audit.record(name, "login_failed", "", peer)
            else:  # a made-up name: counted, summarised, never one audit row per attempt
                self._summarise("unknown_name")
            return HTMLResponse(login_page(self.sector, "wrong user name or password"), 401)
        self.throttle.succeeded(attempt)
        _session, cookie = self.sessions.open(user)
        self.audit.record(user.name, "login", "", f"role {user.role} from {peer}")
        response = RedirectResponse("/" if user.can("map") else "/admin", status_code=303)
        secure = request.url.scheme == "https"
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=int(self.sessions.lifetime_s),
            path="/",
            httponly=True,
            samesite="strict",
            secure=secure,
        )
        if device is None:
            response.set_cookie(
                DEVICE_COOKIE,
                self.sessions.device_cookie(user.name),
                max_age=DEVICE_LIFETIME_S,
                path="/login",
                httponly=True,
                samesite="strict",
                secure=secure,
            )
        return response

    def _summarise(self, what: str) -> None:
        """Count a login attempt that gets no audit row of its own; write the counts as one
        ``login_summary`` row at most every :data:`LOGIN_SUMMARY_S`."""
        self._login_summary[what] = self._login_summary.get(what, 0) + 1
        now = time.monotonic()
        if now - self._login_summary_at >= LOGIN_SUMMARY_S:
            detail = ", ".join(f"{k} {v}" for k, v in sorted(self._login_summary.items()))
            self.audit.record(
                "-", "login_summary", "", f"{detail} in {now - self._login_summary_at:.0f} s"
            )
            self._login_summary = {}
            self._login_summary_at = now

    async def logout(self, request: Request) -> Response:
        """``POST /logout``: end the session (needs its CSRF token) and clear the cookie."""
        session = self.guard.session(request)
        if session is not None:
            form = await read_form(request)
            token = request.headers.get("x-csrf-token") or form.get("csrf")
            if not same_origin(request) or not self.sessions.check_csrf(session, token):
                return refuse(403, "missing or wrong CSRF token")
            self.sessions.close(session)
            self.audit.record(session.user.name, "logout")
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    # -- the map's read APIs ---------------------------------------------------------------------

    async def me(self, request: Request) -> Response:
        """``GET /api/me``: the user, role, permissions, CSRF token and the sector's units."""
        session = self.guard.session(request)
        if session is None:
            return refuse(401, "not logged in: no valid session")
        user = session.user
        return JSONResponse(
            {
                "user": user.name,
                "role": user.role,
                "unit": user.unit,
                "csrf": self.sessions.csrf_token(session),
                "permissions": sorted(PERMISSIONS[user.role]),
                "units": sorted(self.unit_ids),
            }
        )

    async def site_api(self, request: Request) -> Response:
        """``GET /api/site``: the sector's layout for the map's fixed layers."""
        session = self.guard.api_session(request, "map")
        if isinstance(session, Response):
            return session
        return Response(self.site_json, media_type="application/json")

    async def snapshot_api(self, request: Request) -> Response:
        """``GET /api/snapshot``: the whole picture now, with the alerts the user may see."""
        session = self.guard.api_session(request, "map")
        if isinstance(session, Response):
            return session
        snap = for_user(session.user, self.live.snapshot())
        return Response(_json.encode(snap), media_type="application/json")

    async def history_api(self, request: Request) -> Response:
        """``GET /api/history?t0=&t1=&hours=``: track trails for playback (UTC seconds), each
        with its operator label (``label``) when it has one."""
        session = self.guard.api_session(request, "history")
        if isinstance(session, Response):
            return session
        q = request.query_params
        try:
            t1 = float(q["t1"]) if "t1" in q else (self.live.now or time.time())
            hours = float(q.get("hours", "4"))
            t0 = float(q["t0"]) if "t0" in q else t1 - hours * 3600.0
        except ValueError as exc:
            return refuse(400, f"t0, t1 and hours are numbers (UTC seconds, hours): {exc}")
        if not t0 <= t1 or t1 - t0 > MAX_HISTORY_HOURS * 3600.0:
            return refuse(
                400,
                f"history span t0={t0} to t1={t1}: expected t0 <= t1 and at most "
                f"{MAX_HISTORY_HOURS:g} hours",
            )
        if self.history_source is not None:
            tracks = await run_in_threadpool(lambda: list(self.history_source(t0, t1)))
            items = history_from_tracks(tracks)
        else:
            items = self.live.history(t0, t1)
        if items:  # each track's operator label, from the store (labels outlive the ring)
            latest = await run_in_threadpool(self.labels.latest, [i["id"] for i in items])
            by_id = {x.track_id: x.view() for x in latest}
            for item in items:
                if item["id"] in by_id:
                    item["label"] = by_id[item["id"]]
        return Response(
            _json.encode({"t0": t0, "t1": t1, "tracks": items}), media_type="application/json"
        )


def _allowed(extra: Iterable[str]) -> frozenset[str]:
    """The Host names of :class:`~vigil.maps.live.guard.HostCheck`: the local ones and
    ``extra``; a wildcard address among them (``0.0.0.0``) adds this machine's full name."""
    extra = [h for h in extra if h]
    if "*" in extra:
        return frozenset(["*"])
    wildcard = any(h in ("0.0.0.0", "::") for h in extra)
    return allowed_hosts("0.0.0.0" if wildcard else "127.0.0.1", extra)
