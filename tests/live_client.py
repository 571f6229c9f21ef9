"""A live map server on a free local port for tests, and a cookie-holding HTTP client.

:func:`running_world` starts :class:`~vigil.maps.live.LiveMapApp` under uvicorn with four users (one
per role, fast password hashes) and two open alerts, one for unit p07 and one for p01; a test
module wraps it in a module-scoped ``world`` fixture. :class:`Client` logs in, keeps the
session cookie and its CSRF token, and does not follow redirects.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from argon2 import PasswordHasher

from vigil.config import load_default
from vigil.geo.site import Site
from vigil.ingest.bus import InProcessBus
from vigil.ingest.schema import Alert, AlertAction, topic_for
from vigil.maps.live import AuditLog, LiveMapApp, ServerThread, UserStore

FAST_HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORDS = {
    "cmd": "commander-pass",
    "plan": "planner-pass",
    "agt": "agent-pass-1",
    "adm": "admin-pass-1",
}


class Reply:
    """A response: status, headers and body."""

    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)


class Client:
    """A cookie-holding HTTP client that does not follow redirects."""

    def __init__(
        self, url: str, context: ssl.SSLContext | None = None, source: str | None = None
    ) -> None:
        parts = urlsplit(url)
        self.url = url
        self.source = (source, 0) if source else None  # e.g. 127.0.0.2: another client address
        self.host = parts.hostname
        self.port = parts.port
        self.context = context
        self.cookie: str | None = None
        self.csrf: str | None = None
        self.device: str | None = None  # the vigil_device cookie of a browser known to a user

    def request(self, method: str, path: str, body=None, headers=None) -> Reply:
        if self.context is not None:
            conn = http.client.HTTPSConnection(
                self.host, self.port, context=self.context, source_address=self.source
            )
        else:
            conn = http.client.HTTPConnection(
                self.host, self.port, timeout=60, source_address=self.source
            )
        h = dict(headers or {})
        cookies = [f"vigil_session={self.cookie}"] if self.cookie else []
        if self.device and path == "/login":
            cookies.append(f"vigil_device={self.device}")
        if cookies:
            h["Cookie"] = "; ".join(cookies)
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        reply = Reply(r.status, r.headers, r.read())
        conn.close()
        return reply

    def login(self, name: str, password: str) -> Reply:
        body = f"username={name}&password={password}".encode()
        reply = self.request(
            "POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        for set_cookie in reply.headers.get_all("set-cookie") or ():
            name, value = set_cookie.split(";")[0].split("=", 1)
            if name == "vigil_device":
                self.device = value
            elif name == "vigil_session":
                self.cookie = value
                self.csrf = self.request("GET", "/api/me").json()["csrf"]
        return reply

    def act(self, alert_id: str, action: str, body=None, token: str | None = "session", **h):
        headers = dict(h)
        if token == "session":
            token = self.csrf
        if token is not None:
            headers["X-CSRF-Token"] = token
        return self.request("POST", f"/api/alerts/{alert_id}/{action}", body or {}, headers)


@dataclass
class World:
    """A running live map and what feeds it."""

    site: Site
    bus: InProcessBus
    users: UserStore
    audit: AuditLog
    app: LiveMapApp
    server: ServerThread
    actions: list[AlertAction]  # alert actions the app published on the bus
    sector: str
    publish: Callable[[object], None]  # a wire message onto the bus under its own topic


@contextmanager
def running_world(tmp: Path, hasher=FAST_HASH, **options) -> Iterator[World]:
    """A live map with users cmd, plan, agt (unit p07), adm and alerts A-p07 and A-p01.

    Parameters
    ----------
    hasher
        The users' argon2 hasher (``None``: the production parameters).
    options
        Passed to :class:`~vigil.maps.live.LiveMapApp`.
    """
    site = load_default().site
    bus = InProcessBus(site.sector.name)
    users = UserStore(tmp / "users.sqlite", hasher=hasher)
    users.add("cmd", "commander", PASSWORDS["cmd"])
    users.add("plan", "planner", PASSWORDS["plan"])
    users.add("agt", "agent", PASSWORDS["agt"], unit="p07")
    users.add("adm", "admin", PASSWORDS["adm"])
    audit = AuditLog(tmp / "store.sqlite")
    actions: list[AlertAction] = []
    bus.subscribe(f"vigil/v1/{site.sector.name}/alerts/actions/+", lambda _t, m: actions.append(m))
    app = LiveMapApp(site, bus, users, audit, tick_s=0.05, **options)
    server = ServerThread(app).start()
    sector = site.sector.name

    def publish(msg) -> None:
        bus.publish(topic_for(sector, msg), msg)

    w = World(site, bus, users, audit, app, server, actions, sector, publish)
    now = time.time()
    for alert_id, priority, lon, units in (
        ("A-p07", 1, -110.9, ["p07", "p08"]),
        ("A-p01", 2, -110.8, ["p01"]),
    ):
        publish(
            Alert(
                alert_id=alert_id,
                time=now,
                kind="crossing",
                priority=priority,
                lat=31.33,
                lon=lon,
                units=units,
            )
        )
    try:
        yield w
    finally:
        server.stop()
        app.close()


def client(world: World, name: str | None = None) -> Client:
    """A new client, logged in as ``name`` (one of :data:`PASSWORDS`) when given."""
    c = Client(world.server.url)
    if name:
        assert c.login(name, PASSWORDS[name]).status == 303
    return c


def commander_only_app(world: World, tmp: Path, **options) -> LiveMapApp:
    """A second app on the world's site with its own quiet bus and one user, cmd (commander).

    Parameters
    ----------
    options
        Passed to :class:`~vigil.maps.live.LiveMapApp` (``history``, ``tiles_url``, ...).
    """
    users = UserStore(tmp / "u.sqlite", hasher=FAST_HASH)
    users.add("cmd", "commander", PASSWORDS["cmd"])
    return LiveMapApp(
        world.site, InProcessBus(world.sector), users, AuditLog(":memory:"), **options
    )
