"""The live map server over real HTTP (uvicorn on a free local port): login, cookies,
refusals, CSRF, roles, alert actions onto the bus, user administration, the audit log and
logout. The WebSocket, history, assets and TLS are in ``test_live_serving.py``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("starlette")
pytest.importorskip("argon2")
pytest.importorskip("websockets")

from live_client import PASSWORDS, Client, World, client, running_world  # noqa: E402
from websockets.exceptions import InvalidStatus  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from vigil.maps.offline import remote_references  # noqa: E402


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("live")) as w:
        yield w


def test_login_sets_an_httponly_samesite_strict_cookie(world) -> None:
    c = Client(world.server.url)
    reply = c.login("cmd", PASSWORDS["cmd"])
    assert reply.status == 303 and reply.headers["location"] == "/"
    cookie = reply.headers["set-cookie"]
    flags = {f.strip().lower() for f in cookie.split(";")[1:]}
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    assert "secure" not in flags  # plain HTTP here; see the TLS test
    page = c.request("GET", "/")
    assert page.status == 200 and b"/static/live/live.js" in page.body
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
    audited = [(e.user, e.action) for e in world.audit.entries()]
    if name == "nobody":  # a made-up name is counted for a summary row, never one row each
        assert (name, "login_failed") not in audited
        assert world.app._login_summary.get("unknown_name", 0) >= 1
    else:
        assert (name, "login_failed") in audited


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
