"""The live map server over real HTTP and WebSocket (uvicorn on a free local port): login,
cookies, refusals, CSRF, roles, the audit log, the bus hand-over, history and TLS."""

from __future__ import annotations

import http.client
import json
import shutil
import ssl
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytest.importorskip("starlette")
pytest.importorskip("argon2")
pytest.importorskip("websockets")

from argon2 import PasswordHasher  # noqa: E402
from websockets.exceptions import InvalidStatus  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from vigil.config import load_default  # noqa: E402
from vigil.ingest.bus import InProcessBus  # noqa: E402
from vigil.ingest.schema import Alert, AlertAction, Track, topic_for  # noqa: E402
from vigil.maps.live import AuditLog, LiveMapApp, ServerThread, UserStore, run_live  # noqa: E402
from vigil.maps.offline import remote_references  # noqa: E402

FAST_HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORDS = {
    "cmd": "commander-pass",
    "plan": "planner-pass",
    "agt": "agent-pass-1",
    "adm": "admin-pass-1",
}


class Reply:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)


class Client:
    """A cookie-holding HTTP client that does not follow redirects."""

    def __init__(self, url: str, context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(url)
        self.url = url
        self.host = parts.hostname
        self.port = parts.port
        self.context = context
        self.cookie: str | None = None
        self.csrf: str | None = None

    def request(self, method: str, path: str, body=None, headers=None) -> Reply:
        if self.context is not None:
            conn = http.client.HTTPSConnection(self.host, self.port, context=self.context)
        else:
            conn = http.client.HTTPConnection(self.host, self.port)
        h = dict(headers or {})
        if self.cookie:
            h["Cookie"] = f"vigil_session={self.cookie}"
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
        set_cookie = reply.headers.get("set-cookie") or ""
        if set_cookie.startswith("vigil_session="):
            self.cookie = set_cookie.split(";")[0].split("=", 1)[1]
            self.csrf = self.request("GET", "/api/me").json()["csrf"]
        return reply

    def act(self, alert_id: str, action: str, body=None, token: str | None = "session", **h):
        headers = dict(h)
        if token == "session":
            token = self.csrf
        if token is not None:
            headers["X-CSRF-Token"] = token
        return self.request("POST", f"/api/alerts/{alert_id}/{action}", body or {}, headers)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("live")
    site = load_default().site
    bus = InProcessBus(site.sector.name)
    users = UserStore(tmp / "users.sqlite", hasher=FAST_HASH)
    users.add("cmd", "commander", PASSWORDS["cmd"])
    users.add("plan", "planner", PASSWORDS["plan"])
    users.add("agt", "agent", PASSWORDS["agt"], unit="p07")
    users.add("adm", "admin", PASSWORDS["adm"])
    audit = AuditLog(tmp / "store.sqlite")
    actions: list[AlertAction] = []
    bus.subscribe(f"vigil/v1/{site.sector.name}/alerts/actions", lambda _t, m: actions.append(m))
    app = LiveMapApp(site, bus, users, audit, tick_s=0.05)
    server = ServerThread(app).start()

    class World:
        pass

    w = World()
    w.site, w.bus, w.users, w.audit, w.app, w.server, w.actions = (
        site,
        bus,
        users,
        audit,
        app,
        server,
        actions,
    )
    w.sector = site.sector.name

    def publish(msg) -> None:
        bus.publish(topic_for(w.sector, msg), msg)

    w.publish = publish
    now = time.time()
    publish(
        Alert(
            alert_id="A-p07",
            time=now,
            kind="crossing",
            priority=1,
            lat=31.33,
            lon=-110.9,
            units=["p07", "p08"],
        )
    )
    publish(
        Alert(
            alert_id="A-p01",
            time=now,
            kind="crossing",
            priority=2,
            lat=31.33,
            lon=-110.8,
            units=["p01"],
        )
    )
    yield w
    server.stop()
    app.close()


def client(world, name: str | None = None) -> Client:
    c = Client(world.server.url)
    if name:
        assert c.login(name, PASSWORDS[name]).status == 303
    return c


def test_login_sets_an_httponly_samesite_strict_cookie(world) -> None:
    c = Client(world.server.url)
    reply = c.login("cmd", PASSWORDS["cmd"])
    assert reply.status == 303 and reply.headers["location"] == "/"
    cookie = reply.headers["set-cookie"]
    flags = {f.strip().lower() for f in cookie.split(";")[1:]}
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    assert "secure" not in flags  # plain HTTP here; see the TLS test
    page = c.request("GET", "/")
    assert page.status == 200 and b"VigilLive.start(" in page.body
    assert remote_references(page.body.decode()) == []
    csp = page.headers["content-security-policy"]
    assert "connect-src 'self'" in csp and "default-src 'self'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    me = c.request("GET", "/api/me").json()
    assert (me["user"], me["role"]) == ("cmd", "commander")
    assert ("cmd", "login") in [(e.user, e.action) for e in world.audit.entries()]


@pytest.mark.parametrize(
    ("name", "password"),
    [("cmd", "wrong-password"), ("nobody", "commander-pass"), ("cmd", "")],
    ids=["wrong-password", "unknown-user", "empty-password"],
)
def test_failed_logins_are_refused_and_audited(world, name, password) -> None:
    c = Client(world.server.url)
    reply = c.login(name, password)
    assert reply.status == 401
    assert "set-cookie" not in reply.headers
    assert b"wrong user name or password" in reply.body
    assert (name, "login_failed") in [(e.user, e.action) for e in world.audit.entries()]


@pytest.mark.parametrize(
    "cookie",
    [None, "", "abc", "abc.def", "x" * 32 + "." + "0" * 64],
    ids=["missing", "empty", "unsigned", "short-forgery", "forged"],
)
def test_missing_or_forged_sessions_are_refused(world, cookie) -> None:
    c = Client(world.server.url)
    c.cookie = cookie
    page = c.request("GET", "/")
    assert page.status == 303 and page.headers["location"] == "/login"
    for path in ("/api/me", "/api/site", "/api/snapshot", "/api/history", "/api/audit"):
        assert c.request("GET", path).status == 401, path
    assert c.act("A-p07", "acknowledge", token="whatever").status == 401
    headers = {"Cookie": f"vigil_session={cookie}"} if cookie else {}
    with (
        pytest.raises(InvalidStatus),
        connect(f"ws://127.0.0.1:{world.server.port}/ws", additional_headers=headers),
    ):
        pass


def test_an_altered_valid_cookie_is_refused(world) -> None:
    c = client(world, "cmd")
    sid, sig = c.cookie.split(".")
    c.cookie = f"{sid}.{sig[:-1]}{'0' if sig[-1] != '0' else '1'}"
    assert c.request("GET", "/api/me").status == 401


def test_actions_need_the_sessions_csrf_token_and_same_origin(world) -> None:
    c = client(world, "cmd")
    other = client(world, "cmd")
    n = len(world.actions)
    assert c.act("A-p01", "acknowledge", token=None).status == 403
    assert c.act("A-p01", "acknowledge", token="0" * 64).status == 403
    assert c.act("A-p01", "acknowledge", token=other.csrf).status == 403
    evil = c.act("A-p01", "acknowledge", Origin="http://evil.example")
    assert evil.status == 403
    assert len(world.actions) == n
    refused = [e for e in world.audit.entries(action="csrf_refused") if e.user == "cmd"]
    assert len(refused) >= 4


def test_commander_acknowledges_and_assigns_onto_the_bus(world) -> None:
    c = client(world, "cmd")
    n = len(world.actions)
    reply = c.act("A-p01", "acknowledge", {"note": "seen"})
    assert reply.status == 200 and reply.json()["action"] == "acknowledge"
    bad = c.act("A-p01", "assign", {"unit": "p99"})
    assert bad.status == 400 and "unit 'p99' is not a unit" in bad.json()["error"]
    assert c.act("A-p01", "assign", {"unit": "p02"}).status == 200
    assert c.act("A-none", "acknowledge").status == 404
    assert c.act("A-p01", "explode").status == 404
    got = [(a.alert_id, a.action, a.by, a.unit, a.note) for a in world.actions[n:]]
    assert got == [
        ("A-p01", "acknowledge", "cmd", None, "seen"),
        ("A-p01", "assign", "cmd", "p02", ""),
    ]
    audit = [(e.user, e.action, e.target, e.detail) for e in world.audit.entries()]
    assert ("cmd", "acknowledge", "A-p01", "") in audit
    assert ("cmd", "assign", "A-p01", "unit p02") in audit
    snap = c.request("GET", "/api/snapshot").json()
    a = next(x for x in snap["alerts"] if x["id"] == "A-p01")
    assert (a["state"], a["assigned"], a["by"]) == ("acknowledged", "p02", "cmd")


def test_planner_reads_but_cannot_act(world) -> None:
    c = client(world, "plan")
    n = len(world.actions)
    for action, body in (("acknowledge", {}), ("assign", {"unit": "p01"}), ("close", {})):
        reply = c.act("A-p07", action, body)
        assert reply.status == 403, action
        assert "planner" in reply.json()["error"]
    assert len(world.actions) == n
    assert {x["id"] for x in c.request("GET", "/api/snapshot").json()["alerts"]} >= {"A-p07"}
    assert c.request("GET", "/api/history").status == 200
    assert ("plan", "denied") in [(e.user, e.action) for e in world.audit.entries()]


def test_agent_sees_and_acknowledges_only_their_units_alerts(world) -> None:
    c = client(world, "agt")
    ids = {x["id"] for x in c.request("GET", "/api/snapshot").json()["alerts"]}
    assert "A-p07" in ids and "A-p01" not in ids
    n = len(world.actions)
    assert c.act("A-p01", "acknowledge").status == 403
    assert c.act("A-p07", "assign", {"unit": "p07"}).status == 403
    assert c.act("A-p07", "acknowledge").status == 200
    assert [(a.alert_id, a.by) for a in world.actions[n:]] == [("A-p07", "agt")]
    assert c.request("GET", "/api/history").status == 403


def test_admin_manages_users_but_has_no_map(world) -> None:
    c = client(world, "adm")
    assert c.request("GET", "/").headers["location"] == "/admin"
    assert c.request("GET", "/api/snapshot").status == 403
    assert c.request("GET", "/admin").status == 200
    body = {"name": "new1", "role": "agent", "password": "new-agent-pass", "unit": "p03"}
    assert c.request("POST", "/api/users", body).status == 403  # no CSRF token
    reply = c.request("POST", "/api/users", body, {"X-CSRF-Token": c.csrf})
    assert reply.status == 201 and reply.json() == {"name": "new1", "role": "agent", "unit": "p03"}
    again = c.request("POST", "/api/users", body, {"X-CSRF-Token": c.csrf})
    assert again.status == 400 and "already exists" in again.json()["error"]
    names = {u["name"] for u in c.request("GET", "/api/users").json()}
    assert {"cmd", "plan", "agt", "adm", "new1"} <= names
    assert ("adm", "user_add", "new1") in [
        (e.user, e.action, e.target) for e in world.audit.entries()
    ]
    assert client(world, "cmd").request("GET", "/api/users").status == 403


def test_logout_ends_the_session(world) -> None:
    c = client(world, "cmd")
    cookie = c.cookie
    assert (
        c.request(
            "POST", "/logout", b"csrf=nope", {"Content-Type": "application/x-www-form-urlencoded"}
        ).status
        == 403
    )
    reply = c.request(
        "POST",
        "/logout",
        f"csrf={c.csrf}".encode(),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert reply.status == 303 and reply.headers["location"] == "/login"
    c.cookie = cookie
    assert c.request("GET", "/api/me").status == 401


def test_websocket_sends_a_snapshot_then_batches_from_the_bus(world) -> None:
    c = client(world, "cmd")
    url = f"ws://127.0.0.1:{world.server.port}/ws"
    with connect(url, additional_headers={"Cookie": f"vigil_session={c.cookie}"}) as ws:
        snap = json.loads(ws.recv(timeout=5))
        assert snap["type"] == "snapshot"
        assert {s["id"] for s in snap["towers"]} == {t.id for t in world.site.towers}
        msg = Track(
            track_id="ws-1",
            time=time.time(),
            lat=31.34,
            lon=-110.9,
            vx=0.5,
            vy=1.0,
            cov=(9.0, 0.0, 0.0, 9.0),
            state="confirmed",
            class_guess="vehicle",
        )
        world.publish(msg)
        deadline = time.monotonic() + 5
        rows = []
        while not rows and time.monotonic() < deadline:
            batch = json.loads(ws.recv(timeout=5))
            rows = [r for r in batch.get("tracks", []) if r[0] == "ws-1"]
        assert rows and rows[0][1:4] == [31.34, -110.9, "vehicle"]
        assert batch["type"] == "batch" and batch["arrived"] <= batch["sent"]
    cross = {"Cookie": f"vigil_session={c.cookie}", "Origin": "http://evil.example"}
    with pytest.raises(InvalidStatus), connect(url, additional_headers=cross):
        pass


def test_history_from_the_ring_and_from_a_store(world, tmp_path) -> None:
    c = client(world, "cmd")
    t0 = time.time() - 100
    for i in range(5):
        world.publish(
            Track(
                track_id="h-1",
                time=t0 + 10 * i,
                lat=31.33 + 1e-4 * i,
                lon=-110.9,
                vx=0,
                vy=1,
                cov=(1, 0, 0, 1),
                state="confirmed",
            )
        )
    h = c.request("GET", f"/api/history?t0={t0 - 1}&t1={t0 + 25}").json()
    item = next(x for x in h["tracks"] if x["id"] == "h-1")
    assert [p[0] for p in item["points"]] == [round(t0 + 10 * i, 2) for i in range(3)]
    assert c.request("GET", "/api/history?t0=5&t1=1").status == 400
    assert c.request("GET", "/api/history?hours=100").status == 400
    assert c.request("GET", "/api/history?t0=abc").status == 400

    calls = []

    def store(a: float, b: float):
        calls.append((a, b))
        return [
            Track(
                track_id="s-1",
                time=a + 1,
                lat=31.3,
                lon=-110.9,
                vx=0,
                vy=0,
                cov=(1, 0, 0, 1),
                state="confirmed",
                class_guess="animal",
            )
        ]

    users = UserStore(tmp_path / "u.sqlite", hasher=FAST_HASH)
    users.add("cmd", "commander", PASSWORDS["cmd"])
    app = LiveMapApp(
        world.site, InProcessBus(world.sector), users, AuditLog(":memory:"), history=store
    )
    with ServerThread(app) as srv:
        c2 = Client(srv.url)
        c2.login("cmd", PASSWORDS["cmd"])
        h = c2.request("GET", "/api/history?t0=1700000000&t1=1700003600").json()
    assert calls == [(1_700_000_000.0, 1_700_003_600.0)]
    assert h["tracks"] == [
        {"id": "s-1", "class": "animal", "points": [[1700000001.0, 31.3, -110.9]]}
    ]


def test_static_assets_are_served_locally(world) -> None:
    c = Client(world.server.url)
    for path in (
        "/static/live/live.js",
        "/static/live/live.css",
        "/static/leaflet/leaflet.js",
        "/static/live/icons/person.svg",
        "/static/live/admin.js",
    ):
        assert c.request("GET", path).status == 200, path
    login = c.request("GET", "/login")
    assert login.status == 200 and remote_references(login.body.decode()) == []


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed; cannot make a test certificate")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_tls_when_given_a_certificate(world, tmp_path) -> None:
    cert, key = _self_signed(tmp_path)
    users = UserStore(tmp_path / "u.sqlite", hasher=FAST_HASH)
    users.add("cmd", "commander", PASSWORDS["cmd"])
    app = LiveMapApp(world.site, InProcessBus(world.sector), users, AuditLog(":memory:"))
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    with ServerThread(app, certfile=cert, keyfile=key) as srv:
        assert srv.url.startswith("https://")
        c = Client(srv.url, context=context)
        reply = c.login("cmd", PASSWORDS["cmd"])
        flags = {f.strip().lower() for f in reply.headers["set-cookie"].split(";")[1:]}
        assert {"secure", "httponly", "samesite=strict"} <= flags
        assert c.request("GET", "/api/me").json()["user"] == "cmd"
        with pytest.raises(ssl.SSLError):  # plain clients are not served
            Client(srv.url, context=ssl.create_default_context()).request("GET", "/login")
    with pytest.raises(ValueError, match="both a certificate and a key"):
        ServerThread(app, certfile=cert)


def test_run_live_needs_a_user(world, tmp_path) -> None:
    with pytest.raises(RuntimeError, match="no users in .*vigil users add"):
        run_live(
            world.site,
            InProcessBus(world.sector),
            users_path=tmp_path / "none.sqlite",
            audit_path=tmp_path / "a.sqlite",
        )


def test_local_tile_server_is_drawn_and_allowed_by_the_policy(world, tmp_path) -> None:
    tiles = "http://127.0.0.1:8089/{z}/{x}/{y}.png"
    users = UserStore(tmp_path / "u.sqlite", hasher=FAST_HASH)
    users.add("cmd", "commander", PASSWORDS["cmd"])
    app = LiveMapApp(
        world.site, InProcessBus(world.sector), users, AuditLog(":memory:"), tiles_url=tiles
    )
    with ServerThread(app) as srv:
        c = Client(srv.url)
        c.login("cmd", PASSWORDS["cmd"])
        page = c.request("GET", "/")
    assert tiles in page.body.decode()
    assert (
        "img-src 'self' data: blob: http://127.0.0.1:8089;"
        in page.headers["content-security-policy"]
    )
    # without one, the page draws no tile layer at all
    assert "L.tileLayer(" not in world.app.page_html
