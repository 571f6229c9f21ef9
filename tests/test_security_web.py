"""Issue 18, the web side against the real server (uvicorn on 127.0.0.1): throttled logins that
never lock the right password out (M4), the Host check against DNS rebinding, non-ASCII
cookies and CSRF headers, audit-log flooding and its read limit, and what agents see of other
units' closed alerts. Users and sessions (M5) are in ``test_security_users.py``; body sizes
and the login spray (M2, M3) in ``test_security_login.py``."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest

pytest.importorskip("starlette")
pytest.importorskip("argon2")
pytest.importorskip("websockets")

from live_client import PASSWORDS, Client, World, client, running_world  # noqa: E402
from websockets.exceptions import InvalidStatus  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from vigil.ingest.schema import Alert  # noqa: E402
from vigil.maps.live.guard import allowed_hosts, certificate_names, host_name  # noqa: E402
from vigil.maps.live.throttle import Backoff, LoginThrottle  # noqa: E402

ROUTES = ("/", "/admin", "/api/me", "/api/site", "/api/snapshot", "/api/history", "/api/audit")


@pytest.fixture
def world(tmp_path) -> Iterator[World]:
    """A fresh server per test: the login throttle's memory must not leak between tests."""
    with running_world(tmp_path) as w:
        yield w


# -- M4: growing delays, not lockouts ----------------------------------------------------------


def test_someone_elses_wrong_guesses_do_not_keep_the_right_password_out(world) -> None:
    url = world.server.url
    mine = Client(url, source="127.0.0.3")
    assert mine.login("cmd", PASSWORDS["cmd"]).status == 303 and mine.device
    attacker = Client(url, source="127.0.0.1")
    statuses = [attacker.login("cmd", f"wrong-guess-{i}").status for i in range(10)]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    refused = attacker.login("cmd", PASSWORDS["cmd"])  # the attacker's address waits, even
    assert refused.status == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
    # the commander's own browser, known to the server, is not slowed by any of it
    again = Client(url, source="127.0.0.3")
    again.device = mine.device
    assert again.login("cmd", PASSWORDS["cmd"]).status == 303
    # a new browser from elsewhere waits a few seconds at most, then gets in
    fresh = Client(url, source="127.0.0.4")
    reply = fresh.login("cmd", PASSWORDS["cmd"])
    if reply.status == 429:
        wait = int(reply.headers["retry-after"])
        assert wait <= 10, f"a real user is told to wait {wait} s"
        time.sleep(wait)
        reply = fresh.login("cmd", PASSWORDS["cmd"])
    assert reply.status == 303


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_guess_a_minute_never_locks_a_commander_out() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    refused = 0
    for _minute in range(120):
        attempt = throttle.admit("10.0.0.66", "cmd")
        if not isinstance(attempt, float):
            throttle.failed(attempt)
        clock.t += 30.0
        mine = throttle.admit("10.0.0.7", "cmd")  # a new browser, half a minute later
        if isinstance(mine, float):
            refused += 1
        else:
            throttle.succeeded(mine)
        clock.t += 30.0
    assert refused == 0


def test_the_throttle_table_is_pruned_and_bounded() -> None:
    clock = Clock()
    throttle = LoginThrottle(
        address=Backoff(5, 1.0, 60.0, 900.0, max_keys=5000),
        name=Backoff(5, 1.0, 10.0, 900.0, max_keys=5000),
        clock=clock,
    )
    for i in range(50_000):
        attempt = throttle.admit(f"10.{i % 200}.{i // 200 % 250}.1", f"made-up-{i}")
        if not isinstance(attempt, float):
            throttle.failed(attempt)
        clock.t += 0.001
    assert throttle.size() <= 5000 + 5000 + 1
    clock.t += 1000.0  # past every window
    throttle.admit("10.9.9.9", "someone")
    assert throttle.size() <= 3


# -- the Host check (DNS rebinding) ------------------------------------------------------------


def test_a_page_served_from_another_name_cannot_use_the_map(world) -> None:
    c = client(world, "cmd")
    port = world.server.port
    evil = f"rebind.example:{port}"
    n = len(world.actions)
    # after DNS rebinding the browser sends the attacker's name as Host and as Origin
    reply = c.act("A-p01", "acknowledge", Host=evil, Origin=f"http://{evil}")
    assert reply.status == 400 and "Host" in reply.json()["error"]
    assert len(world.actions) == n
    assert c.request("GET", "/api/snapshot", headers={"Host": evil}).status == 400
    assert Client(world.server.url).request("GET", "/login", headers={"Host": evil}).status == 400
    headers = {"Cookie": f"vigil_session={c.cookie}", "Host": evil, "Origin": f"http://{evil}"}
    with (
        pytest.raises(InvalidStatus),
        connect(f"ws://127.0.0.1:{port}/ws", additional_headers=headers),
    ):
        pass
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
        assert c.request("GET", "/api/me", headers={"Host": host}).status == 200, host


def test_allowed_hosts_are_the_bound_address_local_names_and_the_certificates(tmp_path) -> None:
    import shutil
    import subprocess

    assert host_name("[::1]:8080") == "::1" and host_name("Map.Example:443") == "map.example"
    names = allowed_hosts("10.1.2.3", ["map.sector.example"])
    assert {"localhost", "127.0.0.1", "10.1.2.3", "map.sector.example"} <= names
    assert "rebind.example" not in names
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=map.sector.example",
         "-addext", "subjectAltName=DNS:vigil.sector.example,IP:10.9.8.7"],
        check=True, capture_output=True,
    )  # fmt: skip
    assert set(certificate_names(cert)) == {
        "map.sector.example",
        "vigil.sector.example",
        "10.9.8.7",
    }
    assert certificate_names(tmp_path / "missing.pem") == []


# -- non-ASCII cookies and CSRF headers --------------------------------------------------------


@pytest.mark.parametrize(
    "cookie", ["abc.\u00e9\u00e9", "\u00e9.\u00e9", "x" * 32 + "." + "\u00ff" * 64], ids=str
)
def test_a_non_ascii_cookie_is_refused_never_an_error(world, cookie) -> None:
    c = Client(world.server.url)
    c.cookie = cookie
    for path in ROUTES:
        assert c.request("GET", path).status in (303, 401), path
    assert c.act("A-p07", "acknowledge", token="\u00e9").status == 401
    assert c.request("POST", "/logout").status == 303
    with (
        pytest.raises(InvalidStatus),
        connect(
            f"ws://127.0.0.1:{world.server.port}/ws",
            additional_headers={"Cookie": f"vigil_session={cookie}"},
        ),
    ):
        pass


def test_a_non_ascii_csrf_token_is_refused_never_an_error(world) -> None:
    c = client(world, "cmd")
    n = len(world.actions)
    for token in ("\u00e9", "\u00e9" * 64, c.csrf[:-1] + "\u00e9"):
        assert c.act("A-p01", "acknowledge", token=token).status == 403
    reply = c.request(
        "POST", "/logout", "csrf=\u00e9".encode("latin-1"),
        {"Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": "\u00e9"},
    )  # fmt: skip
    assert reply.status == 403
    assert len(world.actions) == n


# -- the audit log: no unauthenticated flooding, a bounded read --------------------------------


def test_logins_with_made_up_names_do_not_flood_the_audit_log(world) -> None:
    before = len(world.audit.entries(limit=10_000))
    for i in range(150):
        Client(world.server.url, source=f"127.0.2.{i % 250 + 1}").login(
            f"nobody-{i}", "some-password-1"
        )
    for bad in ("<script>x</script>", "a" * 500, "cmd\r\nadmin login", "\u00e9\u00e9"):
        assert Client(world.server.url).login(bad, "x").status in (401, 429)
    rows = world.audit.entries(limit=10_000)[before:]
    assert len(rows) <= 2, [(e.user, e.action) for e in rows]
    # each attempt is counted (for a summary row a minute), none dropped silently
    written = sum(int(n) for e in rows for n in re.findall(r"(\d+)(?:,| in )", e.detail))
    assert sum(world.app._login_summary.values()) + written >= 154


@pytest.mark.parametrize(
    ("query", "status"),
    [("limit=-1", 400), ("limit=0", 400), ("limit=10001", 400), ("limit=x", 400),
     ("since=nan", 400), ("since=inf", 400), ("limit=3", 200)],
    ids=lambda v: str(v),
)  # fmt: skip
def test_the_audit_read_is_bounded(world, query, status) -> None:
    c = client(world, "adm")
    for i in range(5):
        world.audit.record("adm", "test", str(i))
    reply = c.request("GET", f"/api/audit?{query}")
    assert reply.status == status, reply.body
    if status == 200:
        assert len(reply.json()) == 3
    assert len(world.audit.entries(limit=-1)) == 1  # the store's own floor: at least one


# -- what an agent sees of other units' alerts -------------------------------------------------


def test_an_agent_gets_only_the_id_of_another_units_closed_alert(world) -> None:
    c = client(world, "agt")  # unit p07
    url = f"ws://127.0.0.1:{world.server.port}/ws"
    with connect(url, additional_headers={"Cookie": f"vigil_session={c.cookie}"}) as ws:
        json.loads(ws.recv(timeout=5))  # the snapshot
        for alert_id, units in (("A-p01-secret", ["p01"]), ("A-p07-own", ["p07"])):
            world.publish(
                Alert(
                    alert_id=alert_id, time=time.time(), kind="crossing", priority=1,
                    lat=31.331, lon=-110.85, units=units, state="closed",
                    summary=f"group of 6 heading north at {alert_id}",
                )
            )  # fmt: skip
        seen: dict[str, dict] = {}
        deadline = time.monotonic() + 5
        while len(seen) < 2 and time.monotonic() < deadline:
            batch = json.loads(ws.recv(timeout=5))
            seen.update({a["id"]: a for a in batch.get("alerts", [])})
    assert seen["A-p01-secret"] == {"id": "A-p01-secret", "state": "closed"}
    assert seen["A-p07-own"]["summary"].startswith("group of 6")


# -- what held up in the attack stays (regressions) --------------------------------------------


def test_held_up_no_session_fixation_and_the_same_message_for_unknown_users(world) -> None:
    planted = client(world, "plan").cookie  # a valid session someone could plant
    c = Client(world.server.url)
    c.cookie = planted
    assert c.login("cmd", PASSWORDS["cmd"]).status == 303
    assert c.cookie != planted  # a login always opens a fresh session
    assert c.request("GET", "/api/me").json()["user"] == "cmd"
    wrong = Client(world.server.url).login("cmd", "not-the-password")
    unknown = Client(world.server.url).login("no-such-user", "not-the-password")
    assert wrong.status == unknown.status == 401 and wrong.body == unknown.body


def test_held_up_admins_and_foreign_pages_get_no_websocket_and_headers_stay(world) -> None:
    adm = client(world, "adm")
    url = f"ws://127.0.0.1:{world.server.port}/ws"
    with (
        pytest.raises(InvalidStatus),
        connect(url, additional_headers={"Cookie": f"vigil_session={adm.cookie}"}),
    ):
        pass
    page = client(world, "cmd").request("GET", "/")
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
