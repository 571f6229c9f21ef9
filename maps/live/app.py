"""The live map web app: Starlette, fed by the bus, pushing to browsers over a WebSocket.

:class:`LiveMapApp` subscribes to ``vigil/v1/{sector}/#``; every message updates a
:class:`~maps.live.state.LiveState` on the publisher's thread, and a ticker on the event loop
sends what changed to each browser every ``tick_s`` (one JSON batch per tick however many
messages arrived, so a thousand tracks at 1 Hz cost a few batches a second, not a thousand
frames). Alert actions come back as POSTs carrying the session's CSRF token; each is checked
against the user's role, written to the audit log and published on the bus as an
:class:`~ingest.schema.AlertAction`.

Routes
------
``GET /login``, ``POST /login``, ``POST /logout``; ``GET /`` (the map), ``GET /admin``;
``GET /api/me``, ``/api/site``, ``/api/snapshot``, ``/api/history``, ``/api/audit``,
``/api/users``; ``POST /api/alerts/{id}/{acknowledge|assign|close}``, ``POST /api/users``,
``DELETE /api/users/{name}``; ``WS /ws``; ``/static/...`` (Leaflet and the live script).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from vigil.geo.site import Site
from vigil.ingest.bus import Bus
from vigil.ingest.schema import AlertAction, Track, topic_for
from vigil.maps.live.audit import AuditLog
from vigil.maps.live.auth import (
    PERMISSIONS,
    ROLES,
    AuthError,
    LoginThrottle,
    Session,
    Sessions,
    User,
    UserStore,
)
from vigil.maps.live.page import live_page, login_page, site_view
from vigil.maps.live.state import LiveState, history_from_tracks

log = logging.getLogger("vigil.live")

COOKIE = "vigil_session"
#: Batches a slow browser may have waiting before it is resynchronised with a snapshot.
CLIENT_QUEUE = 32
#: History playback may ask for at most this many hours.
MAX_HISTORY_HOURS = 48.0
ACTIONS = ("acknowledge", "assign", "close")

HistorySource = Callable[[float, float], Iterable[Track]]

_json = msgspec.json.Encoder()


@dataclass(eq=False)
class _Client:
    """One connected browser."""

    session: Session
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE))
    resync: bool = False


def visible_alert(user: User, alert: dict[str, Any]) -> bool:
    """Whether ``user`` may see an alert: all of them, or (agents) their unit's."""
    if user.can("alerts.all"):
        return True
    if not user.can("alerts.own") or user.unit is None:
        return False
    if alert.get("assigned"):
        return alert["assigned"] == user.unit
    return user.unit in (alert.get("units") or ())


def _for_user(user: User, payload: dict[str, Any]) -> dict[str, Any]:
    if "alerts" not in payload or user.can("alerts.all"):
        return payload
    out = dict(payload)
    # closed alerts pass so a queue entry can leave a page that had it
    out["alerts"] = [
        a for a in payload["alerts"] if visible_alert(user, a) or a.get("state") == "closed"
    ]
    return out


class _SecurityHeaders:
    """Adds CSP and friends to every HTTP response: the page may talk only to its own host."""

    def __init__(self, app, tiles_url: str | None) -> None:
        self.app = app
        img = "'self' data: blob:"
        if tiles_url:
            parts = urlsplit(tiles_url.replace("{", "").replace("}", ""))
            if parts.scheme and parts.netloc:
                img += f" {parts.scheme}://{parts.netloc}"
        self.headers = [
            (
                b"content-security-policy",
                (
                    "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                    f"style-src 'self' 'unsafe-inline'; img-src {img}; "
                    "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; "
                    "form-action 'self'; base-uri 'none'"
                ).encode(),
            ),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            # same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on form
            # posts, which the origin check must refuse
            (b"referrer-policy", b"same-origin"),
        ]

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(self.headers)
                if scope["path"].startswith("/api/") or scope["path"] in ("/", "/login"):
                    headers.append((b"cache-control", b"no-store"))
                message = dict(message, headers=headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)


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
        Passed to :class:`~maps.live.state.LiveState` (windows and timeouts, seconds).
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
    ) -> None:
        self.site = site
        self.bus = bus
        self.users = users
        self.audit = audit
        self.history_source = history
        self.tick_s = tick_s
        self.sector = site.sector.name
        self.live = LiveState(site, **(state_options or {}))
        self.sessions = (
            Sessions(secret)
            if session_lifetime_s is None
            else Sessions(secret, lifetime_s=session_lifetime_s)
        )
        self.throttle = LoginThrottle()
        self.unit_ids = {u.id for u in site.units}
        self.page_html = live_page(site, tiles_url=tiles_url, tiles_attribution=tiles_attribution)
        self.site_json = _json.encode(site_view(site))
        self._clients: set[_Client] = set()
        self._ticker: asyncio.Task | None = None
        static = str(resources.files("vigil.maps").joinpath("static"))
        routes = [
            Route("/", self.index),
            Route("/favicon.ico", self.favicon),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/admin", self.admin_page),
            Route("/api/me", self.me),
            Route("/api/site", self.site_api),
            Route("/api/snapshot", self.snapshot_api),
            Route("/api/history", self.history_api),
            Route("/api/audit", self.audit_api),
            Route("/api/users", self.users_api, methods=["GET", "POST"]),
            Route("/api/users/{name}", self.user_delete, methods=["DELETE"]),
            Route("/api/alerts/{alert_id}/{action}", self.alert_action, methods=["POST"]),
            WebSocketRoute("/ws", self.websocket),
            Mount("/static", app=StaticFiles(directory=static), name="static"),
        ]
        super().__init__(routes=routes, lifespan=self._lifespan)
        self.add_middleware(_SecurityHeaders, tiles_url=tiles_url)
        self._subscription = bus.subscribe(f"vigil/v1/{self.sector}/#", self._on_message)

    # -- the bus side ---------------------------------------------------------------------------

    def _on_message(self, topic: str, msg) -> None:
        # runs on the publisher's thread; LiveState takes its own lock
        self.live.apply(topic, msg, arrival=time.time())

    def close(self) -> None:
        """Stop listening to the bus."""
        self.bus.unsubscribe(self._subscription)

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app):
        self._ticker = asyncio.create_task(self._tick_loop())
        try:
            yield
        finally:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                self._tick()
            except Exception:  # keep ticking; a bad batch must not stop the map
                log.exception("live map tick failed")
                self.live.counts["tick_errors"] += 1

    def _tick(self) -> None:
        batch = self.live.take_changes()
        if batch is None or not self._clients:
            return
        batch["sent"] = time.time()
        encoded: dict[Any, str] = {}
        for client in list(self._clients):
            user = client.session.user
            key = "all" if user.can("alerts.all") else ("unit", user.unit)
            text = encoded.get(key)
            if text is None:
                text = encoded[key] = _json.encode(_for_user(user, batch)).decode()
            try:
                client.queue.put_nowait(text)
            except asyncio.QueueFull:
                # a browser that cannot keep up gets the whole picture again, not a gap
                while not client.queue.empty():
                    client.queue.get_nowait()
                client.resync = True
                client.queue.put_nowait(None)
                self.live.counts["client_resyncs"] += 1

    # -- sessions and checks -------------------------------------------------------------------

    def _session(self, conn: Request | WebSocket) -> Session | None:
        return self.sessions.lookup(conn.cookies.get(COOKIE))

    @staticmethod
    def _same_origin(conn: Request | WebSocket) -> bool:
        origin = conn.headers.get("origin") or conn.headers.get("referer")
        if not origin:
            return True  # not a browser: the CSRF token is what protects actions
        return urlsplit(origin).netloc == conn.headers.get("host", "")

    def _refuse(self, status: int, error: str) -> JSONResponse:
        return JSONResponse({"error": error}, status_code=status)

    def _api_session(self, request: Request, permission: str) -> Session | JSONResponse:
        session = self._session(request)
        if session is None:
            return self._refuse(401, "not logged in: no valid session")
        if not session.user.can(permission):
            return self._refuse(
                403, f"role {session.user.role!r} may not use {request.url.path} ({permission})"
            )
        return session

    def _checked_post(self, request: Request, permission: str) -> Session | JSONResponse:
        """A POST's session, role, origin and CSRF token, or the refusal."""
        session = self._session(request)
        if session is None:
            return self._refuse(401, "not logged in: no valid session")
        if not self._same_origin(request):
            self.audit.record(session.user.name, "csrf_refused", request.url.path, "cross-origin")
            return self._refuse(403, "cross-origin request refused")
        if not self.sessions.check_csrf(session, request.headers.get("x-csrf-token")):
            self.audit.record(session.user.name, "csrf_refused", request.url.path, "bad token")
            return self._refuse(403, "missing or wrong CSRF token (X-CSRF-Token header)")
        if not session.user.can(permission):
            self.audit.record(
                session.user.name, "denied", request.url.path, f"role {session.user.role}"
            )
            return self._refuse(403, f"role {session.user.role!r} may not {permission}")
        return session

    @staticmethod
    async def _form(request: Request) -> dict[str, str]:
        body = (await request.body())[:10_000].decode("utf-8", errors="replace")
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                data = msgspec.json.decode(body or "{}")
            except msgspec.DecodeError:
                return {}
            return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
        return {k: v[0] for k, v in parse_qs(body).items()}

    # -- pages -----------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return RedirectResponse("/login", status_code=303)
        if not session.user.can("map"):
            return RedirectResponse("/admin", status_code=303)
        return HTMLResponse(self.page_html)

    async def favicon(self, request: Request) -> Response:
        return Response(status_code=204)

    async def login_form(self, request: Request) -> Response:
        if self._session(request) is not None:
            return RedirectResponse("/", status_code=303)
        return HTMLResponse(login_page(self.sector))

    async def login(self, request: Request) -> Response:
        if not self._same_origin(request):
            return HTMLResponse(login_page(self.sector, "cross-origin login refused"), 403)
        form = await self._form(request)
        peer = request.client.host if request.client else "-"
        name = form.get("username", "")[:64]
        password = form.get("password", "")
        if self.throttle.locked(name):
            self.audit.record(name or "-", "login_locked", "", peer)
            return HTMLResponse(
                login_page(self.sector, "too many failed logins; wait a minute"), 429
            )
        user = await run_in_threadpool(self.users.verify, name, password)
        if user is None:
            self.throttle.failed(name)
            self.audit.record(name or "-", "login_failed", "", peer)
            return HTMLResponse(login_page(self.sector, "wrong user name or password"), 401)
        self.throttle.succeeded(name)
        _session, cookie = self.sessions.open(user)
        self.audit.record(user.name, "login", "", f"role {user.role} from {peer}")
        response = RedirectResponse("/" if user.can("map") else "/admin", status_code=303)
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=int(self.sessions.lifetime_s),
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(self, request: Request) -> Response:
        session = self._session(request)
        if session is not None:
            form = await self._form(request)
            token = request.headers.get("x-csrf-token") or form.get("csrf")
            if not self._same_origin(request) or not self.sessions.check_csrf(session, token):
                return self._refuse(403, "missing or wrong CSRF token")
            self.sessions.close(session)
            self.audit.record(session.user.name, "logout")
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    async def admin_page(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return RedirectResponse("/login", status_code=303)
        if not session.user.can("users"):
            return self._refuse(403, f"role {session.user.role!r} may not manage users")
        return HTMLResponse(
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

    # -- API -------------------------------------------------------------------------------------

    async def me(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return self._refuse(401, "not logged in: no valid session")
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
        session = self._api_session(request, "map")
        if isinstance(session, Response):
            return session
        return Response(self.site_json, media_type="application/json")

    async def snapshot_api(self, request: Request) -> Response:
        session = self._api_session(request, "map")
        if isinstance(session, Response):
            return session
        snap = _for_user(session.user, self.live.snapshot())
        return Response(_json.encode(snap), media_type="application/json")

    async def history_api(self, request: Request) -> Response:
        session = self._api_session(request, "history")
        if isinstance(session, Response):
            return session
        q = request.query_params
        try:
            t1 = float(q["t1"]) if "t1" in q else (self.live.now or time.time())
            hours = float(q.get("hours", "4"))
            t0 = float(q["t0"]) if "t0" in q else t1 - hours * 3600.0
        except ValueError as exc:
            return self._refuse(400, f"t0, t1 and hours are numbers (UTC seconds, hours): {exc}")
        if not t0 <= t1 or t1 - t0 > MAX_HISTORY_HOURS * 3600.0:
            return self._refuse(
                400,
                f"history span t0={t0} to t1={t1}: expected t0 <= t1 and at most "
                f"{MAX_HISTORY_HOURS:g} hours",
            )
        if self.history_source is not None:
            tracks = await run_in_threadpool(lambda: list(self.history_source(t0, t1)))
            items = history_from_tracks(tracks)
        else:
            items = self.live.history(t0, t1)
        return Response(
            _json.encode({"t0": t0, "t1": t1, "tracks": items}), media_type="application/json"
        )

    async def audit_api(self, request: Request) -> Response:
        session = self._api_session(request, "audit")
        if isinstance(session, Response):
            return session
        try:
            since = (
                float(request.query_params["since"]) if "since" in request.query_params else None
            )
            limit = min(int(request.query_params.get("limit", "200")), 10_000)
        except ValueError as exc:
            return self._refuse(400, f"since is UTC seconds, limit an integer: {exc}")
        rows = self.audit.entries(since=since, limit=limit)
        return JSONResponse(
            [
                {
                    "time": e.time,
                    "user": e.user,
                    "action": e.action,
                    "target": e.target,
                    "detail": e.detail,
                }
                for e in rows
            ]
        )

    async def users_api(self, request: Request) -> Response:
        if request.method == "GET":
            session = self._api_session(request, "users")
            if isinstance(session, Response):
                return session
            return JSONResponse(
                [{"name": u.name, "role": u.role, "unit": u.unit} for u in self.users.users()]
            )
        session = self._checked_post(request, "users")
        if isinstance(session, Response):
            return session
        form = await self._form(request)
        try:
            user = await run_in_threadpool(
                lambda: self.users.add(
                    form.get("name", ""),
                    form.get("role", ""),
                    form.get("password", ""),
                    unit=form.get("unit") or None,
                    replace=form.get("replace") == "true",
                )
            )
        except AuthError as exc:
            return self._refuse(400, str(exc))
        self.sessions.close_user(user.name)
        self.audit.record(session.user.name, "user_add", user.name, f"role {user.role}")
        return JSONResponse({"name": user.name, "role": user.role, "unit": user.unit}, 201)

    async def user_delete(self, request: Request) -> Response:
        session = self._checked_post(request, "users")
        if isinstance(session, Response):
            return session
        name = request.path_params["name"]
        if not self.users.remove(name):
            return self._refuse(404, f"no user {name!r}")
        self.sessions.close_user(name)
        self.audit.record(session.user.name, "user_remove", name)
        return JSONResponse({"removed": name})

    async def alert_action(self, request: Request) -> Response:
        action = request.path_params["action"]
        alert_id = request.path_params["alert_id"]
        if action not in ACTIONS:
            return self._refuse(404, f"no alert action {action!r}; expected one of {ACTIONS}")
        session = self._checked_post(request, f"alerts.{action}")
        if isinstance(session, Response):
            return session
        user = session.user
        alert = self.live.alerts.get(alert_id)
        if alert is None:
            return self._refuse(404, f"no open alert {alert_id!r}")
        if not visible_alert(user, alert):
            self.audit.record(user.name, "denied", alert_id, f"{action}: not the user's alert")
            return self._refuse(403, f"alert {alert_id!r} is not for unit {user.unit!r}")
        form = await self._form(request)
        unit = form.get("unit") or None
        if action == "assign" and unit not in self.unit_ids:
            return self._refuse(
                400,
                f"unit {unit!r} is not a unit of this sector; expected one of "
                f"{', '.join(sorted(self.unit_ids))}",
            )
        msg = AlertAction(
            alert_id=alert_id,
            time=time.time(),
            action=action,
            by=user.name,
            unit=unit if action == "assign" else None,
            note=form.get("note", "")[:500],
        )
        # the audit entry is written before the action leaves, so no action goes unrecorded
        self.audit.record(user.name, action, alert_id, f"unit {unit}" if action == "assign" else "")
        await run_in_threadpool(self.bus.publish, topic_for(self.sector, msg), msg)
        return JSONResponse(
            {"ok": True, "alert_id": alert_id, "action": action, "by": user.name, "unit": msg.unit}
        )

    # -- the WebSocket ---------------------------------------------------------------------------

    async def websocket(self, websocket: WebSocket) -> None:
        session = self._session(websocket)
        if session is None or not session.user.can("map") or not self._same_origin(websocket):
            # refused before the handshake completes: the browser sees HTTP 403
            await websocket.close(code=4401)
            return
        await websocket.accept()
        client = _Client(session)
        self._clients.add(client)
        sender = asyncio.create_task(self._send_loop(websocket, client))
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
        except WebSocketDisconnect:
            pass
        finally:
            self._clients.discard(client)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    async def _send_loop(self, websocket: WebSocket, client: _Client) -> None:
        snap = _for_user(client.session.user, self.live.snapshot())
        snap["sent"] = time.time()
        await websocket.send_text(_json.encode(snap).decode())
        while True:
            text = await client.queue.get()
            if self.sessions.lookup(websocket.cookies.get(COOKIE)) is None:
                await websocket.close(code=4401)  # logged out or expired meanwhile
                return
            if text is None or client.resync:
                client.resync = False
                snap = _for_user(client.session.user, self.live.snapshot())
                snap["sent"] = time.time()
                text = _json.encode(snap).decode()
            await websocket.send_text(text)
